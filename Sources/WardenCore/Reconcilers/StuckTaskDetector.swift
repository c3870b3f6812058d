import ECSAPI
import Foundation
import Synchronization

/// Stuck-task detection.
///
/// Jobs: follows every watched job (the daemon's own and those registered from outside) until
/// SUCCESS or FAIL, journals the outcome with the failed sub-jobs per server, and reports jobs left
/// in INIT or RUNNING past their type's deadline. Servers: measures how long each server has been
/// in its (status, task_state) pair — from the first time the daemon saw the pair (persisted) and
/// from `updated` — and reports those past the threshold, including task states such as
/// `powering-off` that leave `status` unchanged. Detects and reports; remediation is opt-in.
public final class StuckTaskDetector: Reconciler {
    public let name = "stuck"
    let context: WardenContext
    private let snapshotState = Mutex<Snapshot>(Snapshot())
    private let reported = Mutex<Set<String>>([])

    /// A job in INIT or RUNNING past its deadline.
    public struct StuckJob: Sendable, Equatable, Codable {
        public var project: String
        public var jobId: String
        public var jobType: String?
        public var status: String
        public var source: String
        public var ageSeconds: Double
        public var deadlineSeconds: Double
    }

    /// A server past its threshold.
    public struct StuckServer: Sendable, Equatable, Codable {
        public var project: String
        public var region: String
        public var serverId: String
        public var name: String
        public var status: String
        public var taskState: String?
        public var since: Date
        public var ageSeconds: Double
        public var thresholdSeconds: Double
    }

    /// What the last pass found.
    public struct Snapshot: Sendable, Equatable, Codable {
        public var jobs: [StuckJob] = []
        public var servers: [StuckServer] = []
        public var watchedJobs = 0
    }

    public init(context: WardenContext) {
        self.context = context
    }

    /// The stuck jobs and servers of the last pass.
    public func snapshot() -> Snapshot { snapshotState.withLock { $0 } }

    /// Registers a job created outside the daemon, to be followed like its own.
    public func registerExternalJob(project: String, jobId: String, now: Date) async throws {
        try await context.store.watch(WatchedJob(project: project, jobId: jobId, jobType: nil, source: "external", registeredAt: now, intentSeq: nil))
    }

    public func reconcile(now: Date) async throws -> ReconcileReport {
        let settings = context.settings
        let projects = context.projects
        var failures: [PartFailure] = []
        await closeUnansweredRemedies(now: now)
        let (stuckJobs, watched, jobFailures) = await followJobs(projects: projects, rules: settings.stuck, now: now)
        failures += jobFailures
        let results = await boundedForEach(projects, limit: settings.projectConcurrency) { project in
            do {
                return Result<[StuckServer], PartFailure>.success(try await self.inspectServers(project, settings: settings, now: now))
            } catch {
                return .failure(PartFailure(part: project.name, message: "\(error)"))
            }
        }
        var stuckServers: [StuckServer] = []
        var serverFailures = 0
        for result in results {
            switch result {
            case .success(let found): stuckServers += found
            case .failure(let failure):
                failures.append(failure)
                serverFailures += 1
            }
        }
        if !projects.isEmpty && serverFailures == projects.count && jobFailures.count == watched && watched > 0 {
            throw WardenError.allPartsFailed(loop: name, failures: failures)
        }
        if !projects.isEmpty && serverFailures == projects.count && watched == 0 {
            throw WardenError.allPartsFailed(loop: name, failures: failures)
        }
        let metrics = context.metrics
        let regionOf = Dictionary(projects.map { ($0.name, $0.region) }, uniquingKeysWith: { a, _ in a })
        var jobCounts: [String: (labels: [(String, String)], count: Double)] = [:]
        for job in stuckJobs {
            let labels = [("project", job.project), ("region", regionOf[job.project] ?? ""), ("job_type", job.jobType ?? "unknown")]
            jobCounts[labels.map(\.1).joined(separator: "/"), default: (labels, 0)].count += 1
        }
        metrics.stuckJobs.replace(with: jobCounts.values.map { ($0.labels, $0.count) })
        var serverCounts: [String: (labels: [(String, String)], count: Double)] = [:]
        for server in stuckServers {
            let labels = [("project", server.project), ("region", server.region), ("status", server.status), ("task_state", server.taskState ?? "")]
            serverCounts[labels.map(\.1).joined(separator: "/"), default: (labels, 0)].count += 1
        }
        metrics.stuckServers.replace(with: serverCounts.values.map { ($0.labels, $0.count) })
        metrics.stuckServerAge.replace(
            with: stuckServers.sorted { $0.ageSeconds > $1.ageSeconds }.prefix(settings.maxStuckServersExported).map { server in
                ([("project", server.project), ("region", server.region), ("server_id", server.serverId), ("status", server.status),
                  ("task_state", server.taskState ?? "")], server.ageSeconds)
            })
        snapshotState.withLock { $0 = Snapshot(jobs: stuckJobs, servers: stuckServers, watchedJobs: watched) }
        return ReconcileReport(
            summary: "\(watched) jobs followed, \(stuckJobs.count) stuck; \(stuckServers.count) stuck servers", failures: failures)
    }

