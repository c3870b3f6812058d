import ECSAPI
import Foundation
import Synchronization

/// Stuck-task detection.
///
/// Jobs: reports watched jobs (the daemon's own and those registered from outside) left in INIT
/// or RUNNING past their type's deadline, from the status the job-following loop last saw.
/// Servers: measures how long each server has been in its (status, task_state) pair — from the
/// first time the daemon saw the pair (persisted) and from `updated` — and reports those past the
/// threshold, including task states such as `powering-off` that leave `status` unchanged. Each
/// stuck episode is reported once, also across restarts. Detects and reports; the opt-in remedy
/// goes through the `ActionExecutor`.
public final class StuckTaskDetector: Reconciler {
    public let name = LoopName.stuck.rawValue
    let context: WardenContext
    let executor: ActionExecutor
    private let snapshotState = Mutex<Snapshot>(Snapshot())
    /// The latest operation of each stuck episode, read once per episode by this process.
    private let operations = Mutex<[String: StuckOperation?]>([:])

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

    /// The latest operation on a stuck server as its instance actions tell it (the API's only
    /// record of operations started outside the daemon: a person in the console, another tool).
    public struct StuckOperation: Sendable, Equatable, Codable {
        public var action: String
        public var requestId: String
        public var userId: String?
        public var startTime: String?
        /// No event of it has finished.
        public var unfinished: Bool
        /// The first event that failed, when one did.
        public var failedEvent: String?

        /// `reboot by user u (req-1) at 2026-…: not finished`.
        public var summary: String {
            var text = "\(action) by \(userId.map { "user \($0)" } ?? "an unknown user") (\(requestId))\(startTime.map { " at \($0)" } ?? "")"
            if let failedEvent { text += ": event \(failedEvent) failed" } else if unfinished { text += ": not finished" }
            return text
        }
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
        /// The latest operation on it (read once per stuck episode), when the API has one.
        public var operation: StuckOperation?
    }

    /// A server whose details say something is wrong (`ServerHealth`), reported at once.
    public struct UnhealthyServer: Sendable, Equatable, Codable {
        public var project: String
        public var region: String
        public var serverId: String
        public var name: String
        public var status: String
        public var hostStatus: String?
        public var problems: [ServerHealth.Problem]
    }

    /// What the last pass found.
    public struct Snapshot: Sendable, Equatable, Codable {
        public var jobs: [StuckJob] = []
        public var servers: [StuckServer] = []
        public var unhealthy: [UnhealthyServer] = []
        public var watchedJobs = 0
    }

    public init(context: WardenContext) {
        self.context = context
        self.executor = ActionExecutor(context: context)
    }

    /// The stuck jobs and servers of the last pass.
    public func snapshot() -> Snapshot { snapshotState.withLock { $0 } }

    /// Registers a job created outside the daemon, to be followed like its own.
    public func registerExternalJob(project: String, jobId: String, now: Date) async throws {
        try await context.store.watch(WatchedJob(project: project, jobId: jobId, jobType: nil, source: "external", registeredAt: now, intentSeq: nil))
    }

