import Foundation
import GRDB

/// Why the state store could not be opened. Never answered by silently starting afresh.
public enum StateStoreError: Error, CustomStringConvertible, Equatable {
    /// The file is not a SQLite database, or SQLite reports it corrupt.
    case damaged(path: String, reason: String)
    /// The database was written by a newer ecs-warden (migrations this version does not know).
    case newerSchema(path: String, unknownMigrations: [String])
    /// The directory cannot be created or written.
    case unusableDirectory(path: String, reason: String)
    /// A stored value outside its closed set (written by hand, or by a newer version).
    case undecodable(what: String, value: String)

    public var description: String {
        switch self {
        case .damaged(let path, let reason):
            return "state database \(path) is damaged (\(reason)); move it aside to start with an empty state, or restore a backup"
        case .newerSchema(let path, let unknown):
            return "state database \(path) was written by a newer ecs-warden (unknown migrations: \(unknown.joined(separator: ", "))); upgrade ecs-warden or point it at another state directory"
        case .unusableDirectory(let path, let reason):
            return "state directory \(path) is unusable: \(reason)"
        case .undecodable(let what, let value):
            return "state database holds a \(what) this version does not know: '\(value)'"
        }
    }
}

/// How much history the store keeps.
public struct RetentionPolicy: Sendable, Equatable {
    /// Journal entries older than this are removed.
    public var journalDays: Double
    /// At most this many journal entries are kept.
    public var journalMaxEntries: Int
    /// Quota samples older than this are removed (the forecast window must fit).
    public var quotaHistoryDays: Double
    /// Sale-state transitions older than this are removed.
    public var transitionDays: Double

    public init(journalDays: Double = 90, journalMaxEntries: Int = 500_000, quotaHistoryDays: Double = 30, transitionDays: Double = 365) {
        self.journalDays = journalDays
        self.journalMaxEntries = journalMaxEntries
        self.quotaHistoryDays = quotaHistoryDays
        self.transitionDays = transitionDays
    }
}

/// One journal entry: an intent written before a mutating call, its outcome written after, or
/// an event (threshold crossed, server stuck, flavor sold out, tag error…). Sequence numbers only
/// grow, so a client can follow the journal with `since`.
public struct JournalEntry: Sendable, Equatable, Codable {
    /// `intent`, `outcome`, `event` or `dry_run`.
    public enum Kind: String, Sendable, Codable, CaseIterable { case intent, outcome, event, dryRun = "dry_run" }

    public var seq: Int64
    public var at: Date
    public var kind: Kind
    public var loop: String
    public var project: String?
    /// The schedule, resource, flavor or job the entry is about.
    public var subject: String?
    /// stop, start, hard-stop, threshold-crossed, stuck, sold-out, …
    public var action: String?
    /// info, warning or critical (events).
    public var severity: String?
    public var clientToken: String?
    public var jobId: String?
    /// Server ids concerned.
    public var servers: [String]
    /// Intents and outcomes: a value of a closed set (see `ActionResult`).
    public var result: ActionResult?
    public var message: String
    /// For an outcome: the intent it closes.
    public var intentSeq: Int64?
    /// For a scheduler intent: the schedule boundary it acts on (nil when enforcing).
    public var boundary: Date?
    /// For an intent that retries servers whose sub-jobs failed: the intent it retries.
    public var retryOf: Int64?

    public init(
        at: Date, kind: Kind, loop: String, project: String? = nil, subject: String? = nil, action: String? = nil, severity: String? = nil,
        clientToken: String? = nil, jobId: String? = nil, servers: [String] = [], result: ActionResult? = nil, message: String, intentSeq: Int64? = nil,
        boundary: Date? = nil, retryOf: Int64? = nil
    ) {
        self.seq = 0
        self.at = at
        self.kind = kind
        self.loop = loop
        self.project = project
        self.subject = subject
        self.action = action
        self.severity = severity
        self.clientToken = clientToken
        self.jobId = jobId
        self.servers = servers
        self.result = result
        self.message = message
        self.intentSeq = intentSeq
        self.boundary = boundary
        self.retryOf = retryOf
    }
}

/// A sale-state transition of a flavor in an AZ.
public struct SaleTransition: Sendable, Equatable, Codable {
    public var region: String
    public var az: String
    public var flavor: String
    /// nil for the first observation.
    public var from: String?
    public var to: String
    public var at: Date
}