    // MARK: Jobs

    private func followJobs(projects: [WardenProject], rules: StuckRules, now: Date) async -> ([StuckJob], Int, [PartFailure]) {
        let open: [WatchedJob]
        do {
            open = try await context.store.openJobs()
        } catch {
            return ([], 0, [PartFailure(part: "store", message: "\(error)")])
        }
        let clients = Dictionary(projects.map { ($0.name, $0.client) }, uniquingKeysWith: { a, _ in a })
        var stuck: [StuckJob] = []
        var failures: [PartFailure] = []
        for watched in open {
            guard let client = clients[watched.project] else { continue }
            do {
                let job = try await client.job(id: watched.jobId)
                if job.status.isFinished {
                    try await close(watched, job: job, now: now)
                    continue
                }
                try await context.store.updateJob(project: watched.project, jobId: watched.jobId, status: job.status.rawValue, jobType: job.jobType, closedAt: nil)
                let started = job.beginDate ?? watched.registeredAt
                let age = now.timeIntervalSince(min(started, watched.registeredAt))
                let deadline = rules.deadline(jobType: job.jobType)
                if age > deadline {
                    stuck.append(
                        StuckJob(
                            project: watched.project, jobId: watched.jobId, jobType: job.jobType, status: job.status.rawValue, source: watched.source,
                            ageSeconds: age, deadlineSeconds: deadline))
                    if reported.withLock({ $0.insert("job/\(watched.jobId)").inserted }) {
                        await context.event(
                            name, project: watched.project, subject: watched.jobId, action: "job-stuck", severity: "warning",
                            message: "\(watched.project): job \(watched.jobId) (\(job.jobType ?? "unknown type")) has been \(job.status.rawValue) for \(Int(age)) s")
                    }
                }
            } catch let error as ECSError where error.isNotFound {
                try? await context.store.updateJob(project: watched.project, jobId: watched.jobId, status: "UNKNOWN", jobType: nil, closedAt: now)
                await context.event(
                    name, project: watched.project, subject: watched.jobId, action: "job-unknown", severity: "warning",
                    message: "\(watched.project): job \(watched.jobId) is unknown to the API (\(error.code ?? "404")); no longer followed")
            } catch {
                failures.append(PartFailure(part: "\(watched.project)/job \(watched.jobId)", message: "\(error)"))
            }
        }
        return (stuck, open.count, failures)
    }

