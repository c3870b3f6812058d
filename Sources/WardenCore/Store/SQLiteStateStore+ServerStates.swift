import Foundation
import GRDB

/// Rows of `first_seen`: when the daemon first saw a server in its (status, task_state) pair.
extension SQLiteStateStore {
    public func firstSeen(project: String, states: [ServerStateSighting], now: Date) async throws -> [String: Date] {
        // Every project's watched servers on each stuck pass: cached statements, rows read in place.
        try await writeObservations { db in
            var existing: [String: (status: String, taskState: String, firstSeen: Double)] = [:]
            let rows = try Row.fetchCursor(db.cachedStatement(sql: "SELECT server_id, status, task_state, first_seen FROM first_seen WHERE project = ?"), arguments: [project])
            while let row = try rows.next() {
                existing[try row.decode(String.self, atIndex: 0)] = (try row.decode(String.self, atIndex: 1), try row.decode(String.self, atIndex: 2), try row.decode(Double.self, atIndex: 3))
            }
            let upsert = try db.cachedStatement(
                sql: """
                    INSERT INTO first_seen (project, server_id, status, task_state, first_seen) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (project, server_id) DO UPDATE SET status = excluded.status, task_state = excluded.task_state, first_seen = excluded.first_seen
                    """)
            var result: [String: Date] = [:]
            for state in states {
                let task = state.taskState ?? ""
                if let known = existing[state.serverId], known.status == state.status, known.taskState == task {
                    result[state.serverId] = Date(timeIntervalSince1970: known.firstSeen)
                } else {
                    try upsert.execute(arguments: [project, state.serverId, state.status, task, now.timeIntervalSince1970])
                    result[state.serverId] = now
                }
            }
            // Servers no longer listed (deleted) or no longer in a watched state are forgotten.
            let seen = Set(states.map(\.serverId))
            let delete = try db.cachedStatement(sql: "DELETE FROM first_seen WHERE project = ? AND server_id = ?")
            for gone in existing.keys where !seen.contains(gone) { try delete.execute(arguments: [project, gone]) }
            return result
        }
    }
}