/// A job the stuck-task loop follows.
public struct WatchedJob: Sendable, Equatable, Codable {
    public var project: String
    public var jobId: String
    public var jobType: String?
    /// `warden` (our own action) or `external` (registered through the control API).
    public var source: String
    public var registeredAt: Date
    /// The journal intent that created it, for our own actions.
    public var intentSeq: Int64?
    public var status: String?
    public var closedAt: Date?
    /// The job's `begin_time`, once the API told it.
    public var beganAt: Date?

    public init(
        project: String, jobId: String, jobType: String?, source: String, registeredAt: Date, intentSeq: Int64?, status: String? = nil, closedAt: Date? = nil,
        beganAt: Date? = nil
    ) {
        self.project = project
        self.jobId = jobId
        self.jobType = jobType
        self.source = source
        self.registeredAt = registeredAt
        self.intentSeq = intentSeq
        self.status = status
        self.closedAt = closedAt
        self.beganAt = beganAt
    }
}

/// A snooze stored by the daemon (set through the control API).
public struct Snooze: Sendable, Equatable, Codable {
    public var project: String
    public var serverId: String
    public var until: Date
    public var reason: String

    public init(project: String, serverId: String, until: Date, reason: String) {
        self.project = project
        self.serverId = serverId
        self.until = until
        self.reason = reason
    }
}

/// The durable state: an embedded SQLite database (WAL) under the state directory.
///
/// Holds the action journal (intents, outcomes, events), first-seen times of server states,
/// sale-state transitions, quota history and threshold levels, snoozes, watched jobs and the last
/// schedule boundary handled. A schema version with migrations; a damaged or newer database is an
/// error, never a silent reset.
public final class StateStore: Sendable {
    let database: any DatabaseWriter
    public let path: String
    public let retention: RetentionPolicy

    private init(database: any DatabaseWriter, path: String, retention: RetentionPolicy) {
        self.database = database
        self.path = path
        self.retention = retention
    }

