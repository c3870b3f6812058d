import Foundation
import PostgresNIO
import WardenCore

extension PostgresStateStore {
    public func scheduledStopSuccesses(projects: [String]) async throws -> [String: [String: Date]] {
        guard !projects.isEmpty else { return [:] }
        return try await withConnection { [self] connection in
            var latest: [String: [String: Date]] = [:]
            for row in try await connection.rows(
                """
                SELECT j.project AS project, o.server_id AS server_id, MAX(o.at) AS at FROM server_outcomes o JOIN journal j ON j.seq = o.intent_seq
                WHERE j.loop = 'schedule' AND j.action = 'stop' AND j.project = ANY(\(Array(Set(projects)))) AND o.result = 'success'
                GROUP BY j.project, o.server_id
                """, logger: logger)
            {
                latest[try row.value("project"), default: [:]][try row.value("server_id")] = try row.date("at")
            }
            return latest
        }
    }

    public func openSavingsWindows(projects: [String]) async throws -> [SavingsWindow] {
        guard !projects.isEmpty else { return [] }
        return try await withConnection { [self] connection in
            try await connection.rows(
                """
                SELECT id, project, server_id, schedule, flavor, vcpus, ram_mb, opened_at, closed_at, counted_until FROM savings_windows
                WHERE project = ANY(\(Array(Set(projects)))) AND closed_at IS NULL ORDER BY project, id
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

    public func recordSavingsProgress(counted: [Int64: Date], closed: [Int64: Date]) async throws {
        guard !counted.isEmpty || !closed.isEmpty else { return }
        try await withTransaction { [self] connection in
            if !counted.isEmpty {
                try await connection.run(
                    """
                    UPDATE savings_windows s SET counted_until = u.until
                    FROM unnest(\(Array(counted.keys)), \(counted.keys.map { counted[$0]?.timeIntervalSince1970 ?? 0 })) AS u(id, until) WHERE s.id = u.id
                    """, logger: logger)
            }
            if !closed.isEmpty {
                try await connection.run(
                    """
                    UPDATE savings_windows s SET closed_at = u.at
                    FROM unnest(\(Array(closed.keys)), \(closed.keys.map { closed[$0]?.timeIntervalSince1970 ?? 0 })) AS u(id, at)
                    WHERE s.id = u.id AND s.closed_at IS NULL
                    """, logger: logger)
            }
        }
    }

    public func latestSavingsWindowStart(projects: [String]) async throws -> [String: [String: Date]] {
        guard !projects.isEmpty else { return [:] }
        return try await withConnection { [self] connection in
            var latest: [String: [String: Date]] = [:]
            for row in try await connection.rows(
                """
                SELECT project, server_id, MAX(opened_at) AS opened FROM savings_windows WHERE project = ANY(\(Array(Set(projects))))
                GROUP BY project, server_id
                """, logger: logger)
            {
                latest[try row.value("project"), default: [:]][try row.value("server_id")] = try row.date("opened")
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
