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
    public func scheduledStopSuccesses(projects: [String]) async throws -> [String: [String: Date]] {
        guard !projects.isEmpty else { return [:] }
        return try await fetch { db in
            let statement = try db.cachedStatement(
                sql: """
                    SELECT o.server_id AS server_id, MAX(o.at) AS at FROM server_outcomes o JOIN journal j ON j.seq = o.intent_seq
                    WHERE j.loop = 'schedule' AND j.action = 'stop' AND j.project = ? AND o.result = 'success' GROUP BY o.server_id
                    """)
            var latest: [String: [String: Date]] = [:]
            for project in Set(projects) {
                let rows = try Row.fetchCursor(statement, arguments: [project])
                while let row = try rows.next() {
                    latest[project, default: [:]][try row.decode(String.self, atIndex: 0)] = Date(timeIntervalSince1970: try row.decode(Double.self, atIndex: 1))
                }
            }
            return latest
        }
    }

    public func openSavingsWindows(projects: [String]) async throws -> [SavingsWindow] {
        guard !projects.isEmpty else { return [] }
        return try await fetch { db in
            var windows: [SavingsWindow] = []
            for project in Set(projects).sorted() {
                windows += try SavingsWindowRecord.filter(Column("project") == project && Column("closed_at") == nil).order(Column("id")).fetchAll(db).map(\.window)
            }
            return windows
        }
    }

    public func openSavingsWindow(_ window: SavingsWindow) async throws -> SavingsWindow {
        try await database.write { db in
            var record = SavingsWindowRecord(window)
            try record.insert(db)
            return record.window
        }
    }

    public func recordSavingsProgress(counted: [Int64: Date], closed: [Int64: Date]) async throws {
        guard !counted.isEmpty || !closed.isEmpty else { return }
        try await database.write { db in
            let count = try db.cachedStatement(sql: "UPDATE savings_windows SET counted_until = ? WHERE id = ?")
            for (id, until) in counted { try count.execute(arguments: [until.timeIntervalSince1970, id]) }
            let close = try db.cachedStatement(sql: "UPDATE savings_windows SET closed_at = ? WHERE id = ? AND closed_at IS NULL")
            for (id, at) in closed { try close.execute(arguments: [at.timeIntervalSince1970, id]) }
        }
    }

    public func latestSavingsWindowStart(projects: [String]) async throws -> [String: [String: Date]] {
        guard !projects.isEmpty else { return [:] }
        return try await fetch { db in
            let statement = try db.cachedStatement(sql: "SELECT server_id, MAX(opened_at) AS opened FROM savings_windows WHERE project = ? GROUP BY server_id")
            var latest: [String: [String: Date]] = [:]
            for project in Set(projects) {
                let rows = try Row.fetchCursor(statement, arguments: [project])
                while let row = try rows.next() {
                    latest[project, default: [:]][try row.decode(String.self, atIndex: 0)] = Date(timeIntervalSince1970: try row.decode(Double.self, atIndex: 1))
                }
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
