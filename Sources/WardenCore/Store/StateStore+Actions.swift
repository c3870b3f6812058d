import Foundation
import GRDB

/// The journal as the action executor reads it: calls with their state and per-server outcomes,
/// and the events reported once per episode.
extension StateStore {
    /// Records how each server's sub-job ended (idempotent per intent and server).
    public func recordServerOutcomes(_ outcomes: [ServerOutcome]) async throws {
        guard !outcomes.isEmpty else { return }
        try await database.write { db in
            for outcome in outcomes {
                try db.execute(
                    sql: "INSERT OR REPLACE INTO server_outcomes (intent_seq, server_id, result, error_code, retry_at, at) VALUES (?, ?, ?, ?, ?, ?)",
                    arguments: [
                        outcome.intentSeq, outcome.serverId, outcome.result.rawValue, outcome.errorCode, outcome.retryAt?.timeIntervalSince1970,
                        outcome.at.timeIntervalSince1970,
                    ])
            }
        }
    }

    /// One journal entry by its sequence number.
    public func entry(seq: Int64) async throws -> JournalEntry? {
        try await database.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM journal WHERE seq = ?", arguments: [seq]).map(Self.entry)
        }
    }

    /// The calls of `loop` (intents and dry-run entries) written at or after `since`, oldest first,
    /// each with its state and the per-server outcomes of its job.
    public func calls(loop: String, since: Date) async throws -> [RecordedCall] {
        try await database.read { db in
            let intents = try Row.fetchAll(
                db, sql: "SELECT * FROM journal WHERE kind IN ('intent', 'dry_run') AND loop = ? AND at >= ? ORDER BY seq",
                arguments: [loop, since.timeIntervalSince1970]
            ).map(Self.entry)
            guard let first = intents.first?.seq else { return [] }
            var results: [Int64: [ActionResult]] = [:]
            for row in try Row.fetchAll(
                db, sql: "SELECT intent_seq, result FROM journal WHERE kind = 'outcome' AND intent_seq >= ? ORDER BY seq", arguments: [first])
            {
                if let seq: Int64 = row["intent_seq"] { results[seq, default: []].append(try Self.result(row["result"]) ?? .unknown) }
            }
            var outcomes: [Int64: [String: ServerOutcome]] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT * FROM server_outcomes WHERE intent_seq >= ?", arguments: [first]) {
                let resultText: String = row["result"]
                guard let result = ServerOutcome.Result(rawValue: resultText) else {
                    throw StateStoreError.undecodable(what: "server outcome", value: resultText)
                }
                let outcome = ServerOutcome(
                    intentSeq: row["intent_seq"], serverId: row["server_id"], result: result, errorCode: row["error_code"],
                    retryAt: (row["retry_at"] as Double?).map(Date.init(timeIntervalSince1970:)), at: Date(timeIntervalSince1970: row["at"]))
                outcomes[outcome.intentSeq, default: [:]][outcome.serverId] = outcome
            }
            return intents.map { intent in
                RecordedCall(
                    intent: intent, state: intent.kind == .dryRun ? .accepted : CallState(outcomes: results[intent.seq] ?? []),
                    serverOutcomes: outcomes[intent.seq] ?? [:])
            }
        }
    }

    // MARK: Episodes

    /// Marks the start of an episode (a server stuck, a tag error…); true when it is new, so its
    /// event is written once, also across restarts.
    public func beginEpisode(_ key: String, loop: String, at now: Date) async throws -> Bool {
        try await database.write { db in
            try db.execute(
                sql: "INSERT OR IGNORE INTO reported_episodes (key, loop, since) VALUES (?, ?, ?)", arguments: [key, loop, now.timeIntervalSince1970])
            return db.changesCount > 0
        }
    }

    /// Ends the episodes of `loop` whose key starts with `prefix` and is not in `current`; returns
    /// the keys ended (their end is reported once).
    public func endEpisodes(loop: String, prefix: String, keeping current: Set<String>) async throws -> [String] {
        try await database.write { db in
            let pattern = prefix.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
                .replacingOccurrences(of: "_", with: "\\_") + "%"
            let keys = try String.fetchAll(
                db, sql: "SELECT key FROM reported_episodes WHERE loop = ? AND key LIKE ? ESCAPE '\\'", arguments: [loop, pattern])
            let ended = keys.filter { !current.contains($0) }
            for key in ended { try db.execute(sql: "DELETE FROM reported_episodes WHERE key = ?", arguments: [key]) }
            return ended.sorted()
        }
    }

    /// Ends one episode; true when it was open.
    @discardableResult
    public func endEpisode(_ key: String) async throws -> Bool {
        try await database.write { db in
            try db.execute(sql: "DELETE FROM reported_episodes WHERE key = ?", arguments: [key])
            return db.changesCount > 0
        }
    }
}