    /// Opens (creating if needed) `state.sqlite` in `directory`.
    public static func open(directory: String, retention: RetentionPolicy = RetentionPolicy()) throws -> StateStore {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw StateStoreError.unusableDirectory(path: directory, reason: error.localizedDescription)
        }
        let path = (directory as NSString).appendingPathComponent("state.sqlite")
        return try prepare(try connect(path: path, readOnly: false), path: path, retention: retention)
    }

    /// A connection to the database file: a pool (WAL, concurrent readers) to write, a queue to read only.
    private static func connect(path: String, readOnly: Bool) throws -> any DatabaseWriter {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.readonly = readOnly
        do {
            return readOnly ? try DatabaseQueue(path: path, configuration: configuration) : try DatabasePool(path: path, configuration: configuration)
        } catch {
            throw StateStoreError.damaged(path: path, reason: "\(error)")
        }
    }

    /// Opens an existing `state.sqlite` in `directory` for reading only (the CLI preview beside a
    /// running daemon). Nil when there is no database there yet.
    public static func openReadOnly(directory: String, retention: RetentionPolicy = RetentionPolicy()) throws -> StateStore? {
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
        return StateStore(database: queue, path: path, retention: retention)
    }

    /// An in-memory store (tests, `--once` without a state directory).
    public static func inMemory(retention: RetentionPolicy = RetentionPolicy()) throws -> StateStore {
        try prepare(try DatabaseQueue(), path: ":memory:", retention: retention)
    }

    private static func prepare(_ database: any DatabaseWriter, path: String, retention: RetentionPolicy) throws -> StateStore {
        let migrator = Self.migrator
        do {
            let unknown: [String] = try database.read { db in
                guard try db.tableExists("grdb_migrations") else { return [] }
                let applied = try migrator.appliedIdentifiers(db)
                return applied.subtracting(migrator.migrations).sorted()
            }
            if !unknown.isEmpty { throw StateStoreError.newerSchema(path: path, unknownMigrations: unknown) }
            try database.read { db in
                let check = try String.fetchOne(db, sql: "PRAGMA quick_check") ?? "no answer"
                if check != "ok" { throw StateStoreError.damaged(path: path, reason: "integrity check: \(check)") }
            }
            try migrator.migrate(database)
        } catch let error as StateStoreError {
            throw error
        } catch {
            throw StateStoreError.damaged(path: path, reason: "\(error)")
        }
        return StateStore(database: database, path: path, retention: retention)
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
        return migrator
    }

    // MARK: Journal

    /// Appends an entry and returns its sequence number.
    @discardableResult
    public func append(_ entry: JournalEntry) async throws -> Int64 {
        try await database.write { db in
            try db.execute(
                sql: """
                    INSERT INTO journal (at, kind, loop, project, subject, action, severity, client_token, job_id, servers, result, message, intent_seq,
                        boundary, retry_of)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    entry.at.timeIntervalSince1970, entry.kind.rawValue, entry.loop, entry.project, entry.subject, entry.action, entry.severity,
                    entry.clientToken, entry.jobId, try Self.encodeList(entry.servers), entry.result?.rawValue, entry.message, entry.intentSeq,
                    entry.boundary?.timeIntervalSince1970, entry.retryOf,
                ])
            return db.lastInsertedRowID
        }
    }

    /// Entries with a sequence number above `since`, oldest first.
    public func journal(since: Int64 = 0, limit: Int = 1000, kinds: Set<JournalEntry.Kind>? = nil) async throws -> [JournalEntry] {
        try await database.read { db in
            var sql = "SELECT * FROM journal WHERE seq > ?"
            var arguments: StatementArguments = [since]
            if let kinds, !kinds.isEmpty {
                sql += " AND kind IN (\(kinds.map { _ in "?" }.joined(separator: ",")))"
                for kind in kinds.sorted(by: { $0.rawValue < $1.rawValue }) { _ = arguments.append(contentsOf: [kind.rawValue]) }
            }
            sql += " ORDER BY seq LIMIT ?"
            _ = arguments.append(contentsOf: [limit])
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map(Self.entry)
        }
    }

    /// Intents without any outcome: the call may or may not have gone out (a crash between the two
    /// writes). The work to resolve at start.
    public func openIntents(loop: String? = nil) async throws -> [JournalEntry] {
        try await database.read { db in
            var sql = """
                SELECT * FROM journal i WHERE i.kind = 'intent'
                AND NOT EXISTS (SELECT 1 FROM journal o WHERE o.kind = 'outcome' AND o.intent_seq = i.seq)
                """
            var arguments: StatementArguments = []
            if let loop {
                sql += " AND i.loop = ?"
                _ = arguments.append(contentsOf: [loop])
            }
            sql += " ORDER BY i.seq"
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map(Self.entry)
        }
    }

    /// The outcomes recorded for an intent.
    public func outcomes(of intentSeq: Int64) async throws -> [JournalEntry] {
        try await database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM journal WHERE kind = 'outcome' AND intent_seq = ? ORDER BY seq", arguments: [intentSeq]).map(Self.entry)
        }
    }

    /// The highest sequence number so far.
    public func lastSequence() async throws -> Int64 {
        try await database.read { db in try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM journal") ?? 0 }
    }

    static func entry(_ row: Row) throws -> JournalEntry {
        let kindText: String = row["kind"]
        guard let kind = JournalEntry.Kind(rawValue: kindText) else { throw StateStoreError.undecodable(what: "journal kind", value: kindText) }
        var entry = JournalEntry(
            at: Date(timeIntervalSince1970: row["at"]), kind: kind, loop: row["loop"],
            project: row["project"], subject: row["subject"], action: row["action"], severity: row["severity"],
            clientToken: row["client_token"], jobId: row["job_id"], servers: try decodeList(row["servers"]), result: try result(row["result"]),
            message: row["message"], intentSeq: row["intent_seq"], boundary: (row["boundary"] as Double?).map(Date.init(timeIntervalSince1970:)),
            retryOf: row["retry_of"])
        entry.seq = row["seq"]
        return entry
    }

    /// A stored result; a value outside the closed set is an error, never guessed.
    static func result(_ text: String?) throws -> ActionResult? {
        guard let text else { return nil }
        guard let result = ActionResult(rawValue: text) else { throw StateStoreError.undecodable(what: "journal result", value: text) }
        return result
    }

    static func encodeList(_ list: [String]) throws -> String {
        String(decoding: try JSONEncoder().encode(list), as: UTF8.self)
    }

    static func decodeList(_ text: String?) throws -> [String] {
        guard let text else { return [] }
        do {
            return try JSONDecoder().decode([String].self, from: Data(text.utf8))
        } catch {
            throw StateStoreError.undecodable(what: "server list", value: String(text.prefix(80)))
        }
    }

    // MARK: First seen

    /// When the daemon first saw this server in this (status, task_state) pair; a new pair starts
    /// a new clock. Persisted, so a restart does not reset it.
    public func firstSeen(project: String, serverId: String, status: String, taskState: String?, now: Date) async throws -> Date {
        let task = taskState ?? ""
        return try await database.write { db in
            if let row = try Row.fetchOne(
                db, sql: "SELECT status, task_state, first_seen FROM first_seen WHERE project = ? AND server_id = ?", arguments: [project, serverId]),
                row["status"] as String == status, row["task_state"] as String == task
            {
                return Date(timeIntervalSince1970: row["first_seen"])
            }
            try db.execute(
                sql: "INSERT OR REPLACE INTO first_seen (project, server_id, status, task_state, first_seen) VALUES (?, ?, ?, ?, ?)",
                arguments: [project, serverId, status, task, now.timeIntervalSince1970])
            return now
        }
    }

    /// Records many servers' pairs at once and returns each one's first-seen time.
    public func firstSeen(project: String, states: [(serverId: String, status: String, taskState: String?)], now: Date) async throws -> [String: Date] {
        try await database.write { db in
            var existing: [String: (String, String, Double)] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT server_id, status, task_state, first_seen FROM first_seen WHERE project = ?", arguments: [project]) {
                existing[row["server_id"]] = (row["status"], row["task_state"], row["first_seen"])
            }
            var result: [String: Date] = [:]
            let seen = Set(states.map(\.serverId))
            for state in states {
                let task = state.taskState ?? ""
                if let known = existing[state.serverId], known.0 == state.status, known.1 == task {
                    result[state.serverId] = Date(timeIntervalSince1970: known.2)
                } else {
                    try db.execute(
                        sql: "INSERT OR REPLACE INTO first_seen (project, server_id, status, task_state, first_seen) VALUES (?, ?, ?, ?, ?)",
                        arguments: [project, state.serverId, state.status, task, now.timeIntervalSince1970])
                    result[state.serverId] = now
                }
            }
            // Servers no longer listed (deleted) or no longer in a watched state are forgotten.
            for gone in existing.keys where !seen.contains(gone) {
                try db.execute(sql: "DELETE FROM first_seen WHERE project = ? AND server_id = ?", arguments: [project, gone])
            }
            return result
        }
    }

    // MARK: Sale states

    /// The current sale states of a region: (az, flavor) → (state, since).
    public func saleStates(region: String) async throws -> [SaleKey: (state: String, since: Date)] {
        try await database.read { db in
            var states: [SaleKey: (String, Date)] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT az, flavor, state, since FROM sale_states WHERE region = ?", arguments: [region]) {
                states[SaleKey(az: row["az"], flavor: row["flavor"])] = (row["state"], Date(timeIntervalSince1970: row["since"]))
            }
            return states
        }
    }

    /// Writes a region's observed states; returns the transitions (first observations included).
    public func recordSaleStates(region: String, states: [SaleKey: String], at now: Date) async throws -> [SaleTransition] {
        try await database.write { db in
            var known: [SaleKey: String] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT az, flavor, state FROM sale_states WHERE region = ?", arguments: [region]) {
                known[SaleKey(az: row["az"], flavor: row["flavor"])] = row["state"]
            }
            var transitions: [SaleTransition] = []
            for (key, state) in states.sorted(by: { ($0.key.az, $0.key.flavor) < ($1.key.az, $1.key.flavor) }) where known[key] != state {
                try db.execute(
                    sql: "INSERT OR REPLACE INTO sale_states (region, az, flavor, state, since) VALUES (?, ?, ?, ?, ?)",
                    arguments: [region, key.az, key.flavor, state, now.timeIntervalSince1970])
                try db.execute(
                    sql: "INSERT INTO sale_transitions (region, az, flavor, from_state, to_state, at) VALUES (?, ?, ?, ?, ?, ?)",
                    arguments: [region, key.az, key.flavor, known[key], state, now.timeIntervalSince1970])
                transitions.append(SaleTransition(region: region, az: key.az, flavor: key.flavor, from: known[key], to: state, at: now))
            }
            // Flavors that vanished from the catalogue are forgotten (no transition: nothing is sold).
            for key in known.keys where states[key] == nil {
                try db.execute(sql: "DELETE FROM sale_states WHERE region = ? AND az = ? AND flavor = ?", arguments: [region, key.az, key.flavor])
            }
            return transitions
        }
    }

    /// Transitions since `since`, newest last.
    public func saleTransitions(region: String? = nil, since: Date? = nil, limit: Int = 1000) async throws -> [SaleTransition] {
        try await database.read { db in
            var sql = "SELECT * FROM sale_transitions WHERE at >= ?"
            var arguments: StatementArguments = [since?.timeIntervalSince1970 ?? 0]
            if let region {
                sql += " AND region = ?"
                _ = arguments.append(contentsOf: [region])
            }
            sql += " ORDER BY id DESC LIMIT ?"
            _ = arguments.append(contentsOf: [limit])
            return try Row.fetchAll(db, sql: sql, arguments: arguments).reversed().map { row in
                SaleTransition(
                    region: row["region"], az: row["az"], flavor: row["flavor"], from: row["from_state"], to: row["to_state"],
                    at: Date(timeIntervalSince1970: row["at"]))
            }
        }
    }

    // MARK: Quota

    /// Appends one sample per resource.
    public func appendQuotaSamples(project: String, samples: [(resource: String, used: Int, limit: Int?)], at now: Date) async throws {
        try await database.write { db in
            for sample in samples {
                try db.execute(
                    sql: "INSERT INTO quota_history (project, resource, used, quota, at) VALUES (?, ?, ?, ?, ?)",
                    arguments: [project, sample.resource, sample.used, sample.limit, now.timeIntervalSince1970])
            }
        }
    }

    /// A resource's samples since `since`, oldest first.
    public func quotaHistory(project: String, resource: String, since: Date) async throws -> [(at: Date, used: Int)] {
        try await database.read { db in
            try Row.fetchAll(
                db, sql: "SELECT at, used FROM quota_history WHERE project = ? AND resource = ? AND at >= ? ORDER BY at",
                arguments: [project, resource, since.timeIntervalSince1970]
            ).map { (Date(timeIntervalSince1970: $0["at"]), $0["used"]) }
        }
    }

    /// The threshold levels last recorded for a project (resource → level).
    public func quotaLevels(project: String) async throws -> [String: String] {
        try await database.read { db in
            var levels: [String: String] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT resource, level FROM quota_levels WHERE project = ?", arguments: [project]) {
                levels[row["resource"]] = row["level"]
            }
            return levels
        }
    }

    public func setQuotaLevel(project: String, resource: String, level: String) async throws {
        try await database.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO quota_levels (project, resource, level) VALUES (?, ?, ?)", arguments: [project, resource, level])
        }
    }

    // MARK: Snoozes

    public func snooze(_ snooze: Snooze) async throws {
        try await database.write { db in
            try db.execute(
                sql: "INSERT OR REPLACE INTO snoozes (project, server_id, until, reason) VALUES (?, ?, ?, ?)",
                arguments: [snooze.project, snooze.serverId, snooze.until.timeIntervalSince1970, snooze.reason])
        }
    }

    /// Removes a snooze; true if there was one.
    @discardableResult
    public func unsnooze(project: String, serverId: String) async throws -> Bool {
        try await database.write { db in
            try db.execute(sql: "DELETE FROM snoozes WHERE project = ? AND server_id = ?", arguments: [project, serverId])
            return db.changesCount > 0
        }
    }

    /// Snoozes still in force at `now`.
    public func activeSnoozes(at now: Date) async throws -> [Snooze] {
        try await database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM snoozes WHERE until > ? ORDER BY project, server_id", arguments: [now.timeIntervalSince1970]).map {
                Snooze(project: $0["project"], serverId: $0["server_id"], until: Date(timeIntervalSince1970: $0["until"]), reason: $0["reason"])
            }
        }
    }

    // MARK: Watched jobs

    /// Starts following a job (idempotent).
    public func watch(_ job: WatchedJob) async throws {
        try await database.write { db in
            try db.execute(
                sql: """
                    INSERT OR IGNORE INTO watched_jobs (project, job_id, job_type, source, registered_at, intent_seq, status, closed_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    job.project, job.jobId, job.jobType, job.source, job.registeredAt.timeIntervalSince1970, job.intentSeq, job.status,
                    job.closedAt?.timeIntervalSince1970,
                ])
        }
    }

    /// Jobs not yet closed.
    public func openJobs() async throws -> [WatchedJob] {
        try await jobs(sql: "SELECT * FROM watched_jobs WHERE closed_at IS NULL ORDER BY registered_at")
    }

    /// Every watched job, newest first (bounded).
    public func recentJobs(limit: Int = 500) async throws -> [WatchedJob] {
        try await jobs(sql: "SELECT * FROM watched_jobs ORDER BY registered_at DESC LIMIT \(max(1, limit))")
    }

    private func jobs(sql: String) async throws -> [WatchedJob] {
        try await database.read { db in
            try Row.fetchAll(db, sql: sql).map { row in
                WatchedJob(
                    project: row["project"], jobId: row["job_id"], jobType: row["job_type"], source: row["source"],
                    registeredAt: Date(timeIntervalSince1970: row["registered_at"]), intentSeq: row["intent_seq"], status: row["status"],
                    closedAt: (row["closed_at"] as Double?).map(Date.init(timeIntervalSince1970:)),
                    beganAt: (row["began_at"] as Double?).map(Date.init(timeIntervalSince1970:)))
            }
        }
    }

    /// Updates a job's last seen status; closes it when finished.
    public func updateJob(project: String, jobId: String, status: String, jobType: String?, closedAt: Date?, beganAt: Date? = nil) async throws {
        try await database.write { db in
            try db.execute(
                sql: """
                    UPDATE watched_jobs SET status = ?, job_type = COALESCE(?, job_type), closed_at = ?, began_at = COALESCE(?, began_at)
                    WHERE project = ? AND job_id = ?
                    """,
                arguments: [status, jobType, closedAt?.timeIntervalSince1970, beganAt?.timeIntervalSince1970, project, jobId])
        }
    }

    // MARK: Schedule marks

    /// The last boundary of `schedule` handled in `project`.
    public func lastHandledBoundary(schedule: String, project: String) async throws -> Date? {
        try await database.read { db in
            try Double.fetchOne(db, sql: "SELECT boundary FROM schedule_marks WHERE schedule = ? AND project = ?", arguments: [schedule, project])
                .map(Date.init(timeIntervalSince1970:))
        }
    }

    public func setLastHandledBoundary(schedule: String, project: String, boundary: Date) async throws {
        try await database.write { db in
            try db.execute(
                sql: "INSERT OR REPLACE INTO schedule_marks (schedule, project, boundary) VALUES (?, ?, ?)",
                arguments: [schedule, project, boundary.timeIntervalSince1970])
        }
    }

    // MARK: Retention

    /// Removes history beyond the retention policy. Open intents are never removed.
    public func prune(now: Date) async throws {
        try await database.write { db in
            let journalCutoff = now.timeIntervalSince1970 - retention.journalDays * 86_400
            try db.execute(
                sql: """
                    DELETE FROM journal WHERE at < ? AND NOT (kind = 'intent'
                    AND NOT EXISTS (SELECT 1 FROM journal o WHERE o.kind = 'outcome' AND o.intent_seq = journal.seq))
                    """,
                arguments: [journalCutoff])
            try db.execute(
                sql: "DELETE FROM journal WHERE seq <= (SELECT MAX(seq) FROM journal) - ? AND kind != 'intent'",
                arguments: [retention.journalMaxEntries])
            try db.execute(sql: "DELETE FROM quota_history WHERE at < ?", arguments: [now.timeIntervalSince1970 - retention.quotaHistoryDays * 86_400])
            try db.execute(
                sql: "DELETE FROM sale_transitions WHERE at < ?", arguments: [now.timeIntervalSince1970 - retention.transitionDays * 86_400])
            try db.execute(sql: "DELETE FROM snoozes WHERE until < ?", arguments: [now.timeIntervalSince1970])
            try db.execute(
                sql: "DELETE FROM watched_jobs WHERE closed_at IS NOT NULL AND closed_at < ?", arguments: [journalCutoff])
        }
    }
}

/// An (AZ, flavor) pair of a region.
public struct SaleKey: Sendable, Hashable, Codable {
    public var az: String
    public var flavor: String

    public init(az: String, flavor: String) {
        self.az = az
        self.flavor = flavor
    }
}
