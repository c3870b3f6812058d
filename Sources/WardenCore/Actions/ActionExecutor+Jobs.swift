import ECSAPI
import Foundation

/// What one round of job following did.
public struct JobFollowingReport: Sendable, Equatable {
    /// Jobs still open before the round.
    public var followed = 0
    /// Jobs that ended (or vanished) in this round.
    public var closed = 0
    public var failures: [PartFailure] = []
}

extension ActionExecutor {
    /// Follows every open job (the daemon's own and registered ones) one step: a finished job is
    /// closed with the per-server outcome of its sub-jobs, the journal outcome of its intent, the
    /// metrics and, when something failed, an event. Runs in its own loop, so following goes on
    /// while any other loop is paused.
    public func followJobs(projects: [WardenProject], now: Date) async -> JobFollowingReport {
        var report = JobFollowingReport()
        let open: [WatchedJob]
        do {
            open = try await context.store.openJobs()
        } catch {
            report.failures.append(PartFailure(part: "store", message: "cannot read open jobs: \(error)"))
            return report
        }
        report.followed = open.count
        let clients = Dictionary(projects.map { ($0.name, $0.client) }, uniquingKeysWith: { a, _ in a })
        for watched in open {
            guard let client = clients[watched.project] else { continue }
            do {
                let job = try await client.job(id: watched.jobId)
                if job.status.isFinished {
                    try await close(watched, job: job, now: now)
                    report.closed += 1
                } else {
                    try await context.store.updateJob(
                        project: watched.project, jobId: watched.jobId, status: job.status.rawValue, jobType: job.jobType, closedAt: nil,
                        beganAt: job.beginDate)
                }
            } catch let error as ECSError where error.isNotFound {
                // The outcome is written under the project's lease: without it, the job stays open
                // for the node that holds the project (closing it first would lose the outcome).
                let outcomeFence: ShardFence?
                do {
                    outcomeFence = try fence(forProject: watched.project)
                } catch {
                    report.failures.append(PartFailure(part: "\(watched.project)/job \(watched.jobId)", message: "\(error)"))
                    continue
                }
                try? await context.store.updateJob(project: watched.project, jobId: watched.jobId, status: "UNKNOWN", jobType: nil, closedAt: now, beganAt: nil)
                report.closed += 1
                let message = "\(watched.project): job \(watched.jobId) is unknown to the API (\(error.code ?? "404")); no longer followed"
                if let intentSeq = watched.intentSeq, let intent = try? await context.store.entry(seq: intentSeq) {
                    _ = try? await context.store.append(
                        JournalEntry(
                            at: now, kind: .outcome, loop: intent.loop, project: intent.project, subject: intent.subject, action: intent.action,
                            clientToken: intent.clientToken, jobId: watched.jobId, servers: intent.servers, result: .unknown, message: message,
                            intentSeq: intentSeq, fence: outcomeFence))
                }
                await context.event(
                    LoopName.jobs.rawValue, project: watched.project, subject: watched.jobId, action: "job-unknown", severity: "warning", message: message)
            } catch {
                report.failures.append(PartFailure(part: "\(watched.project)/job \(watched.jobId)", message: "\(error)"))
            }
        }
        return report
    }

