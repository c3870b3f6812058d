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

    public func handledBoundaries(projects: [String]) async throws -> [ScheduleMarkKey: Date] {
        guard !projects.isEmpty else { return [:] }
        // The marks table holds one row per schedule and project: read it whole, keep the projects asked for.
        let wanted = Set(projects)
        return try await fetch { db in
            var marks: [ScheduleMarkKey: Date] = [:]
            let rows = try Row.fetchCursor(db.cachedStatement(sql: "SELECT schedule, project, boundary FROM schedule_marks"))
            while let row = try rows.next() {
                let project = try row.decode(String.self, atIndex: 1)
                guard wanted.contains(project) else { continue }
                marks[ScheduleMarkKey(schedule: try row.decode(String.self, atIndex: 0), project: project)] =
                    Date(timeIntervalSince1970: try row.decode(Double.self, atIndex: 2))
            }
            return marks
        }
    }

    /// One node: fences are not checked (there is no lease); every mark in one transaction.
    public func setLastHandledBoundaries(_ marks: [BoundaryMark]) async throws -> [ScheduleMarkKey: any Error] {
        guard !marks.isEmpty else { return [:] }
        try await database.write { db in
            let statement = try db.cachedStatement(
                sql: "INSERT INTO schedule_marks (schedule, project, boundary) VALUES (?, ?, ?) ON CONFLICT (schedule, project) DO UPDATE SET boundary = excluded.boundary")
            for mark in marks { try statement.execute(arguments: [mark.schedule, mark.project, mark.boundary.timeIntervalSince1970]) }
        }
        return [:]
    }
}
