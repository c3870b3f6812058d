import Foundation
import GRDB

extension SQLiteStateStore {
    /// Removes history beyond the retention policy: journal entries older than its days or beyond
    /// its entry count (an intent and its outcomes go together; an open intent is never removed,
    /// so pruning cannot re-open a call), their per-server outcomes, quota samples, transitions,
    /// expired snoozes and closed jobs.
    public func prune(now: Date) async throws {
        try await database.write { db in
            let journalCutoff = now.timeIntervalSince1970 - retention.journalDays * 86_400
            let lastSeq = try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM journal") ?? 0
            // Calls (intents and their outcomes) younger than `keepCallsFor` stay whatever the
            // count: the scheduler's holds and retries of a boundary rest on them.
            try db.execute(
                sql: """
                    DELETE FROM journal WHERE (at < ? OR seq <= ?) AND NOT (kind = 'intent'
                    AND NOT EXISTS (SELECT 1 FROM journal o WHERE o.kind = 'outcome' AND o.intent_seq = journal.seq))
                    AND NOT (kind IN ('intent', 'outcome', 'dry_run') AND at >= ?)
                    """,
                arguments: [journalCutoff, lastSeq - Int64(retention.journalMaxEntries), now.timeIntervalSince1970 - retention.keepCallsFor])
            try db.execute(sql: "DELETE FROM server_outcomes WHERE intent_seq NOT IN (SELECT seq FROM journal)")
            try db.execute(sql: "DELETE FROM quota_history WHERE at < ?", arguments: [now.timeIntervalSince1970 - retention.quotaHistoryDays * 86_400])
            try db.execute(
                sql: "DELETE FROM sale_transitions WHERE at < ?", arguments: [now.timeIntervalSince1970 - retention.transitionDays * 86_400])
            try db.execute(sql: "DELETE FROM snoozes WHERE until < ?", arguments: [now.timeIntervalSince1970])
            try db.execute(sql: "DELETE FROM watched_jobs WHERE closed_at IS NOT NULL AND closed_at < ?", arguments: [journalCutoff])
        }
    }
}