    /// Closes a finished job: per-server outcomes, the intent's outcome, metrics, events.
    func close(_ watched: WatchedJob, job: Job, now: Date) async throws {
        let store = context.store
        guard let intentSeq = watched.intentSeq, let intent = try await store.entry(seq: intentSeq) else {
            try await store.updateJob(
                project: watched.project, jobId: watched.jobId, status: job.status.rawValue, jobType: job.jobType, closedAt: now, beganAt: job.beginDate)
            if job.status == .fail {
                await context.event(
                    LoopName.jobs.rawValue, project: watched.project, subject: watched.jobId, action: "job-failed", severity: "warning",
                    servers: job.failedSubJobs.compactMap { $0.entities?.serverId },
                    message: "\(watched.project): job \(watched.jobId) (\(job.jobType ?? "?")) failed: \(Self.describeFailures(job.failedSubJobs))")
            }
            return
        }
        let loop = LoopName(rawValue: intent.loop) ?? .schedule
        let depth = try await retryDepth(of: intent)
        let outcomes = Self.serverOutcomes(of: job, intentSeq: intentSeq, servers: intent.servers, now: now, attempt: depth + 1)
        let failed = outcomes.filter { $0.result == .failed }
        let succeeded = outcomes.count - failed.count
        let result: ActionResult = failed.isEmpty ? .success : (succeeded == 0 ? .failed : .partial)
        let failedText = failed.map { "\($0.serverId): \($0.errorCode ?? "-")\($0.retryAt == nil ? "" : " (retryable)")" }
        // The job's close, the per-server outcomes and the intent's outcome in one transaction: a
        // crash or a write failure leaves the job open, to be closed again at the next round.
        try await store.recordJobEnd(
            project: watched.project, jobId: watched.jobId, status: job.status.rawValue, jobType: job.jobType, closedAt: now, beganAt: job.beginDate,
            serverOutcomes: outcomes,
            outcome: JournalEntry(
                at: now, kind: .outcome, loop: intent.loop, project: intent.project, subject: intent.subject, action: intent.action,
                clientToken: intent.clientToken, jobId: watched.jobId, servers: intent.servers, result: result,
                message: failed.isEmpty
                    ? "job \(watched.jobId) succeeded for \(succeeded) servers"
                    : "job \(watched.jobId) failed for \(failed.count) of \(outcomes.count) servers: \(failedText.joined(separator: "; "))",
                intentSeq: intentSeq, fence: try fence(forProject: intent.project)))
        if let action = intent.action.flatMap(ServerAction.init(rawValue:)) {
            // A failure for lack of capacity is counted as `capacity`; another retryable one as
            // `retrying` while a retry remains (the retry's own outcome is counted when its job
            // ends); the rest as `failed`.
            let limits = context.settings.autoStop
            var results: [ActionMetricResult: Int] = [.success: succeeded]
            for outcome in failed {
                let failure = SubJobRetryRules.classify(outcome.errorCode)
                let allowed = failure == .capacity ? limits.capacityRetries : limits.failedSubJobRetries
                let result: ActionMetricResult =
                    failure == .capacity ? .capacity : (loop == .schedule && outcome.retryAt != nil && depth < allowed ? .retrying : .failed)
                results[result, default: 0] += 1
            }
            for (result, servers) in results { count(loop, subject: intent.subject, action: action, result, servers) }
        }
        if !failed.isEmpty {
            await context.event(
                LoopName.jobs.rawValue, project: watched.project, subject: watched.jobId, action: "job-failed", severity: "warning",
                servers: failed.map(\.serverId),
                message: "\(watched.project): job \(watched.jobId) (\(intent.action ?? "?") of \(intent.subject ?? "?")) failed for \(failed.count) servers: \(failedText.joined(separator: "; "))")
        }
    }

    /// How many retries led to this intent (0 for a first call).
    func retryDepth(of intent: JournalEntry) async throws -> Int {
        var depth = 0
        var next = intent.retryOf
        while let seq = next, depth < 16 {
            depth += 1
            next = try await context.store.entry(seq: seq)?.retryOf
        }
        return depth
    }

    /// Each server's result from the job's sub-jobs; a server without a sub-job takes the job's
    /// own status. Pure.
    static func serverOutcomes(of job: Job, intentSeq: Int64, servers: [String], now: Date, attempt: Int = 1) -> [ServerOutcome] {
        var subJobs: [String: Job] = [:]
        for sub in job.subJobs {
            if let id = sub.entities?.serverId, subJobs[id] == nil { subJobs[id] = sub }
        }
        return servers.map { id in
            let source = subJobs[id] ?? job
            if source.status == .success {
                return ServerOutcome(intentSeq: intentSeq, serverId: id, result: .success, at: now)
            }
            let code = source.errorCode ?? (subJobs[id] == nil ? nil : job.errorCode)
            return ServerOutcome(
                intentSeq: intentSeq, serverId: id, result: .failed, errorCode: code,
                retryAt: SubJobRetryRules.retryAt(code: code, failedAt: now, attempt: attempt), at: now)
        }
    }

    static func describeFailures(_ failed: [Job]) -> String {
        failed.map { "\($0.entities?.serverId ?? "?"): \($0.errorCode ?? "-") \($0.failReason ?? $0.entities?.errorcodeMessage ?? "")" }
            .joined(separator: "; ")
    }
}
