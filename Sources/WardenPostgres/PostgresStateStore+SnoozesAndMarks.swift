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

    public func lastHandledBoundary(schedule: String, project: String) async throws -> Date? {
        try await withConnection { [self] connection in
            try await connection.rows(
                "SELECT boundary FROM schedule_marks WHERE schedule = \(schedule) AND project = \(project)", logger: logger
            ).first?.date("boundary")
        }
    }

    /// Fenced like a journal write: a deposed node cannot mark a boundary handled for the new owner.
    public func setLastHandledBoundary(schedule: String, project: String, boundary: Date, fence: ShardFence?) async throws {
        try await journalWrite(fence: fence) { [self] connection in
            try await connection.run(
                """
                INSERT INTO schedule_marks (schedule, project, boundary) VALUES (\(schedule), \(project), \(boundary.timeIntervalSince1970))
                ON CONFLICT (schedule, project) DO UPDATE SET boundary = EXCLUDED.boundary
                """, logger: logger)
        }
    }
}
