import Foundation
import GRDB

/// The embedded state store: a SQLite database (WAL) under the state directory, mapped through
/// GRDB records, one file per concern (`SQLiteStateStore+Journal.swift`, `+ServerStates`,
/// `+SaleStates`, `+Quota`, `+SnoozesAndMarks`, `+Jobs`).
///
/// Holds the action journal (intents, outcomes, events), first-seen times of server states,
/// sale-state transitions, quota history and threshold levels, snoozes, watched jobs and the last
/// schedule boundary handled. A schema version with migrations; a damaged or newer database is an
/// error, never a silent reset.
public final class SQLiteStateStore: StateStore {
    let database: any DatabaseWriter
    public let path: String
    public var location: String { path }
    public let retention: RetentionPolicy

    private init(database: any DatabaseWriter, path: String, retention: RetentionPolicy) {
        self.database = database
        self.path = path
        self.retention = retention
    }

    /// Opens (creating if needed) `state.sqlite` in `directory`.
    public static func open(directory: String, retention: RetentionPolicy = RetentionPolicy()) throws -> SQLiteStateStore {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw StateStoreError.unusableDirectory(path: directory, reason: error.localizedDescription)
        }
        let path = (directory as NSString).appendingPathComponent("state.sqlite")
        try checkExistingFile(path)
        let database = try connect(path: path, readOnly: false)
        // An intent must be durable before its call: WAL with synchronous=FULL syncs every commit
        // (GRDB's pool sets NORMAL, which a power cut can roll back).
        do {
            try database.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        } catch {
            throw classify(error, path: path)
        }
        return try prepare(database, path: path, retention: retention)
    }

    /// Only a missing file means "new". An empty file was not written by ecs-warden (it writes its
    /// schema at once): taking it as a new database would hide a lost journal.
    static func checkExistingFile(_ path: String) throws {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else { return }
        if (attributes[.size] as? NSNumber)?.int64Value == 0 {
            throw StateStoreError.damaged(
                path: path, reason: "the file is empty (0 bytes), which ecs-warden never leaves; if a fresh state is really wanted, remove it")
        }
    }

    /// A connection to the database file: a pool (WAL, concurrent readers) to write, a queue to read only.
    private static func connect(path: String, readOnly: Bool) throws -> any DatabaseWriter {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.readonly = readOnly
        do {
            return readOnly ? try DatabaseQueue(path: path, configuration: configuration) : try DatabasePool(path: path, configuration: configuration)
        } catch {
            throw classify(error, path: path)
        }
    }

    /// Opens an existing `state.sqlite` in `directory` for reading only (the CLI preview beside a
    /// running daemon). Nil when there is no database there yet.
    public static func openReadOnly(directory: String, retention: RetentionPolicy = RetentionPolicy()) throws -> SQLiteStateStore? {
        let path = (directory as NSString).appendingPathComponent("state.sqlite")
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let queue = try connect(path: path, readOnly: true)
        let pending: [String] = try queue.read { db in
            guard try db.tableExists("grdb_migrations") else { return migrator.migrations }
            let applied = try migrator.appliedIdentifiers(db)
            return migrator.migrations.filter { !applied.contains($0) }
        }
        if !pending.isEmpty {
            throw StateStoreError.unusableDirectory(
                path: directory, reason: "its database needs migrations \(pending.joined(separator: ", ")); start the daemon once to apply them")
        }
        return SQLiteStateStore(database: queue, path: path, retention: retention)
    }

    /// An in-memory store (tests, `--once` without a state directory).
    public static func inMemory(retention: RetentionPolicy = RetentionPolicy()) throws -> SQLiteStateStore {
        try prepare(try DatabaseQueue(), path: ":memory:", retention: retention)
    }

    private static func prepare(_ database: any DatabaseWriter, path: String, retention: RetentionPolicy) throws -> SQLiteStateStore {
        let migrator = Self.migrator
        do {
            // The checks before migrating run on the writer, so that no reader connection of the
            // pool is opened on the old schema: one opened then read a v3 journal upgraded to v4
            // without its new columns (the fence came back nil), as the v3 upgrade test showed.
            let unknown: [String] = try database.writeWithoutTransaction { db in
                guard try db.tableExists("grdb_migrations") else { return [] }
                let applied = try migrator.appliedIdentifiers(db)
                return applied.subtracting(migrator.migrations).sorted()
            }
            if !unknown.isEmpty { throw StateStoreError.newerSchema(path: path, unknownMigrations: unknown) }
            try database.writeWithoutTransaction { db in
                let check = try String.fetchOne(db, sql: "PRAGMA quick_check") ?? "no answer"
                if check != "ok" { throw StateStoreError.damaged(path: path, reason: "integrity check: \(check)") }
            }
            try migrator.migrate(database)
        } catch let error as StateStoreError {
            throw error
        } catch {
            throw classify(error, path: path)
        }
        return SQLiteStateStore(database: database, path: path, retention: retention)
    }

    /// What an error opening or checking the database means: only "not a database" and corruption
    /// are damage; a file or directory that cannot be read or written is an unusable place (whose
    /// advice must never be "move it aside": the data may be fine), with the OS reason.
    static func classify(_ error: any Error, path: String) -> StateStoreError {
        guard let error = error as? DatabaseError else { return .damaged(path: path, reason: "\(error)") }
        switch error.resultCode {
        case .SQLITE_NOTADB, .SQLITE_CORRUPT, .SQLITE_FORMAT:
            return .damaged(path: path, reason: error.message ?? "\(error)")
        default:
            let os = errno == 0 ? "" : " (\(String(cString: strerror(errno))))"
            return .unusableDirectory(path: (path as NSString).deletingLastPathComponent, reason: "\(error.message ?? "\(error)")\(os)")
        }
    }

    /// The schema, one migration per version.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE journal (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, kind TEXT NOT NULL, loop TEXT NOT NULL,
                        project TEXT, subject TEXT, action TEXT, severity TEXT, client_token TEXT, job_id TEXT,
                        servers TEXT NOT NULL DEFAULT '[]', result TEXT, message TEXT NOT NULL, intent_seq INTEGER);
                    CREATE INDEX journal_at ON journal(at);
                    CREATE INDEX journal_intent ON journal(intent_seq);
                    CREATE TABLE first_seen (
                        project TEXT NOT NULL, server_id TEXT NOT NULL, status TEXT NOT NULL, task_state TEXT NOT NULL,
                        first_seen REAL NOT NULL, PRIMARY KEY (project, server_id));
                    CREATE TABLE sale_states (
                        region TEXT NOT NULL, az TEXT NOT NULL, flavor TEXT NOT NULL, state TEXT NOT NULL, since REAL NOT NULL,
                        PRIMARY KEY (region, az, flavor));
                    CREATE TABLE sale_transitions (
                        id INTEGER PRIMARY KEY AUTOINCREMENT, region TEXT NOT NULL, az TEXT NOT NULL, flavor TEXT NOT NULL,
                        from_state TEXT, to_state TEXT NOT NULL, at REAL NOT NULL);
                    CREATE INDEX sale_transitions_at ON sale_transitions(at);
                    CREATE TABLE quota_history (
                        project TEXT NOT NULL, resource TEXT NOT NULL, used INTEGER NOT NULL, quota INTEGER, at REAL NOT NULL);
                    CREATE INDEX quota_history_key ON quota_history(project, resource, at);
                    CREATE TABLE quota_levels (
                        project TEXT NOT NULL, resource TEXT NOT NULL, level TEXT NOT NULL, PRIMARY KEY (project, resource));
                    CREATE TABLE snoozes (
                        project TEXT NOT NULL, server_id TEXT NOT NULL, until REAL NOT NULL, reason TEXT NOT NULL,
                        PRIMARY KEY (project, server_id));
                    CREATE TABLE watched_jobs (
                        project TEXT NOT NULL, job_id TEXT NOT NULL, job_type TEXT, source TEXT NOT NULL, registered_at REAL NOT NULL,
                        intent_seq INTEGER, status TEXT, closed_at REAL, PRIMARY KEY (project, job_id));
                    CREATE TABLE schedule_marks (
                        schedule TEXT NOT NULL, project TEXT NOT NULL, boundary REAL NOT NULL, PRIMARY KEY (schedule, project));
                    """)
        }
        // v2: results and kinds from closed sets (CHECK), the boundary an intent acts on, retries,
        // per-server outcomes of jobs, events reported once per episode, the begin time of jobs.
        // Results written by v1 are renamed: `error` was a refusal, `fail` a failed job.
        migrator.registerMigration("v2") { db in
            let kinds = JournalEntry.Kind.allCases.map { "'\($0.rawValue)'" }.joined(separator: ",")
            let results = ActionResult.allCases.map { "'\($0.rawValue)'" }.joined(separator: ",")
            try db.execute(
                sql: """
                    CREATE TABLE journal_v2 (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, kind TEXT NOT NULL CHECK (kind IN (\(kinds))), loop TEXT NOT NULL,
                        project TEXT, subject TEXT, action TEXT, severity TEXT, client_token TEXT, job_id TEXT,
                        servers TEXT NOT NULL DEFAULT '[]', result TEXT CHECK (result IS NULL OR result IN (\(results))),
                        message TEXT NOT NULL, intent_seq INTEGER, boundary REAL, retry_of INTEGER);
                    INSERT INTO journal_v2 (seq, at, kind, loop, project, subject, action, severity, client_token, job_id, servers, result, message, intent_seq)
                        SELECT seq, at, CASE WHEN kind IN (\(kinds)) THEN kind ELSE 'event' END, loop, project, subject, action, severity, client_token, job_id,
                        servers,
                        CASE result WHEN 'error' THEN 'refused' WHEN 'fail' THEN 'failed' ELSE
                            CASE WHEN result IS NULL OR result IN (\(results)) THEN result ELSE 'unknown' END END,
                        message, intent_seq FROM journal;
                    -- Sequence numbers are never reused: the new table continues from the old one's
                    -- AUTOINCREMENT counter (which may be above the highest row left).
                    INSERT INTO sqlite_sequence (name, seq) SELECT 'journal_v2', 0 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'journal_v2');
                    UPDATE sqlite_sequence SET seq = MAX(seq, COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'journal'), 0)) WHERE name = 'journal_v2';
                    DROP TABLE journal;
                    ALTER TABLE journal_v2 RENAME TO journal;
                    CREATE INDEX journal_at ON journal(at);
                    CREATE INDEX journal_intent ON journal(intent_seq);
                    CREATE INDEX journal_loop_kind ON journal(loop, kind, at);
                    CREATE TABLE server_outcomes (
                        intent_seq INTEGER NOT NULL, server_id TEXT NOT NULL, result TEXT NOT NULL CHECK (result IN ('success','failed')),
                        error_code TEXT, retry_at REAL, at REAL NOT NULL, PRIMARY KEY (intent_seq, server_id));
                    CREATE TABLE reported_episodes (
                        key TEXT PRIMARY KEY, loop TEXT NOT NULL, since REAL NOT NULL);
                    ALTER TABLE watched_jobs ADD COLUMN began_at REAL;
                    """)
        }
        // v3: stop windows of scheduled servers (what the schedules saved).
        migrator.registerMigration("v3") { db in
            try db.execute(
                sql: """
                    CREATE TABLE savings_windows (
                        id INTEGER PRIMARY KEY AUTOINCREMENT, project TEXT NOT NULL, server_id TEXT NOT NULL, schedule TEXT NOT NULL,
                        flavor TEXT NOT NULL, vcpus INTEGER NOT NULL, ram_mb INTEGER NOT NULL, opened_at REAL NOT NULL, closed_at REAL,
                        counted_until REAL NOT NULL);
                    CREATE INDEX savings_open ON savings_windows(project, server_id, closed_at);
                    CREATE INDEX savings_time ON savings_windows(opened_at, closed_at);
                    """)
        }
        // v4: the fence a journal entry was written under (cluster mode's shard, node and epoch),
        // kept so both backends round-trip it. One node has no leases to check it against.
        migrator.registerMigration("v4") { db in
            try db.execute(
                sql: """
                    ALTER TABLE journal ADD COLUMN shard TEXT;
                    ALTER TABLE journal ADD COLUMN node TEXT;
                    ALTER TABLE journal ADD COLUMN epoch INTEGER;
                    """)
        }
        return migrator
    }
}

/// The mapping every table's record shares: snake_case columns, dates as Unix seconds (REAL), as
/// the schema has stored them since v1.
protocol StoredRecord: Codable, FetchableRecord, EncodableRecord {}

extension StoredRecord {
    static var databaseColumnDecodingStrategy: DatabaseColumnDecodingStrategy { .convertFromSnakeCase }
    static var databaseColumnEncodingStrategy: DatabaseColumnEncodingStrategy { .convertToSnakeCase }
    static func databaseDateDecodingStrategy(for column: String) -> DatabaseDateDecodingStrategy { .timeIntervalSince1970 }
    static func databaseDateEncodingStrategy(for column: String) -> DatabaseDateEncodingStrategy { .timeIntervalSince1970 }
}