    /// Closes a finished job: outcome in the journal (per-server results), metrics, events.
    private func close(_ watched: WatchedJob, job: Job, now: Date) async throws {
        let store = context.store
        try await store.updateJob(project: watched.project, jobId: watched.jobId, status: job.status.rawValue, jobType: job.jobType, closedAt: now)
        reported.withLock { _ = $0.remove("job/\(watched.jobId)") }
        let failed = job.failedSubJobs
        let succeeded = job.subJobs.filter { $0.status == .success }
        let failedText = failed.map { "\($0.entities?.serverId ?? "?"): \($0.errorCode ?? "-") \($0.failReason ?? $0.entities?.errorcodeMessage ?? "")" }
        if let intentSeq = watched.intentSeq {
            let intent = try await store.journal(since: intentSeq - 1, limit: 1).first { $0.seq == intentSeq }
            try await store.append(
                JournalEntry(
                    at: now, kind: .outcome, loop: intent?.loop ?? "schedule", project: watched.project, subject: intent?.subject, action: intent?.action,
                    clientToken: intent?.clientToken, jobId: watched.jobId, servers: intent?.servers ?? [],
                    result: job.status == .success ? "success" : (succeeded.isEmpty ? "fail" : "partial"),
                    message: job.status == .success
                        ? "job \(watched.jobId) succeeded for \(succeeded.count) servers"
                        : "job \(watched.jobId) failed for \(failed.count) servers: \(failedText.joined(separator: "; "))",
                    intentSeq: intentSeq))
            if let schedule = intent?.subject, let action = intent?.action, intent?.loop == "schedule" {
                let total = max(intent?.servers.count ?? 0, job.subJobs.count)
                let failedCount = job.status == .success ? 0 : max(failed.count, job.subJobs.isEmpty ? total : 0)
                context.metrics.recordScheduleActions(schedule: schedule, action: action, result: "success", count: total - failedCount)
                context.metrics.recordScheduleActions(schedule: schedule, action: action, result: "failed", count: failedCount)
            }
        }
        if job.status == .fail {
            await context.event(
                name, project: watched.project, subject: watched.jobId, action: "job-failed", severity: "warning",
                servers: failed.compactMap { $0.entities?.serverId },
                message: "\(watched.project): job \(watched.jobId) (\(job.jobType ?? "?")) failed: \(failedText.joined(separator: "; "))")
        }
    }

    // MARK: Servers

    private func inspectServers(_ project: WardenProject, settings: WardenSettings, now: Date) async throws -> [StuckServer] {
        let rules = settings.stuck
        // The schedule loop's reading of the last seconds when there is one: one listing of the fleet for both.
        let watched = try await context.inventory.servers(of: project, fresh: false, now: now, settings: settings).filter(rules.watches)
        let firstSeen = try await context.store.firstSeen(
            project: project.name, states: watched.map { ($0.id, $0.status.rawValue, $0.taskState) }, now: now)
        var stuck: [StuckServer] = []
        var stillStuck = Set<String>()
        for server in watched {
            guard let finding = rules.evaluate(server, firstSeen: firstSeen[server.id] ?? now, now: now), finding.stuck else { continue }
            let key = "server/\(project.name)/\(server.id)/\(finding.status)/\(finding.taskState ?? "")"
            stillStuck.insert(key)
            stuck.append(
                StuckServer(
                    project: project.name, region: project.region, serverId: server.id, name: server.name, status: finding.status,
                    taskState: finding.taskState, since: finding.since, ageSeconds: finding.age, thresholdSeconds: finding.threshold))
            if reported.withLock({ $0.insert(key).inserted }) {
                await context.event(
                    name, project: project.name, subject: server.id, action: "server-stuck", severity: "warning", servers: [server.id],
                    message: "\(project.name): server \(server.name) (\(server.id)) has been \(finding.status)/\(finding.taskState ?? "-") for \(Int(finding.age)) s (threshold \(Int(finding.threshold)) s)")
                if let taskState = finding.taskState, let remedy = rules.remediations[taskState] {
                    await remediate(project: project, server: server, remedy: remedy, stuckSince: finding.since, now: now, dryRun: settings.dryRun)
                }
            }
        }
        // Servers of this project that recovered since the last pass.
        let recovered = reported.withLock { set -> [String] in
            let mine = set.filter { $0.hasPrefix("server/\(project.name)/") && !stillStuck.contains($0) }
            set.subtract(mine)
            return Array(mine)
        }
        for key in recovered {
            let serverId = key.split(separator: "/").dropFirst(2).first.map(String.init) ?? key
            await context.event(
                name, project: project.name, subject: serverId, action: "server-recovered", severity: "info", servers: [serverId],
                message: "\(project.name): server \(serverId) is no longer stuck")
        }
        return stuck
    }

