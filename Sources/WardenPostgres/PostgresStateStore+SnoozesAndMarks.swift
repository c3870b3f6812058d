import Foundation
import PostgresNIO
import WardenCore

extension PostgresStateStore {
    public func snooze(_ snooze: Snooze) async throws {
        try await withConnection { [self] connection in
            try await connection.run(
                """
                INSERT INTO snoozes (project, server_id, until, reason)
                VALUES (\(snooze.project), \(snooze.serverId), \(snooze.until.timeIntervalSince1970), \(snooze.reason))
                ON CONFLICT (project, server_id) DO UPDATE SET until = EXCLUDED.until, reason = EXCLUDED.reason
                """, logger: logger)
        }
    }

    public func unsnooze(project: String, serverId: String) async throws -> Bool {
        try await withConnection { [self] connection in
            try await !connection.rows(
                "DELETE FROM snoozes WHERE project = \(project) AND server_id = \(serverId) RETURNING server_id", logger: logger
            ).isEmpty
        }
    }

    public func activeSnoozes(at now: Date) async throws -> [Snooze] {
        try await withConnection { [self] connection in
            // Code-point order, as SQLite's: the same list whatever the database's collation.
            try await connection.rows(
                """
                SELECT project, server_id, until, reason FROM snoozes WHERE until > \(now.timeIntervalSince1970)
                ORDER BY project COLLATE "C", server_id COLLATE "C"
                """, logger: logger
            ).map { row in
                Snooze(project: try row.value("project"), serverId: try row.value("server_id"), until: try row.date("until"), reason: try row.value("reason"))
            }
        }
    }

    public func handledBoundaries(projects: [String]) async throws -> [ScheduleMarkKey: Date] {
        guard !projects.isEmpty else { return [:] }
        return try await withConnection { [self] connection in
            var marks: [ScheduleMarkKey: Date] = [:]
            for row in try await connection.rows(
                "SELECT schedule, project, boundary FROM schedule_marks WHERE project = ANY(\(Array(Set(projects))))", logger: logger)
            {
                marks[ScheduleMarkKey(schedule: try row.value("schedule"), project: try row.value("project"))] = try row.date("boundary")
            }
            return marks
        }
    }

    /// Fenced like a journal write: a deposed node cannot mark a boundary handled for the new owner.
    /// Each mark in a transaction of its own, under its own fence: a mark that cannot be written
    /// (refused by its fence, or failed) does not stop the others, and is returned with why.
    public func setLastHandledBoundaries(_ marks: [BoundaryMark]) async throws -> [ScheduleMarkKey: any Error] {
        var refused: [ScheduleMarkKey: any Error] = [:]
        for mark in marks {
            do {
                try await journalWrite(fence: mark.fence) { [self] connection in
                    try await connection.run(
                        """
                        INSERT INTO schedule_marks (schedule, project, boundary) VALUES (\(mark.schedule), \(mark.project), \(mark.boundary.timeIntervalSince1970))
                        ON CONFLICT (schedule, project) DO UPDATE SET boundary = EXCLUDED.boundary
                        """, logger: logger)
                }
            } catch {
                refused[mark.key] = error
            }
        }
        return refused
    }
}
