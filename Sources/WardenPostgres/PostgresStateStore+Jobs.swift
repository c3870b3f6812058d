import Foundation
import PostgresNIO
import WardenCore

extension PostgresStateStore {
    public func watch(_ job: WatchedJob) async throws {
        try await withConnection { [self] connection in try await insertWatchedJob(job, on: connection) }
    }

    /// Starts following a job unless it is followed already (the first registration stays).
    func insertWatchedJob(_ job: WatchedJob, on connection: PostgresConnection) async throws {
        try await connection.run(
            """
            INSERT INTO watched_jobs (project, job_id, job_type, source, registered_at, intent_seq, status, closed_at, began_at)
            VALUES (\(job.project), \(job.jobId), \(job.jobType), \(job.source), \(job.registeredAt.timeIntervalSince1970), \(job.intentSeq),
                \(job.status), \(job.closedAt?.timeIntervalSince1970), \(job.beganAt?.timeIntervalSince1970))
            ON CONFLICT (project, job_id) DO NOTHING
            """, logger: logger)
    }

    public func openJobs() async throws -> [WatchedJob] {
        try await withConnection { [self] connection in
            try await connection.rows(
                """
                SELECT project, job_id, job_type, source, registered_at, intent_seq, status, closed_at, began_at FROM watched_jobs
                WHERE closed_at IS NULL ORDER BY registered_at, project COLLATE "C", job_id COLLATE "C"
                """, logger: logger
            ).map { row in
                WatchedJob(
                    project: try row.value("project"), jobId: try row.value("job_id"), jobType: try row.value("job_type"), source: try row.value("source"),
                    registeredAt: try row.date("registered_at"), intentSeq: try row.value("intent_seq"), status: try row.value("status"),
                    closedAt: try row.optionalDate("closed_at"), beganAt: try row.optionalDate("began_at"))
            }
        }
    }

    public func updateJob(project: String, jobId: String, status: String, jobType: String?, closedAt: Date?, beganAt: Date?) async throws {
        try await withConnection { [self] connection in
            try await updateJob(project: project, jobId: jobId, status: status, jobType: jobType, closedAt: closedAt, beganAt: beganAt, on: connection)
        }
    }

    /// Updates a followed job (a job not followed is left alone): the status and `closed_at` as
    /// told, the type and begin time only when told.
    func updateJob(
        project: String, jobId: String, status: String, jobType: String?, closedAt: Date?, beganAt: Date?, on connection: PostgresConnection
    ) async throws {
        try await connection.run(
            """
            UPDATE watched_jobs SET status = \(status), job_type = COALESCE(\(jobType)::text, job_type),
                closed_at = \(closedAt?.timeIntervalSince1970)::double precision,
                began_at = COALESCE(\(beganAt?.timeIntervalSince1970)::double precision, began_at)
            WHERE project = \(project) AND job_id = \(jobId)
            """, logger: logger)
    }
}
