import Foundation
import PostgresNIO
import WardenCore

extension PostgresStateStore {
    /// The journal's columns, in the order `journalEntry(_:)` reads them.
    static let journalColumns = """
        seq, at, kind, loop, project, subject, action, severity, client_token, job_id, servers, result, message, intent_seq, boundary, retry_of, \
        shard, node, epoch
        """

    // MARK: Writing

    /// Inserts `entry` with the next sequence number (the counter's row stays locked until the
    /// transaction commits: numbers commit in order) and returns it.
    func insert(_ entry: JournalEntry, on connection: PostgresConnection) async throws -> Int64 {
        let fence = entry.fence
        let rows = try await connection.rows(
            """
            WITH next AS (UPDATE journal_sequence SET last = last + 1 RETURNING last)
            INSERT INTO journal (\(unescaped: Self.journalColumns))
            SELECT next.last, \(entry.at.timeIntervalSince1970), \(entry.kind.rawValue), \(entry.loop), \(entry.project), \(entry.subject),
                \(entry.action), \(entry.severity), \(entry.clientToken), \(entry.jobId), \(entry.servers), \(entry.result?.rawValue), \(entry.message),
                \(entry.intentSeq), \(entry.boundary?.timeIntervalSince1970), \(entry.retryOf), \(fence?.shard.rawValue), \(fence?.node), \(fence?.epoch)
            FROM next RETURNING seq
            """, logger: logger)
        guard let seq = try rows.first?.value("seq", as: Int64.self) else {
            throw StateStoreError.damaged(path: location, reason: "the journal_sequence row is missing")
        }
        return seq
    }

    /// Throws `ShardError.fenced` unless `fence`'s node holds its shard in its epoch with a lease
    /// not yet expired by the database's clock, and keeps that row share-locked (no takeover can
    /// commit) until the calling transaction ends. Nothing to check without a fence.
    func checkFence(_ fence: ShardFence?, on connection: PostgresConnection) async throws {
        guard let fence else { return }
        let rows = try await connection.rows(
            """
            SELECT 1 AS held FROM shard_leases
            WHERE shard = \(fence.shard.rawValue) AND holder = \(fence.node) AND epoch = \(fence.epoch) AND expires_at > now()
            FOR SHARE
            """, logger: logger)
        if rows.isEmpty { throw ShardError.fenced(fence) }
    }

    /// Writes journal entries and whatever goes with them in one transaction, fenced by `fence`;
    /// an unfenced write of one statement needs no transaction of its own.
    func journalWrite<T: Sendable>(fence: ShardFence?, _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await withTransaction { [self] connection in
            try await checkFence(fence, on: connection)
            return try await body(connection)
        }
    }

    public func append(_ entry: JournalEntry) async throws -> Int64 {
        if entry.fence == nil {
            return try await withConnection { [self] connection in try await insert(entry, on: connection) }
        }
        return try await journalWrite(fence: entry.fence) { [self] connection in try await insert(entry, on: connection) }
    }

    public func recordAccepted(_ outcome: JournalEntry, watch job: WatchedJob) async throws -> Int64 {
        try await journalWrite(fence: outcome.fence) { [self] connection in
            try await insertWatchedJob(job, on: connection)
            return try await insert(outcome, on: connection)
        }
    }

    public func recordJobEnd(
        project: String, jobId: String, status: String, jobType: String?, closedAt: Date, beganAt: Date?, serverOutcomes: [ServerOutcome], outcome: JournalEntry
    ) async throws {
        try await journalWrite(fence: outcome.fence) { [self] connection in
            try await updateJob(project: project, jobId: jobId, status: status, jobType: jobType, closedAt: closedAt, beganAt: beganAt, on: connection)
            for server in serverOutcomes { try await upsert(server, on: connection) }
            _ = try await insert(outcome, on: connection)
        }
    }

    public func recordServerOutcomes(_ outcomes: [ServerOutcome]) async throws {
        guard !outcomes.isEmpty else { return }
        try await withTransaction { [self] connection in
            for outcome in outcomes { try await upsert(outcome, on: connection) }
        }
    }

    /// Records a server's sub-job outcome (the latest answer wins, as SQLite's upsert).
    func upsert(_ outcome: ServerOutcome, on connection: PostgresConnection) async throws {
        try await connection.run(
            """
            INSERT INTO server_outcomes (intent_seq, server_id, result, error_code, retry_at, at)
            VALUES (\(outcome.intentSeq), \(outcome.serverId), \(outcome.result.rawValue), \(outcome.errorCode),
                \(outcome.retryAt?.timeIntervalSince1970), \(outcome.at.timeIntervalSince1970))
            ON CONFLICT (intent_seq, server_id) DO UPDATE SET result = EXCLUDED.result, error_code = EXCLUDED.error_code,
                retry_at = EXCLUDED.retry_at, at = EXCLUDED.at
            """, logger: logger)
    }

    // MARK: Reading

    /// Journal entries of a query selecting `journalColumns`.
    func journalEntries(_ query: PostgresQuery) async throws -> [JournalEntry] {
        try await withConnection { [self] connection in try await connection.rows(query, logger: logger).map(Self.journalEntry) }
    }

