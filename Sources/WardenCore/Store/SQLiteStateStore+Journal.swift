import Foundation
import GRDB

/// A row of `journal`. Results and kinds decode into their closed sets: an unknown value is an
/// error (and the v2 schema's CHECK constraints refuse it on write).
struct JournalRecord: StoredRecord, MutablePersistableRecord {
    static let databaseTableName = "journal"

    var seq: Int64?
    var at: Date
    var kind: JournalEntry.Kind
    var loop: String
    var project: String?
    var subject: String?
    var action: String?
    var severity: String?
    var clientToken: String?
    var jobId: String?
    var servers: [String]
    var result: ActionResult?
    var message: String
    var intentSeq: Int64?
    var boundary: Date?
    var retryOf: Int64?
    /// The fence (cluster mode): all three or none.
    var shard: String?
    var node: String?
    var epoch: Int64?

    init(_ entry: JournalEntry) {
        seq = nil
        at = entry.at
        kind = entry.kind
        loop = entry.loop
        project = entry.project
        subject = entry.subject
        action = entry.action
        severity = entry.severity
        clientToken = entry.clientToken
        jobId = entry.jobId
        servers = entry.servers
        result = entry.result
        message = entry.message
        intentSeq = entry.intentSeq
        boundary = entry.boundary
        retryOf = entry.retryOf
        shard = entry.fence?.shard.rawValue
        node = entry.fence?.node
        epoch = entry.fence?.epoch
    }

    mutating func didInsert(_ inserted: InsertionSuccess) { seq = inserted.rowID }

    var entry: JournalEntry {
        var entry = JournalEntry(
            at: at, kind: kind, loop: loop, project: project, subject: subject, action: action, severity: severity, clientToken: clientToken, jobId: jobId,
            servers: servers, result: result, message: message, intentSeq: intentSeq, boundary: boundary, retryOf: retryOf)
        if let shard, let node, let epoch { entry.fence = ShardFence(shard: ShardID(rawValue: shard), node: node, epoch: epoch) }
        entry.seq = seq ?? 0
        return entry
    }
}

/// A row of `server_outcomes`.
struct ServerOutcomeRecord: StoredRecord, PersistableRecord {
    static let databaseTableName = "server_outcomes"

    var intentSeq: Int64
    var serverId: String
    var result: ServerOutcome.Result
    var errorCode: String?
    var retryAt: Date?
    var at: Date

    init(_ outcome: ServerOutcome) {
        intentSeq = outcome.intentSeq
        serverId = outcome.serverId
        result = outcome.result
        errorCode = outcome.errorCode
        retryAt = outcome.retryAt
        at = outcome.at
    }

    var outcome: ServerOutcome {
        ServerOutcome(intentSeq: intentSeq, serverId: serverId, result: result, errorCode: errorCode, retryAt: retryAt, at: at)
    }
}

/// A row of `reported_episodes`.
struct EpisodeRecord: StoredRecord, PersistableRecord {
    static let databaseTableName = "reported_episodes"

    var key: String
    var loop: String
    var since: Date
}

extension SQLiteStateStore {
    /// Reads records, turning a value outside a closed set into `StateStoreError.undecodable`.
    func fetch<Value: Sendable>(_ read: @escaping @Sendable (Database) throws -> Value) async throws -> Value {
        do {
            return try await database.read(read)
        } catch let error as RowDecodingError {
            throw StateStoreError.undecodable(what: "row", value: "\(error)")
        } catch let error as DecodingError {
            throw StateStoreError.undecodable(what: "row", value: "\(error)")
        }
    }

    // MARK: Journal

    public func append(_ entry: JournalEntry) async throws -> Int64 {
        try await database.write { db in
            var record = JournalRecord(entry)
            try record.insert(db)
            return record.seq ?? db.lastInsertedRowID
        }
    }

    public func journal(since: Int64, limit: Int, kinds: Set<JournalEntry.Kind>?) async throws -> [JournalEntry] {
        try await fetch { db in
            var request = JournalRecord.filter(Column("seq") > since)
            if let kinds, !kinds.isEmpty { request = request.filter(kinds.map(\.rawValue).contains(Column("kind"))) }
            return try request.order(Column("seq")).limit(max(0, limit)).fetchAll(db).map(\.entry)
        }
    }

    public func entry(seq: Int64) async throws -> JournalEntry? {
        try await fetch { db in try JournalRecord.fetchOne(db, key: seq)?.entry }
    }

    public func openIntents(loop: String?) async throws -> [JournalEntry] {
        try await fetch { db in
            var sql = """
                SELECT * FROM journal i WHERE i.kind = 'intent'
                AND NOT EXISTS (SELECT 1 FROM journal o WHERE o.kind = 'outcome' AND o.intent_seq = i.seq)
                """
            var arguments: StatementArguments = []
            if let loop {
                sql += " AND i.loop = ?"
                arguments += [loop]
            }
            return try JournalRecord.fetchAll(db, sql: sql + " ORDER BY i.seq", arguments: arguments).map(\.entry)
        }
    }

