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
            for sample in samples {
                try QuotaSampleRecord(project: project, resource: sample.resource, used: sample.used, quota: sample.limit, at: now).insert(db)
            }
        }
    }

    public func quotaHistory(project: String, resource: String, since: Date) async throws -> [QuotaReading] {
        // Read for every resource of every project on each quota pass: one cached statement, rows read
        // in place (no query building, no record decoding).
        try await fetch { db in
            let statement = try db.cachedStatement(sql: "SELECT at, used FROM quota_history WHERE project = ? AND resource = ? AND at >= ? ORDER BY at")
            let rows = try Row.fetchCursor(statement, arguments: [project, resource, since.timeIntervalSince1970])
            var readings: [QuotaReading] = []
            while let row = try rows.next() {
                let at = try row.decode(Double.self, atIndex: 0)
                readings.append(QuotaReading(at: Date(timeIntervalSince1970: at), used: try row.decode(Int.self, atIndex: 1)))
            }
            return readings
        }
    }

    public func quotaLevels(project: String) async throws -> [String: String] {
        try await fetch { db in
            Dictionary(
                try QuotaLevelRecord.filter(Column("project") == project).fetchAll(db).map { ($0.resource, $0.level) }, uniquingKeysWith: { _, last in last })
        }
    }

    public func setQuotaLevel(project: String, resource: String, level: String) async throws {
        try await writeObservations { db in try QuotaLevelRecord(project: project, resource: resource, level: level).upsert(db) }
    }
}
