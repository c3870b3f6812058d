import Foundation
import PostgresNIO
import WardenCore

/// One schema version: its id (recorded in `schema_migrations`) and its statements, run in order
/// in the migrating transaction.
struct PostgresMigration: Sendable {
    let id: String
    let statements: [String]
}

extension PostgresStateStore {
    /// The advisory lock (a transaction lock, per database) that serializes migrations: replicas
    /// starting together on an empty database migrate one after the other, the later ones finding
    /// the work done.
    static let migrationLock: Int64 = 0x6563_7377_6D69_6772  // "ecswmigr"

    /// The schema, one migration per version; ids are never reused or changed once released.
    static var migrations: [PostgresMigration] {
        let kinds = JournalEntry.Kind.allCases.map { "'\($0.rawValue)'" }.joined(separator: ",")
        let results = ActionResult.allCases.map { "'\($0.rawValue)'" }.joined(separator: ",")
        let reasons = PostgresSchema.handoverReasons.map { "'\($0)'" }.joined(separator: ",")
        return [
            // v1: the state of SQLite's v3, plus the fence of each journal entry.
            PostgresMigration(
                id: "v1",
                statements: [
                    """
                    CREATE TABLE journal (
                        seq bigint PRIMARY KEY, at double precision NOT NULL, kind text NOT NULL CHECK (kind IN (\(kinds))),
                        loop text NOT NULL, project text, subject text, action text, severity text, client_token text, job_id text,
                        servers text[] NOT NULL DEFAULT '{}', result text CHECK (result IS NULL OR result IN (\(results))),
                        message text NOT NULL, intent_seq bigint, boundary double precision, retry_of bigint,
                        shard text, node text, epoch bigint,
                        CHECK ((shard IS NULL) = (node IS NULL) AND (node IS NULL) = (epoch IS NULL)))
                    """,
                    "CREATE INDEX journal_at ON journal (at)",
                    "CREATE INDEX journal_intent ON journal (intent_seq)",
                    "CREATE INDEX journal_loop_kind ON journal (loop, kind, at)",
                    // The journal's sequence: one row, updated by every append (see the type's doc).
                    "CREATE TABLE journal_sequence (one boolean PRIMARY KEY DEFAULT true CHECK (one), last bigint NOT NULL)",
                    "INSERT INTO journal_sequence (one, last) VALUES (true, 0)",
                    """
                    CREATE TABLE server_outcomes (
                        intent_seq bigint NOT NULL, server_id text NOT NULL, result text NOT NULL CHECK (result IN ('success','failed')),
                        error_code text, retry_at double precision, at double precision NOT NULL, PRIMARY KEY (intent_seq, server_id))
                    """,
                    "CREATE TABLE reported_episodes (key text PRIMARY KEY, loop text NOT NULL, since double precision NOT NULL)",
                    """
                    CREATE TABLE first_seen (
                        project text NOT NULL, server_id text NOT NULL, status text NOT NULL, task_state text NOT NULL,
                        first_seen double precision NOT NULL, PRIMARY KEY (project, server_id))
                    """,
                    """
                    CREATE TABLE sale_states (
                        region text NOT NULL, az text NOT NULL, flavor text NOT NULL, state text NOT NULL, since double precision NOT NULL,
                        PRIMARY KEY (region, az, flavor))
                    """,
                    """
                    CREATE TABLE sale_transitions (
                        id bigserial PRIMARY KEY, region text NOT NULL, az text NOT NULL, flavor text NOT NULL,
                        from_state text, to_state text NOT NULL, at double precision NOT NULL)
                    """,
                    "CREATE INDEX sale_transitions_at ON sale_transitions (at)",
                    """
                    CREATE TABLE quota_history (
                        project text NOT NULL, resource text NOT NULL, used bigint NOT NULL, quota bigint, at double precision NOT NULL)
                    """,
                    "CREATE INDEX quota_history_key ON quota_history (project, resource, at)",
                    "CREATE TABLE quota_levels (project text NOT NULL, resource text NOT NULL, level text NOT NULL, PRIMARY KEY (project, resource))",
                    """
                    CREATE TABLE snoozes (
                        project text NOT NULL, server_id text NOT NULL, until double precision NOT NULL, reason text NOT NULL,
                        PRIMARY KEY (project, server_id))
                    """,
                    """
                    CREATE TABLE watched_jobs (
                        project text NOT NULL, job_id text NOT NULL, job_type text, source text NOT NULL, registered_at double precision NOT NULL,
                        intent_seq bigint, status text, closed_at double precision, began_at double precision, PRIMARY KEY (project, job_id))
                    """,
                    """
                    CREATE TABLE schedule_marks (
                        schedule text NOT NULL, project text NOT NULL, boundary double precision NOT NULL, PRIMARY KEY (schedule, project))
                    """,
                    """
                    CREATE TABLE savings_windows (
                        id bigserial PRIMARY KEY, project text NOT NULL, server_id text NOT NULL, schedule text NOT NULL,
                        flavor text NOT NULL, vcpus bigint NOT NULL, ram_mb bigint NOT NULL, opened_at double precision NOT NULL,
                        closed_at double precision, counted_until double precision NOT NULL)
                    """,
                    "CREATE INDEX savings_open ON savings_windows (project, server_id, closed_at)",
                    "CREATE INDEX savings_time ON savings_windows (opened_at, closed_at)",
                ]),
            // v2: cluster membership, shard leases with epochs, handovers and loop pauses. Every
            // time here is the database's own.
            PostgresMigration(
                id: "v2",
                statements: [
                    """
                    CREATE TABLE \(PostgresSchema.nodes) (
                        name text PRIMARY KEY, started_at timestamptz NOT NULL, heartbeat_at timestamptz NOT NULL, left_at timestamptz)
                    """,
                    """
                    CREATE TABLE \(PostgresSchema.leases) (
                        shard text PRIMARY KEY, holder text NULL, epoch bigint NOT NULL DEFAULT 0,
                        expires_at timestamptz NOT NULL DEFAULT '-infinity', acquired_at timestamptz)
                    """,
                    "CREATE INDEX shard_leases_holder ON \(PostgresSchema.leases) (holder)",
                    """
                    CREATE TABLE \(PostgresSchema.handovers) (
                        id bigserial PRIMARY KEY, shard text NOT NULL, from_node text, to_node text, epoch bigint NOT NULL,
                        reason text NOT NULL CHECK (reason IN (\(reasons))), at timestamptz NOT NULL DEFAULT now())
                    """,
                    "CREATE INDEX shard_handovers_at ON \(PostgresSchema.handovers) (at)",
                    "CREATE TABLE \(PostgresSchema.loopPauses) (loop text PRIMARY KEY, paused_at timestamptz NOT NULL, by_node text)",
                ]),
            // v3: the process that wrote each node's last heartbeat (a random id, pid and host, and
            // when it first beat), so two live processes configured with one node name find out.
            PostgresMigration(
                id: "v3",
                statements: [
                    """
                    ALTER TABLE \(PostgresSchema.nodes)
                        ADD COLUMN instance text, ADD COLUMN instance_label text, ADD COLUMN instance_started_at timestamptz
                    """
                ]),
        ]
    }

    /// Refuses a schema with migrations this version does not know, then applies the missing
    /// ones, all in one transaction under `migrationLock`.
    func migrate() async throws {
        let known = Self.migrations
        let location = location
        try await withTransaction { [self] connection in
            try await connection.run("SELECT pg_advisory_xact_lock(\(Self.migrationLock))", logger: logger)
            try await connection.run(
                PostgresQuery(
                    unsafeSQL: "CREATE TABLE IF NOT EXISTS \(PostgresSchema.migrations) (id text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"),
                logger: logger)
            let applied = Set(
                try await connection.rows(PostgresQuery(unsafeSQL: "SELECT id FROM \(PostgresSchema.migrations)"), logger: logger)
                    .map { try $0.value("id", as: String.self) })
            let unknown = applied.subtracting(known.map(\.id)).sorted()
            if !unknown.isEmpty { throw StateStoreError.newerSchema(path: location, unknownMigrations: unknown) }
            for migration in known where !applied.contains(migration.id) {
                for statement in migration.statements { try await connection.run(PostgresQuery(unsafeSQL: statement), logger: logger) }
                try await connection.run("INSERT INTO schema_migrations (id) VALUES (\(migration.id))", logger: logger)
            }
        }
    }
}
