import Foundation
import PostgresNIO
import WardenCore

extension PostgresStateStore {
    public func beginEpisode(_ key: String, loop: String, at now: Date) async throws -> Bool {
        try await withConnection { [self] connection in
            try await !connection.rows(
                """
                INSERT INTO reported_episodes (key, loop, since) VALUES (\(key), \(loop), \(now.timeIntervalSince1970))
                ON CONFLICT (key) DO NOTHING RETURNING key
                """, logger: logger
            ).isEmpty
        }
    }

    public func endEpisodes(loop: String, prefix: String, keeping current: Set<String>) async throws -> [String] {
        try await withTransaction { [self] connection in
            // starts_with compares code points, whatever the database's collation.
            let keys = try await connection.rows(
                "SELECT key FROM reported_episodes WHERE loop = \(loop) AND starts_with(key, \(prefix)) FOR UPDATE", logger: logger
            ).map { try $0.value("key", as: String.self) }.filter { $0.hasPrefix(prefix) }
            let ended = keys.filter { !current.contains($0) }.sorted()
            if !ended.isEmpty { try await connection.run("DELETE FROM reported_episodes WHERE key = ANY(\(ended))", logger: logger) }
            return ended
        }
    }

    public func endEpisode(_ key: String) async throws -> Bool {
        try await withConnection { [self] connection in
            try await !connection.rows("DELETE FROM reported_episodes WHERE key = \(key) RETURNING key", logger: logger).isEmpty
        }
    }
}
