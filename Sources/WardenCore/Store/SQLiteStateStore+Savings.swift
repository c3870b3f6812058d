import Foundation
import GRDB

/// A row of `savings_windows`.
struct SavingsWindowRecord: StoredRecord, MutablePersistableRecord {
    static let databaseTableName = "savings_windows"

    var id: Int64?
    var project: String
    var serverId: String
    var schedule: String
    var flavor: String
    var vcpus: Int
    var ramMb: Int
    var openedAt: Date
    var closedAt: Date?
    var countedUntil: Date

    init(_ window: SavingsWindow) {
        id = nil
        project = window.project
        serverId = window.serverId
        schedule = window.schedule
        flavor = window.flavor
        vcpus = window.vcpus
        ramMb = window.ramMB
        openedAt = window.openedAt
        closedAt = window.closedAt
        countedUntil = window.countedUntil
    }

    mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }

    var window: SavingsWindow {
        SavingsWindow(
            id: id ?? 0, project: project, serverId: serverId, schedule: schedule, flavor: flavor, vcpus: vcpus, ramMB: ramMb, openedAt: openedAt,
            closedAt: closedAt, countedUntil: countedUntil)
    }
}

extension SQLiteStateStore {
    public func scheduledStopSuccesses(project: String) async throws -> [String: Date] {
        try await fetch { db in
            var latest: [String: Date] = [:]
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT o.server_id AS server_id, MAX(o.at) AS at FROM server_outcomes o JOIN journal j ON j.seq = o.intent_seq
                    WHERE j.loop = 'schedule' AND j.action = 'stop' AND j.project = ? AND o.result = 'success' GROUP BY o.server_id
                    """, arguments: [project])
            for row in rows { latest[row["server_id"]] = Date(timeIntervalSince1970: row["at"]) }
            return latest
        }
    }

    public func openSavingsWindows(project: String) async throws -> [SavingsWindow] {
        try await fetch { db in
            try SavingsWindowRecord.filter(Column("project") == project && Column("closed_at") == nil).fetchAll(db).map(\.window)
        }
    }

    public func openSavingsWindow(_ window: SavingsWindow) async throws -> SavingsWindow {
        try await database.write { db in
            var record = SavingsWindowRecord(window)
            try record.insert(db)
            return record.window
        }
    }

    public func closeSavingsWindow(id: Int64, at: Date) async throws {
        try await database.write { db in
            try db.execute(sql: "UPDATE savings_windows SET closed_at = ? WHERE id = ? AND closed_at IS NULL", arguments: [at.timeIntervalSince1970, id])
        }
    }

    public func markSavingsCounted(id: Int64, until: Date) async throws {
        try await database.write { db in
            try db.execute(sql: "UPDATE savings_windows SET counted_until = ? WHERE id = ?", arguments: [until.timeIntervalSince1970, id])
        }
    }

    public func latestSavingsWindowStart(project: String) async throws -> [String: Date] {
        try await fetch { db in
            var latest: [String: Date] = [:]
            for row in try Row.fetchAll(
                db, sql: "SELECT server_id, MAX(opened_at) AS opened FROM savings_windows WHERE project = ? GROUP BY server_id", arguments: [project])
            {
                latest[row["server_id"]] = Date(timeIntervalSince1970: row["opened"])
            }
            return latest
        }
    }

    public func savings(since: Date, until: Date) async throws -> [SavingsTotal] {
        try await fetch { db in
            let from = since.timeIntervalSince1970
            let to = until.timeIntervalSince1970
            // The overlap of each window with [since, until]; an open window runs to `until`.
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT schedule, flavor,
                        SUM(MAX(0, MIN(COALESCE(closed_at, ?), ?) - MAX(opened_at, ?))) AS seconds,
                        SUM(MAX(0, MIN(COALESCE(closed_at, ?), ?) - MAX(opened_at, ?)) * vcpus) AS vcpu_seconds,
                        SUM(MAX(0, MIN(COALESCE(closed_at, ?), ?) - MAX(opened_at, ?)) * ram_mb) AS ram_seconds
                    FROM savings_windows WHERE opened_at < ? AND COALESCE(closed_at, ?) > ?
                    GROUP BY schedule, flavor ORDER BY schedule, flavor
                    """,
                arguments: [to, to, from, to, to, from, to, to, from, to, to, from])
            return rows.map { row in
                SavingsTotal(
                    schedule: row["schedule"], flavor: row["flavor"], serverSeconds: row["seconds"] ?? 0, vcpuSeconds: row["vcpu_seconds"] ?? 0,
                    ramMBSeconds: row["ram_seconds"] ?? 0)
            }
        }
    }
}