    public func outcomes(of intentSeq: Int64) async throws -> [JournalEntry] {
        try await fetch { db in
            try JournalRecord.filter(Column("kind") == JournalEntry.Kind.outcome.rawValue && Column("intent_seq") == intentSeq)
                .order(Column("seq")).fetchAll(db).map(\.entry)
        }
    }

    public func lastSequence() async throws -> Int64 {
        try await fetch { db in try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM journal") ?? 0 }
    }

    public func calls(loop: String, since: Date) async throws -> [RecordedCall] {
        try await fetch { db in
            let intents = try JournalRecord
                .filter([JournalEntry.Kind.intent.rawValue, JournalEntry.Kind.dryRun.rawValue].contains(Column("kind")))
                .filter(Column("loop") == loop && Column("at") >= since.timeIntervalSince1970)
                .order(Column("seq")).fetchAll(db).map(\.entry)
            guard let first = intents.first?.seq else { return [] }
            var results: [Int64: [ActionResult]] = [:]
            for outcome in try JournalRecord.filter(Column("kind") == JournalEntry.Kind.outcome.rawValue && Column("intent_seq") >= first)
                .order(Column("seq")).fetchAll(db)
            {
                if let seq = outcome.intentSeq { results[seq, default: []].append(outcome.result ?? .unknown) }
            }
            var outcomes: [Int64: [String: ServerOutcome]] = [:]
            for record in try ServerOutcomeRecord.filter(Column("intent_seq") >= first).fetchAll(db) {
                outcomes[record.intentSeq, default: [:]][record.serverId] = record.outcome
            }
            return intents.map { intent in
                RecordedCall(
                    intent: intent, state: intent.kind == .dryRun ? .accepted : CallState(outcomes: results[intent.seq] ?? []),
                    serverOutcomes: outcomes[intent.seq] ?? [:])
            }
        }
    }

    public func recordAccepted(_ outcome: JournalEntry, watch job: WatchedJob) async throws -> Int64 {
        try await database.write { db in
            var record = JournalRecord(outcome)
            try record.insert(db)
            try WatchedJobRecord(job).insert(db, onConflict: .ignore)
            return record.seq ?? db.lastInsertedRowID
        }
    }

    public func recordJobEnd(
        project: String, jobId: String, status: String, jobType: String?, closedAt: Date, beganAt: Date?, serverOutcomes: [ServerOutcome], outcome: JournalEntry
    ) async throws {
        try await database.write { db in
            if var job = try WatchedJobRecord.fetchOne(db, key: ["project": project, "job_id": jobId]) {
                job.status = status
                job.jobType = jobType ?? job.jobType
                job.closedAt = closedAt
                job.beganAt = beganAt ?? job.beganAt
                try job.update(db)
            }
            for server in serverOutcomes { try ServerOutcomeRecord(server).upsert(db) }
            var record = JournalRecord(outcome)
            try record.insert(db)
        }
    }

    public func recordServerOutcomes(_ outcomes: [ServerOutcome]) async throws {
        guard !outcomes.isEmpty else { return }
        try await database.write { db in
            for outcome in outcomes { try ServerOutcomeRecord(outcome).upsert(db) }
        }
    }

    // MARK: Episodes

    public func beginEpisodes(_ keys: [String], loop: String, at now: Date) async throws -> Set<String> {
        guard !keys.isEmpty else { return [] }
        return try await database.write { db in
            let statement = try db.cachedStatement(sql: "INSERT OR IGNORE INTO reported_episodes (key, loop, since) VALUES (?, ?, ?)")
            var begun = Set<String>()
            for key in keys {
                try statement.execute(arguments: [key, loop, now.timeIntervalSince1970])
                if db.changesCount > 0 { begun.insert(key) }
            }
            return begun
        }
    }

    public func endEpisodes(loop: String, prefixes: [String], keeping current: Set<String>) async throws -> [String] {
        guard !prefixes.isEmpty else { return [] }
        return try await database.write { db in
            // A range on the primary key (binary order) per prefix: every key that starts with it.
            let statement = try db.cachedStatement(sql: "SELECT key FROM reported_episodes WHERE loop = ? AND key >= ? AND key < ?")
            var ended = Set<String>()
            for prefix in Set(prefixes) {
                let rows = try Row.fetchCursor(statement, arguments: [loop, prefix, prefix + "\u{10FFFF}"])
                while let row = try rows.next() {
                    let key = try row.decode(String.self, atIndex: 0)
                    if key.hasPrefix(prefix) && !current.contains(key) { ended.insert(key) }
                }
            }
            let delete = try db.cachedStatement(sql: "DELETE FROM reported_episodes WHERE key = ?")
            for key in ended { try delete.execute(arguments: [key]) }
            return ended.sorted()
        }
    }

    public func endEpisode(_ key: String) async throws -> Bool {
        try await database.write { db in try EpisodeRecord.deleteOne(db, key: key) }
    }
}