    /// An opt-in remedy, journaled like every action: intent before, outcome after. At most one per
    /// stuck episode of a server, across restarts: a remedy already journaled since the server got
    /// stuck (and not refused) is not tried again.
    private func remediate(project: WardenProject, server: Server, remedy: StuckRules.Remediation, stuckSince: Date, now: Date, dryRun: Bool) async {
        let action: BatchServerAction = remedy == .hardStop ? .stop(.hard) : .reboot(.hard)
        let token = ECSClient.makeClientToken()
        let store = context.store
        let earlier = ((try? await store.intentsWithResults(loop: name, since: stuckSince)) ?? []).first { intent, results in
            intent.subject == server.id && intent.action == remedy.rawValue && (intent.kind == .dryRun) == dryRun
                && JournaledCall.state(outcomeResults: results) != .refused
        }
        if let earlier {
            await context.event(
                name, project: project.name, subject: server.id, action: "remediation-skipped", severity: "info", servers: [server.id],
                message: "\(project.name): \(remedy.rawValue) of stuck server \(server.name) was already tried for this episode (journal \(earlier.intent.seq)); not repeated")
            return
        }
        // Re-read before acting: the listing may be some seconds old (shared with the schedule loop).
        do {
            let current = try await project.client.server(id: server.id)
            guard current.status == server.status, current.taskState == server.taskState else {
                await context.event(
                    name, project: project.name, subject: server.id, action: "remediation-skipped", severity: "info", servers: [server.id],
                    message: "\(project.name): server \(server.name) moved on to \(current.status.rawValue)/\(current.taskState ?? "-") before its \(remedy.rawValue); not done")
                return
            }
        } catch {
            await context.event(
                name, project: project.name, subject: server.id, action: "remediation-failed", severity: "warning", servers: [server.id],
                message: "\(project.name): cannot re-read server \(server.id) before its \(remedy.rawValue): \(error); not done")
            return
        }
        if dryRun {
            _ = try? await store.append(
                JournalEntry(
                    at: now, kind: .dryRun, loop: name, project: project.name, subject: server.id, action: remedy.rawValue, servers: [server.id],
                    message: "would \(remedy.rawValue) stuck server \(server.name)"))
            return
        }
        var intent: Int64?
        do {
            intent = try await store.append(
                JournalEntry(
                    at: now, kind: .intent, loop: name, project: project.name, subject: server.id, action: remedy.rawValue, clientToken: token,
                    servers: [server.id], result: "pending", message: "\(remedy.rawValue) stuck server \(server.name)"))
            let accepted = try await project.client.batchAction(action, serverIds: [server.id], clientToken: token)
            try await store.append(
                JournalEntry(
                    at: context.clock.now(), kind: .outcome, loop: name, project: project.name, subject: server.id, action: remedy.rawValue,
                    clientToken: token, jobId: accepted.jobId, servers: [server.id], result: "accepted", message: "job \(accepted.jobId)", intentSeq: intent))
            try await store.watch(
                WatchedJob(project: project.name, jobId: accepted.jobId, jobType: nil, source: "warden", registeredAt: now, intentSeq: intent))
        } catch {
            // A clear refusal closes the intent; without an answer it stays open for the next pass.
            if let intent, let refusal = error as? ECSError, !refusal.mayHaveBeenCarriedOut {
                _ = try? await store.append(
                    JournalEntry(
                        at: context.clock.now(), kind: .outcome, loop: name, project: project.name, subject: server.id, action: remedy.rawValue,
                        clientToken: token, servers: [server.id], result: "error", message: "refused: \(refusal)", intentSeq: intent))
            }
            await context.event(
                name, project: project.name, subject: server.id, action: "remediation-failed", severity: "warning", servers: [server.id],
                message: "\(project.name): \(remedy.rawValue) of \(server.id) failed: \(error)")
        }
    }

    /// Remedies left without an answer (no reply, or the daemon died between intent and outcome)
    /// are closed as `unknown` and never re-sent: a hard reboot or stop may already be under way.
    private func closeUnansweredRemedies(now: Date) async {
        guard let open = try? await context.store.openIntents(loop: name) else { return }
        for intent in open {
            let message = "recovery: \(intent.action ?? "remedy") of \(intent.subject ?? "?") (intent \(intent.seq)) got no answer; it may have been carried out, so it is not re-sent"
            _ = try? await context.store.append(
                JournalEntry(
                    at: now, kind: .outcome, loop: name, project: intent.project, subject: intent.subject, action: intent.action, clientToken: intent.clientToken,
                    servers: intent.servers, result: "unknown", message: message, intentSeq: intent.seq))
            await context.event(name, project: intent.project, subject: intent.subject, action: "recovery-unknown", severity: "warning", servers: intent.servers, message: message)
        }
    }
}
