import Foundation
import GRDB

/// A row of `quota_history`.
struct QuotaSampleRecord: StoredRecord, PersistableRecord {
    static let databaseTableName = "quota_history"

    var project: String
    var resource: String
    var used: Int
    /// The limit at the time (nil: unlimited).
    var quota: Int?
    var at: Date
}

/// A row of `quota_levels`: the threshold level last recorded for a resource.
struct QuotaLevelRecord: StoredRecord, PersistableRecord {
    static let databaseTableName = "quota_levels"

    var project: String
    var resource: String
    var level: String
}

extension SQLiteStateStore {
    public func appendQuotaSamples(project: String, samples: [QuotaSample], at now: Date) async throws {
        try await writeObservations { db in
            let statement = try db.cachedStatement(sql: "INSERT INTO quota_history (project, resource, used, quota, at) VALUES (?, ?, ?, ?, ?)")
            for sample in samples {
                try statement.execute(arguments: [project, sample.resource, sample.used, sample.limit, now.timeIntervalSince1970])
            }
        }
    }

    public func quotaHistory(project: String, resources: [String], since: Date) async throws -> [String: [QuotaReading]] {
        // Read for every project on each quota pass: one read, one cached statement, a range of the
        // (project, resource, at) index per resource, rows read in place (no record decoding).
        try await fetch { db in
            let statement = try db.cachedStatement(sql: "SELECT at, used FROM quota_history WHERE project = ? AND resource = ? AND at >= ? ORDER BY at")
            var histories: [String: [QuotaReading]] = [:]
            for resource in Set(resources) {
                let rows = try Row.fetchCursor(statement, arguments: [project, resource, since.timeIntervalSince1970])
                var readings: [QuotaReading] = []
                while let row = try rows.next() {
                    let at = try row.decode(Double.self, atIndex: 0)
                    readings.append(QuotaReading(at: Date(timeIntervalSince1970: at), used: try row.decode(Int.self, atIndex: 1)))
                }
                histories[resource] = readings
            }
            return histories
        }
    }

    public func quotaLevels(project: String) async throws -> [String: String] {
        try await fetch { db in
            let statement = try db.cachedStatement(sql: "SELECT resource, level FROM quota_levels WHERE project = ?")
            var levels: [String: String] = [:]
            let rows = try Row.fetchCursor(statement, arguments: [project])
            while let row = try rows.next() { levels[try row.decode(String.self, atIndex: 0)] = try row.decode(String.self, atIndex: 1) }
            return levels
        }
    }

    public func setQuotaLevel(project: String, resource: String, level: String) async throws {
        try await writeObservations { db in try QuotaLevelRecord(project: project, resource: resource, level: level).upsert(db) }
    }
}
