import Foundation
import GRDB

/// A row of `watched_jobs`.
struct WatchedJobRecord: StoredRecord, PersistableRecord {
    static let databaseTableName = "watched_jobs"

    var project: String
    var jobId: String
    var jobType: String?
    var source: String
    var registeredAt: Date
    var intentSeq: Int64?
    var status: String?
    var closedAt: Date?
    var beganAt: Date?

    init(_ job: WatchedJob) {
        project = job.project
        jobId = job.jobId
        jobType = job.jobType
        source = job.source
        registeredAt = job.registeredAt
        intentSeq = job.intentSeq
        status = job.status
        closedAt = job.closedAt
        beganAt = job.beganAt
    }

    var job: WatchedJob {
        WatchedJob(
            project: project, jobId: jobId, jobType: jobType, source: source, registeredAt: registeredAt, intentSeq: intentSeq, status: status,
            closedAt: closedAt, beganAt: beganAt)
    }
}

extension SQLiteStateStore {
    public func watch(_ job: WatchedJob) async throws {
        try await database.write { db in try WatchedJobRecord(job).insert(db, onConflict: .ignore) }
    }

    public func openJobs() async throws -> [WatchedJob] {
        try await fetch { db in try WatchedJobRecord.filter(Column("closed_at") == nil).order(Column("registered_at")).fetchAll(db).map(\.job) }
    }

    public func updateJob(project: String, jobId: String, status: String, jobType: String?, closedAt: Date?, beganAt: Date?) async throws {
        try await database.write { db in
            guard var record = try WatchedJobRecord.fetchOne(db, key: ["project": project, "job_id": jobId]) else { return }
            record.status = status
            record.jobType = jobType ?? record.jobType
            record.closedAt = closedAt
            record.beganAt = beganAt ?? record.beganAt
            try record.update(db)
        }
    }
}
