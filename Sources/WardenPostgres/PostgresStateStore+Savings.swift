import Foundation
import PostgresNIO
import WardenCore

extension PostgresStateStore {
    public func scheduledStopSuccesses(project: String) async throws -> [String: Date] {
        try await withConnection { [self] connection in
            var latest: [String: Date] = [:]
            for row in try await connection.rows(
                """
                SELECT o.server_id AS server_id, MAX(o.at) AS at FROM server_outcomes o JOIN journal j ON j.seq = o.intent_seq
                WHERE j.loop = 'schedule' AND j.action = 'stop' AND j.project = \(project) AND o.result = 'success' GROUP BY o.server_id
                """, logger: logger)
            {
                latest[try row.value("server_id")] = try row.date("at")
            }
            return latest
        }
    }

    public func openSavingsWindows(project: String) async throws -> [SavingsWindow] {
        try await withConnection { [self] connection in
            try await connection.rows(
                """
                SELECT id, project, server_id, schedule, flavor, vcpus, ram_mb, opened_at, closed_at, counted_until FROM savings_windows
                WHERE project = \(project) AND closed_at IS NULL ORDER BY id
                """, logger: logger
            ).map(Self.savingsWindow)
        }
    }

    /// A `savings_windows` row.
    static func savingsWindow(_ row: PostgresRandomAccessRow) throws -> SavingsWindow {
        SavingsWindow(
            id: try row.value("id"), project: try row.value("project"), serverId: try row.value("server_id"), schedule: try row.value("schedule"),
            flavor: try row.value("flavor"), vcpus: Int(try row.value("vcpus", as: Int64.self)), ramMB: Int(try row.value("ram_mb", as: Int64.self)),
            openedAt: try row.date("opened_at"), closedAt: try row.optionalDate("closed_at"), countedUntil: try row.date("counted_until"))
    }

    public func openSavingsWindow(_ window: SavingsWindow) async throws -> SavingsWindow {
        try await withConnection { [self] connection in
            let rows = try await connection.rows(
                """
                INSERT INTO savings_windows (project, server_id, schedule, flavor, vcpus, ram_mb, opened_at, closed_at, counted_until)
                VALUES (\(window.project), \(window.serverId), \(window.schedule), \(window.flavor), \(Int64(window.vcpus)), \(Int64(window.ramMB)),
                    \(window.openedAt.timeIntervalSince1970), \(window.closedAt?.timeIntervalSince1970), \(window.countedUntil.timeIntervalSince1970))
                RETURNING id
                """, logger: logger)
            var opened = window
            opened.id = try rows.first?.value("id", as: Int64.self) ?? 0
            return opened
        }
    }

    public func closeSavingsWindow(id: Int64, at: Date) async throws {
        try await withConnection { [self] connection in
            try await connection.run(
                "UPDATE savings_windows SET closed_at = \(at.timeIntervalSince1970) WHERE id = \(id) AND closed_at IS NULL", logger: logger)
        }
    }

    public func markSavingsCounted(id: Int64, until: Date) async throws {
        try await withConnection { [self] connection in
            try await connection.run("UPDATE savings_windows SET counted_until = \(until.timeIntervalSince1970) WHERE id = \(id)", logger: logger)
        }
    }

    public func latestSavingsWindowStart(project: String) async throws -> [String: Date] {
        try await withConnection { [self] connection in
            var latest: [String: Date] = [:]
            for row in try await connection.rows(
                "SELECT server_id, MAX(opened_at) AS opened FROM savings_windows WHERE project = \(project) GROUP BY server_id", logger: logger)
            {
                latest[try row.value("server_id")] = try row.date("opened")
            }
            return latest
        }
    }

    public func savings(since: Date, until: Date) async throws -> [SavingsTotal] {
        let from = since.timeIntervalSince1970
        let to = until.timeIntervalSince1970
        return try await withConnection { [self] connection in
            // The overlap of each window with [since, until]; an open window runs to `until`.
            try await connection.rows(
                """
                SELECT schedule, flavor, SUM(overlap) AS seconds, SUM(overlap * vcpus) AS vcpu_seconds, SUM(overlap * ram_mb) AS ram_seconds
                FROM (SELECT schedule, flavor, vcpus, ram_mb,
                        GREATEST(0, LEAST(COALESCE(closed_at, \(to)), \(to)) - GREATEST(opened_at, \(from))) AS overlap
                    FROM savings_windows WHERE opened_at < \(to) AND COALESCE(closed_at, \(to)) > \(from)) AS windows
                GROUP BY schedule, flavor ORDER BY schedule COLLATE "C", flavor COLLATE "C"
                """, logger: logger
            ).map { row in
                SavingsTotal(
                    schedule: try row.value("schedule"), flavor: try row.value("flavor"), serverSeconds: try row.value("seconds", as: Double?.self) ?? 0,
                    vcpuSeconds: try row.value("vcpu_seconds", as: Double?.self) ?? 0, ramMBSeconds: try row.value("ram_seconds", as: Double?.self) ?? 0)
            }
        }
    }
}