    /// A journal row as an entry; a kind or result outside its closed set is an error.
    static func journalEntry(_ row: PostgresRandomAccessRow) throws -> JournalEntry {
        var fence: ShardFence?
        if let shard = try row.value("shard", as: String?.self), let node = try row.value("node", as: String?.self),
            let epoch = try row.value("epoch", as: Int64?.self)
        {
            fence = ShardFence(shard: ShardID(rawValue: shard), node: node, epoch: epoch)
        }
        var entry = JournalEntry(
            at: try row.date("at"), kind: try row.closed("kind"), loop: try row.value("loop"), project: try row.value("project"),
            subject: try row.value("subject"), action: try row.value("action"), severity: try row.value("severity"),
            clientToken: try row.value("client_token"), jobId: try row.value("job_id"), servers: try row.value("servers"),
            result: try row.value("result", as: String?.self).map { raw in
                guard let result = ActionResult(rawValue: raw) else { throw StateStoreError.undecodable(what: "result", value: raw) }
                return result
            },
            message: try row.value("message"), intentSeq: try row.value("intent_seq"), boundary: try row.optionalDate("boundary"),
            retryOf: try row.value("retry_of"), fence: fence)
        entry.seq = try row.value("seq")
        return entry
    }

    public func journal(since: Int64, limit: Int, kinds: Set<JournalEntry.Kind>?) async throws -> [JournalEntry] {
        let kinds = kinds.flatMap { $0.isEmpty ? nil : $0.map(\.rawValue).sorted() }
        return try await journalEntries(
            """
            SELECT \(unescaped: Self.journalColumns) FROM journal
            WHERE seq > \(since) AND (\(kinds)::text[] IS NULL OR kind = ANY(\(kinds)::text[]))
            ORDER BY seq LIMIT \(max(0, limit))
            """)
    }

    public func entry(seq: Int64) async throws -> JournalEntry? {
        try await journalEntries("SELECT \(unescaped: Self.journalColumns) FROM journal WHERE seq = \(seq)").first
    }

    public func openIntents(loop: String?) async throws -> [JournalEntry] {
        try await journalEntries(
            """
            SELECT \(unescaped: Self.journalColumns) FROM journal i WHERE i.kind = 'intent'
            AND NOT EXISTS (SELECT 1 FROM journal o WHERE o.kind = 'outcome' AND o.intent_seq = i.seq)
            AND (\(loop)::text IS NULL OR i.loop = \(loop)::text)
            ORDER BY i.seq
            """)
    }

    public func outcomes(of intentSeq: Int64) async throws -> [JournalEntry] {
        try await journalEntries(
            "SELECT \(unescaped: Self.journalColumns) FROM journal WHERE kind = 'outcome' AND intent_seq = \(intentSeq) ORDER BY seq")
    }

    public func lastSequence() async throws -> Int64 {
        try await withConnection { [self] connection in
            try await connection.rows("SELECT COALESCE(MAX(seq), 0) AS last FROM journal", logger: logger).first?.value("last", as: Int64.self) ?? 0
        }
    }

    public func calls(loop: String, since: Date) async throws -> [RecordedCall] {
        try await withTransaction { [self] connection in
            // One snapshot for the three reads.
            try await connection.run("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: logger)
            let intents = try await connection.rows(
                """
                SELECT \(unescaped: Self.journalColumns) FROM journal
                WHERE kind IN ('intent', 'dry_run') AND loop = \(loop) AND at >= \(since.timeIntervalSince1970) ORDER BY seq
                """, logger: logger
            ).map(Self.journalEntry)
            guard let first = intents.first?.seq else { return [] }
            var results: [Int64: [ActionResult]] = [:]
            for outcome in try await connection.rows(
                "SELECT \(unescaped: Self.journalColumns) FROM journal WHERE kind = 'outcome' AND intent_seq >= \(first) ORDER BY seq", logger: logger
            ).map(Self.journalEntry) {
                if let seq = outcome.intentSeq { results[seq, default: []].append(outcome.result ?? .unknown) }
            }
            var outcomes: [Int64: [String: ServerOutcome]] = [:]
            for row in try await connection.rows(
                "SELECT intent_seq, server_id, result, error_code, retry_at, at FROM server_outcomes WHERE intent_seq >= \(first)", logger: logger)
            {
                let outcome = try Self.serverOutcome(row)
                outcomes[outcome.intentSeq, default: [:]][outcome.serverId] = outcome
            }
            return intents.map { intent in
                RecordedCall(
                    intent: intent, state: intent.kind == .dryRun ? .accepted : CallState(outcomes: results[intent.seq] ?? []),
                    serverOutcomes: outcomes[intent.seq] ?? [:])
            }
        }
    }

    /// A `server_outcomes` row.
    static func serverOutcome(_ row: PostgresRandomAccessRow) throws -> ServerOutcome {
        ServerOutcome(
            intentSeq: try row.value("intent_seq"), serverId: try row.value("server_id"), result: try row.closed("result"),
            errorCode: try row.value("error_code"), retryAt: try row.optionalDate("retry_at"), at: try row.date("at"))
    }
}
