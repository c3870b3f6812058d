import Foundation
import PostgresNIO
import WardenCore

extension PostgresStateStore {
    public func beginEpisodes(_ keys: [String], loop: String, at now: Date) async throws -> Set<String> {
        guard !keys.isEmpty else { return [] }
        return try await withConnection { [self] connection in
            Set(
                try await connection.rows(
                    """
                    INSERT INTO reported_episodes (key, loop, since) SELECT key, \(loop), \(now.timeIntervalSince1970) FROM unnest(\(Array(Set(keys)))) AS k(key)
                    ON CONFLICT (key) DO NOTHING RETURNING key
                    """, logger: logger
                ).map { try $0.value("key", as: String.self) })
        }
    }

    public func endEpisodes(loop: String, prefixes: [String], keeping current: Set<String>) async throws -> [String] {
        guard !prefixes.isEmpty else { return [] }
        return try await withTransaction { [self] connection in
            // starts_with compares code points, whatever the database's collation.
            let unique = Array(Set(prefixes))
            let keys = try await connection.rows(
                """
                SELECT key FROM reported_episodes WHERE loop = \(loop) AND EXISTS (SELECT 1 FROM unnest(\(unique)) AS p(prefix) WHERE starts_with(key, p.prefix))
                FOR UPDATE
                """, logger: logger
            ).map { try $0.value("key", as: String.self) }.filter { key in unique.contains { key.hasPrefix($0) } }
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
