import Foundation
import PostgresNIO
import WardenCore

extension PostgresStateStore {
    /// Removes history beyond the retention policy, as the SQLite store does: journal entries
    /// older than its days or beyond its entry count (an open intent is never removed, and calls
    /// younger than `keepCallsFor` stay), their per-server outcomes, quota samples, transitions,
    /// expired snoozes and closed jobs. One transaction.
    public func prune(now: Date) async throws {
        let journalCutoff = now.timeIntervalSince1970 - retention.journalDays * 86_400
        let callsCutoff = now.timeIntervalSince1970 - retention.keepCallsFor
        let quotaCutoff = now.timeIntervalSince1970 - retention.quotaHistoryDays * 86_400
        let transitionCutoff = now.timeIntervalSince1970 - retention.transitionDays * 86_400
        let maxEntries = Int64(retention.journalMaxEntries)
        try await withTransaction { [self] connection in
            try await connection.run(
                """
                DELETE FROM journal WHERE (at < \(journalCutoff) OR seq <= (SELECT COALESCE(MAX(seq), 0) FROM journal) - \(maxEntries))
                AND NOT (kind = 'intent' AND NOT EXISTS (SELECT 1 FROM journal o WHERE o.kind = 'outcome' AND o.intent_seq = journal.seq))
                AND NOT (kind IN ('intent', 'outcome', 'dry_run') AND at >= \(callsCutoff))
                """, logger: logger)
            try await connection.run(
                "DELETE FROM server_outcomes s WHERE NOT EXISTS (SELECT 1 FROM journal j WHERE j.seq = s.intent_seq)", logger: logger)
            try await connection.run("DELETE FROM quota_history WHERE at < \(quotaCutoff)", logger: logger)
            try await connection.run("DELETE FROM sale_transitions WHERE at < \(transitionCutoff)", logger: logger)
            try await connection.run("DELETE FROM snoozes WHERE until < \(now.timeIntervalSince1970)", logger: logger)
            try await connection.run("DELETE FROM watched_jobs WHERE closed_at IS NOT NULL AND closed_at < \(journalCutoff)", logger: logger)
        }
    }
}
