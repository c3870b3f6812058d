import Foundation
import GRDB

/// A row of `first_seen`: when the daemon first saw a server in its (status, task_state) pair.
struct FirstSeenRecord: StoredRecord, PersistableRecord {
    static let databaseTableName = "first_seen"

    var project: String
    var serverId: String
    var status: String
    /// Empty when the server has no task state.
    var taskState: String
    var firstSeen: Date
}

extension SQLiteStateStore {
    public func firstSeen(project: String, states: [ServerStateSighting], now: Date) async throws -> [String: Date] {
        try await writeObservations { db in
            var existing: [String: FirstSeenRecord] = [:]
            for record in try FirstSeenRecord.filter(Column("project") == project).fetchAll(db) { existing[record.serverId] = record }
            var result: [String: Date] = [:]
            for state in states {
                let task = state.taskState ?? ""
                if let known = existing[state.serverId], known.status == state.status, known.taskState == task {
                    result[state.serverId] = known.firstSeen
                } else {
                    try FirstSeenRecord(project: project, serverId: state.serverId, status: state.status, taskState: task, firstSeen: now).upsert(db)
                    result[state.serverId] = now
                }
            }
            // Servers no longer listed (deleted) or no longer in a watched state are forgotten.
            let seen = Set(states.map(\.serverId))
            for gone in existing.keys where !seen.contains(gone) {
                _ = try FirstSeenRecord.deleteOne(db, key: ["project": project, "server_id": gone])
            }
            return result
        }
    }
}
