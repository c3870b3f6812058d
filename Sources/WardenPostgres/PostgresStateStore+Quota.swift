import Foundation
import PostgresNIO
import WardenCore

extension PostgresStateStore {
    public func appendQuotaSamples(project: String, samples: [QuotaSample], at now: Date) async throws {
        guard !samples.isEmpty else { return }
        try await withTransaction { [self] connection in
            for sample in samples {
                try await connection.run(
                    """
                    INSERT INTO quota_history (project, resource, used, quota, at)
                    VALUES (\(project), \(sample.resource), \(Int64(sample.used)), \(sample.limit.map(Int64.init)), \(now.timeIntervalSince1970))
                    """, logger: logger)
            }
        }
    }

    public func quotaHistory(project: String, resources: [String], since: Date) async throws -> [String: [QuotaReading]] {
        guard !resources.isEmpty else { return [:] }
        return try await withConnection { [self] connection in
            var histories: [String: [QuotaReading]] = [:]
            for resource in Set(resources) { histories[resource] = [] }
            for row in try await connection.rows(
                """
                SELECT resource, at, used FROM quota_history
                WHERE project = \(project) AND resource = ANY(\(Array(Set(resources)))) AND at >= \(since.timeIntervalSince1970) ORDER BY resource, at
                """, logger: logger)
            {
                histories[try row.value("resource"), default: []].append(QuotaReading(at: try row.date("at"), used: Int(try row.value("used", as: Int64.self))))
            }
            return histories
        }
    }

    public func quotaLevels(project: String) async throws -> [String: String] {
        try await withConnection { [self] connection in
            var levels: [String: String] = [:]
            for row in try await connection.rows("SELECT resource, level FROM quota_levels WHERE project = \(project)", logger: logger) {
                levels[try row.value("resource")] = try row.value("level", as: String.self)
            }
            return levels
        }
    }

    public func setQuotaLevel(project: String, resource: String, level: String) async throws {
        try await withConnection { [self] connection in
            try await connection.run(
                """
                INSERT INTO quota_levels (project, resource, level) VALUES (\(project), \(resource), \(level))
                ON CONFLICT (project, resource) DO UPDATE SET level = EXCLUDED.level
                """, logger: logger)
        }
    }
}