    public func reconcile(now: Date) async throws -> ReconcileReport {
        let settings = context.settings
        let projects = context.ownedProjects
        var failures: [PartFailure] = []
        failures += await closeUnansweredRemedies(projects: projects, now: now)
        let (stuckJobs, watched, jobFailures) = await stuckJobs(rules: settings.stuck, now: now)
        failures += jobFailures
        let results = await boundedForEach(projects, limit: settings.projectConcurrency) { project in
            do {
                let findings = try await self.context.ownership.whileOwned(.project(project.projectId)) {
                    try await self.inspectServers(project, settings: settings, now: now)
                }
                return Result<ProjectFindings, PartFailure>.success(findings)
            } catch {
                return .failure(PartFailure(part: project.name, message: "\(error)"))
            }
        }
        var stuckServers: [StuckServer] = []
        var unhealthy: [UnhealthyServer] = []
        var serverFailures = 0
        for result in results {
            switch result {
            case .success(let found):
                stuckServers += found.stuck
                unhealthy += found.unhealthy
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
        var unhealthyCounts: [String: (labels: [(String, String)], count: Double)] = [:]
        for server in unhealthy {
            for problem in server.problems {
                let labels = [("project", server.project), ("region", server.region), ("reason", problem.reason)]
                unhealthyCounts[labels.map(\.1).joined(separator: "/"), default: (labels, 0)].count += 1
            }
        }
        metrics.unhealthyServers.replace(with: unhealthyCounts.values.map { ($0.labels, $0.count) })
        snapshotState.withLock { $0 = Snapshot(jobs: stuckJobs, servers: stuckServers, unhealthy: unhealthy, watchedJobs: watched) }
        return ReconcileReport(
            summary: "\(watched) jobs followed, \(stuckJobs.count) stuck; \(stuckServers.count) stuck servers; \(unhealthy.count) unhealthy", failures: failures)
    }

    // MARK: Jobs

    /// Watched jobs past their deadline, from the status the job-following loop last recorded.
    private func stuckJobs(rules: StuckRules, now: Date) async -> ([StuckJob], Int, [PartFailure]) {
        let open: [WatchedJob]
        do {
            open = try await context.store.openJobs()
        } catch {
            return ([], 0, [PartFailure(part: "store", message: "\(error)")])
        }
        var stuck: [StuckJob] = []
        var current = Set<String>()
        for watched in open {
            let started = min(watched.beganAt ?? watched.registeredAt, watched.registeredAt)
            let age = now.timeIntervalSince(started)
            let deadline = rules.deadline(jobType: watched.jobType)
            guard age > deadline else { continue }
            let status = watched.status ?? "INIT"
            stuck.append(
                StuckJob(
                    project: watched.project, jobId: watched.jobId, jobType: watched.jobType, status: status, source: watched.source, ageSeconds: age,
                    deadlineSeconds: deadline))
            let key = "job/\(watched.project)/\(watched.jobId)"
            current.insert(key)
            if (try? await context.store.beginEpisode(key, loop: name, at: now)) ?? true {
                await context.event(
                    name, project: watched.project, subject: watched.jobId, action: "job-stuck", severity: "warning",
                    message: "\(watched.project): job \(watched.jobId) (\(watched.jobType ?? "unknown type")) has been \(status) for \(Int(age)) s")
            }
        }
        _ = try? await context.store.endEpisodes(loop: name, prefix: "job/", keeping: current)
        return (stuck, open.count, [])
    }

    // MARK: Servers

    /// One project's findings.
    struct ProjectFindings: Sendable {
        var stuck: [StuckServer] = []
        var unhealthy: [UnhealthyServer] = []
    }

    private func inspectServers(_ project: WardenProject, settings: WardenSettings, now: Date) async throws -> ProjectFindings {
        let rules = settings.stuck
        // The schedule loop's reading of the last seconds when there is one: one listing of the fleet for both.
        let watched = try await context.inventory.servers(of: project, fresh: false, now: now, settings: settings).filter(rules.watches)
        let firstSeen = try await context.store.firstSeen(
            project: project.name, states: watched.map { ServerStateSighting(serverId: $0.id, status: $0.status.rawValue, taskState: $0.taskState) }, now: now)
        var found: [(key: String, server: Server, finding: StuckRules.ServerFinding)] = []
        // A listing may repeat a server (within a page, or a page served twice): each server once,
        // so its episode's event and remedy come once, as when each key was begun on its own.
        var seen = Set<String>()
        for server in watched where seen.insert(server.id).inserted {
            guard let finding = rules.evaluate(server, firstSeen: firstSeen[server.id] ?? now, now: now), finding.stuck else { continue }
            found.append(("server/\(project.name)/\(server.id)/\(finding.status)/\(finding.taskState ?? "")", server, finding))
        }
        let health = healthProblems(of: watched, project: project)
        // Once per episode, also across restarts: one write begins this project's episodes (stuck
        // and unhealthy servers), one ends those that are over; if the store cannot tell, the event is written.
        let keys = found.map(\.key) + health.problems.map(\.key)
        let begun = (try? await context.store.beginEpisodes(keys, loop: name, at: now)) ?? Set(keys)
        var stuck: [StuckServer] = []
        for (key, server, finding) in found {
            let operation = await latestOperation(of: server, project: project, episode: key)
            stuck.append(
                StuckServer(
                    project: project.name, region: project.region, serverId: server.id, name: server.name, status: finding.status,
                    taskState: finding.taskState, since: finding.since, ageSeconds: finding.age, thresholdSeconds: finding.threshold,
                    operation: operation))
            if begun.contains(key) {
                await context.event(
                    name, project: project.name, subject: server.id, action: "server-stuck", severity: "warning", servers: [server.id],
                    message: "\(project.name): server \(server.name) (\(server.id)) has been \(finding.status)/\(finding.taskState ?? "-") for \(Int(finding.age)) s (threshold \(Int(finding.threshold)) s)"
                        + (operation.map { "; latest operation: \($0.summary)" } ?? ""))
                if let taskState = finding.taskState, let remedy = rules.remediations[taskState] {
                    await remediate(project: project, server: server, remedy: remedy, stuckSince: finding.since, now: now, dryRun: settings.dryRun)
                }
            }
        }
        for (key, server, problem) in health.problems where begun.contains(key) {
            await context.event(
                name, project: project.name, subject: server.id, action: "server-unhealthy", severity: "warning", servers: [server.id],
                message: "\(project.name): server \(server.name) (\(server.id)): \(problem.detail)")
        }
        // Servers of this project that recovered, or no longer show a problem, since the last pass.
        let stuckPrefix = "server/\(project.name)/"
        let ended = (try? await context.store.endEpisodes(loop: name, prefixes: [stuckPrefix, "health/\(project.name)/"], keeping: Set(keys))) ?? []
        for key in ended {
            let parts = key.split(separator: "/").map(String.init)
            let serverId = parts.count > 2 ? parts[2] : key
            if key.hasPrefix(stuckPrefix) {
                await context.event(
                    name, project: project.name, subject: serverId, action: "server-recovered", severity: "info", servers: [serverId],
                    message: "\(project.name): server \(serverId) is no longer stuck")
            } else {
                await context.event(
                    name, project: project.name, subject: serverId, action: "server-healthy", severity: "info", servers: [serverId],
                    message: "\(project.name): server \(serverId) no longer shows \(parts.last ?? "the problem")")
            }
        }
        return ProjectFindings(stuck: stuck, unhealthy: health.servers)
    }

    /// The latest instance action of a stuck server, with its events: read once per episode (two
    /// calls), so a fleet of stuck servers does not read every server's history every pass. A
    /// failed read is retried at the next pass.
    private func latestOperation(of server: Server, project: WardenProject, episode: String) async -> StuckOperation? {
        if let known = operations.withLock({ $0[episode] }) { return known }
        do {
            let actions = try await project.client.instanceActions(serverId: server.id)
            guard let latest = actions.max(by: { ($0.startTime ?? "") < ($1.startTime ?? "") }) else {
                operations.withLock { $0[episode] = .some(nil) }
                return nil
            }
            let detail = try await project.client.instanceAction(serverId: server.id, requestId: latest.requestId)
            let events = detail.events ?? []
            let failed = events.first { ($0.result ?? "").lowercased().contains("error") || ($0.result ?? "").lowercased().contains("fail") }
            let operation = StuckOperation(
                action: latest.action, requestId: latest.requestId, userId: latest.userId, startTime: latest.startTime,
                unfinished: events.isEmpty ? detail.message == nil : events.contains { $0.finishTime == nil }, failedEvent: failed?.event)
            operations.withLock { cache in
                cache[episode] = .some(operation)
                if cache.count > 10_000 { cache.removeAll() }
            }
            return operation
        } catch {
            return nil
        }
    }

    /// Servers the details call unhealthy, and each problem with its episode key (reported at once,
    /// once per episode, also across restarts, and once when it clears: see `inspectServers`).
    private func healthProblems(of servers: [Server], project: WardenProject) -> (
        servers: [UnhealthyServer], problems: [(key: String, server: Server, problem: ServerHealth.Problem)]
    ) {
        var found: [UnhealthyServer] = []
        var problems: [(key: String, server: Server, problem: ServerHealth.Problem)] = []
        var seen = Set<String>()
        for server in servers where seen.insert(server.id).inserted {
            let serverProblems = ServerHealth.problems(of: server)
            guard !serverProblems.isEmpty else { continue }
            found.append(
                UnhealthyServer(
                    project: project.name, region: project.region, serverId: server.id, name: server.name, status: server.status.rawValue,
                    hostStatus: server.hostStatus, problems: serverProblems))
            for problem in serverProblems { problems.append(("health/\(project.name)/\(server.id)/\(problem.reason)", server, problem)) }
        }
        return (found, problems)
    }

    /// An opt-in remedy, journaled like every action: intent before, outcome after. At most one per
    /// stuck episode of a server, across restarts: a remedy already journaled since the server got
    /// stuck (and not refused) is not tried again.
    private func remediate(project: WardenProject, server: Server, remedy: StuckRules.Remediation, stuckSince: Date, now: Date, dryRun: Bool) async {
        let earlier = ((try? await context.store.calls(loop: name, since: stuckSince)) ?? []).first { call in
            call.intent.subject == server.id && call.intent.action == remedy.rawValue && (call.intent.kind == .dryRun) == dryRun && call.state != .refused
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
        let action: ServerAction = remedy == .hardStop ? .hardStop : .hardReboot
        let result: CallResult
        do {
            result = try await executor.perform(
                ActionIntent(
                    loop: .stuck, action: action, project: project.name, servers: [server.id], subject: server.id,
                    description: "\(remedy.rawValue) stuck server \(server.name)", at: now),
                client: project.client, dryRun: dryRun)
        } catch {
            await context.event(
                name, project: project.name, subject: server.id, action: "remediation-failed", severity: "warning", servers: [server.id],
                message: "\(project.name): \(remedy.rawValue) of \(server.id) not sent: cannot journal its intent: \(error)")
            return
        }
        switch result {
        case .refused(_, let reason), .noAnswer(_, let reason), .notSent(let reason):
            await context.event(
                name, project: project.name, subject: server.id, action: "remediation-failed", severity: "warning", servers: [server.id],
                message: "\(project.name): \(remedy.rawValue) of \(server.id) failed: \(reason)")
        case .accepted, .dryRun:
            break
        }
    }

    /// Remedies left without an answer (no reply, or the daemon died between intent and outcome)
    /// are closed as `unknown` and never re-sent: a hard reboot or stop may already be under way.
    private func closeUnansweredRemedies(projects: [WardenProject], now: Date) async -> [PartFailure] {
        await executor.recoverOpenIntents(loop: .stuck, projects: projects, grace: nil, now: now) { intent, _, _ in
            .close(
                .unknown,
                reason: "recovery: \(intent.action ?? "remedy") of \(intent.subject ?? "?") (intent \(intent.seq)) got no answer; it may have been carried out, so it is not re-sent")
        }
    }
}
