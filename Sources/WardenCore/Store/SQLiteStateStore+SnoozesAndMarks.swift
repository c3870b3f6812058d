import Foundation
import GRDB

/// A row of `snoozes`.
struct SnoozeRecord: StoredRecord, PersistableRecord {
    static let databaseTableName = "snoozes"

    var project: String
    var serverId: String
    var until: Date
    var reason: String

    var snooze: Snooze { Snooze(project: project, serverId: serverId, until: until, reason: reason) }
}

/// A row of `schedule_marks`: the last boundary of a schedule handled in a project.
struct ScheduleMarkRecord: StoredRecord, PersistableRecord {
    static let databaseTableName = "schedule_marks"

    var schedule: String
    var project: String
    var boundary: Date
}

extension SQLiteStateStore {
    public func snooze(_ snooze: Snooze) async throws {
        try await database.write { db in
            try SnoozeRecord(project: snooze.project, serverId: snooze.serverId, until: snooze.until, reason: snooze.reason).upsert(db)
        }
    }

    public func unsnooze(project: String, serverId: String) async throws -> Bool {
        try await database.write { db in try SnoozeRecord.deleteOne(db, key: ["project": project, "server_id": serverId]) }
    }

    public func activeSnoozes(at now: Date) async throws -> [Snooze] {
        try await fetch { db in
            try SnoozeRecord.filter(Column("until") > now.timeIntervalSince1970).order(Column("project"), Column("server_id")).fetchAll(db).map(\.snooze)
        }
    }

    public func lastHandledBoundary(schedule: String, project: String) async throws -> Date? {
        try await fetch { db in try ScheduleMarkRecord.fetchOne(db, key: ["schedule": schedule, "project": project])?.boundary }
    }

    /// One node: the fence is not checked (there is no lease).
    public func setLastHandledBoundary(schedule: String, project: String, boundary: Date, fence: ShardFence?) async throws {
        try await database.write { db in try ScheduleMarkRecord(schedule: schedule, project: project, boundary: boundary).upsert(db) }
    }
}
