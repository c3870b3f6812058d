import ECSAPI
import Foundation
import Synchronization

/// Tag-based auto-stop/start.
///
/// Servers carrying the schedule tag are stopped and started at their schedule's boundaries (or
/// kept converged, with `enforce`). A pass: resolves intents a crash left open, reads every
/// project's servers, plans with `AutoStopPlanner` (pure), re-reads the servers just before acting,
/// and acts in batches of at most 1,000 with an `X-Client-Token` each — the intent journaled before
/// the call, the job id after it; the stuck-task loop follows the job to its end. The loop wakes at
/// the next boundary of any schedule.
public final class AutoStopScheduler: Reconciler {
    public let name = "schedule"
    let context: WardenContext
    private let lastPlan = Mutex<AutoStopPlan?>(nil)
    private let reportedSkips = Mutex<Set<String>>([])
    /// How long the last reading of every project took (sets how early to read before a boundary).
    private let lastReadSeconds = Mutex<Double>(0)
    /// The loop was paused: a pass in progress (waiting for a boundary) acts on nothing more.
    private let paused = Mutex(false)

    public func loopPaused(_ paused: Bool) { self.paused.withLock { $0 = paused } }

    public init(context: WardenContext) {
        self.context = context
    }

    /// The plan of the last pass.
    public func latestPlan() -> AutoStopPlan? { lastPlan.withLock { $0 } }

    public func reconcile(now: Date) async throws -> ReconcileReport {
        let settings = context.settings
        let projects = context.projects
        var failures: [PartFailure] = []
        failures += await recoverOpenIntents(projects: projects, settings: settings, now: now)

        let readStarted = ContinuousClock.now
        let reads = await boundedForEach(projects, limit: settings.projectConcurrency) { project in
            do {
                let listed = try await self.context.inventory.servers(of: project, fresh: true, now: now, settings: settings)
                return Result<ProjectServers, PartFailure>.success(
                    ProjectServers(project: project.name, servers: listed.filter { $0.tagValue(settings.tags.schedule) != nil }))
            } catch {
                return .failure(PartFailure(part: project.name, message: "cannot read servers: \(error)"))
            }
        }
        var observed: [ProjectServers] = []
        for read in reads {
            switch read {
            case .success(let servers): observed.append(servers)
            case .failure(let failure): failures.append(failure)
            }
        }
        if !projects.isEmpty && observed.isEmpty {
            throw WardenError.allPartsFailed(loop: name, failures: failures)
        }
        let readSeconds = (ContinuousClock.now - readStarted).inSeconds
        lastReadSeconds.withLock { $0 = readSeconds }
        let plan = try await makePlan(
            observed: observed, settings: settings, now: now, calls: try await journaledCalls(since: now.addingTimeInterval(-settings.autoStop.boundaryGrace)))
        lastPlan.withLock { $0 = plan }
        await report(plan, settings: settings)

        if paused.withLock({ $0 }) && !plan.batches.isEmpty {
            // Paused during this pass: no call, and no boundary marked (a resume acts within the grace).
            return ReconcileReport(summary: "paused during the pass: \(plan.actionCount) planned actions not taken", failures: failures)
        }
        let result = await act(plan.batches, projects: projects, settings: settings, now: now)
        var acted = result.acted
        failures += result.failures
        let failedBoundaries = result.failedBoundaries
        for mark in plan.handled where !failedBoundaries.contains(ScheduleMarkKey(schedule: mark.schedule, project: mark.project)) {
            try await context.store.setLastHandledBoundary(schedule: mark.schedule, project: mark.project, boundary: mark.boundary)
            if mark.missed {
                await context.event(
                    name, project: mark.project, subject: mark.schedule, action: "boundary-missed", severity: "warning",
                    message: "\(mark.project): the \(mark.schedule) boundary at \(ISO8601DateFormatter().string(from: mark.boundary)) passed more than the grace period ago; not acted on late")
            }
        }
        let verb = settings.dryRun ? "would act on" : "acted on"
        var summary =
            "\(observed.reduce(0) { $0 + $1.servers.count }) servers read, \(verb) \(acted), \(plan.skips.count) left alone, \(plan.deferred) deferred, \(plan.waiting) waiting for a task to end"
        var wakeAt = [plan.nextBoundary.map { $0.addingTimeInterval(-readAhead()) }, plan.recheckAt].compactMap { $0 }.min()

        // Read ahead: the boundary is seconds away, so plan it from this reading and act the moment
        // it comes, re-reading only the servers concerned. A pass right after the boundary reads
        // everything again, acts on servers that changed meanwhile (never twice on one: the journal
        // holds the servers of calls made since the boundary) and marks the boundary handled.
        if let boundary = plan.nextBoundary, boundary > now, boundary.timeIntervalSince(now) <= readAhead() + 1 {
            let ahead = try await makePlan(
                observed: observed, settings: settings, now: boundary,
                calls: try await journaledCalls(since: boundary.addingTimeInterval(-settings.autoStop.boundaryGrace)))
            if ahead.batches.isEmpty {
                // Nothing to do as things stand: the pass at the boundary itself looks again.
                wakeAt = boundary
            } else {
                try await context.clock.sleep(until: boundary)
                guard !paused.withLock({ $0 }) else {
                    return ReconcileReport(
                        summary: summary + "; paused while waiting for the next boundary: not acted on", actions: acted, failures: failures,
                        wakeAt: wakeAt, moreWork: plan.deferred > 0)
                }
                let at = max(context.clock.now(), boundary)
                let aheadResult = await act(ahead.batches, projects: projects, settings: settings, now: at)
                acted += aheadResult.acted
                failures += aheadResult.failures
                summary += "; at the \(ISO8601DateFormatter().string(from: boundary)) boundary \(verb) \(aheadResult.acted) read ahead"
                wakeAt = at
            }
        }
        return ReconcileReport(summary: summary, actions: acted, failures: failures, wakeAt: wakeAt, moreWork: plan.deferred > 0)
    }

    /// How long before a boundary the loop reads the servers: twice the last reading's duration,
    /// between 10 s and 30 s (the pass waits for the boundary, well within the loop's deadline of
    /// at least 60 s), so the plan is ready when the boundary comes.
    func readAhead() -> TimeInterval {
        min(max(2 * lastReadSeconds.withLock { $0 }, 10), 30)
    }

    /// Acts on a plan's batches: projects concurrently (bounded), each re-reading the servers
    /// concerned just before acting.
    private func act(_ batches: [AutoStopPlan.Batch], projects: [WardenProject], settings: WardenSettings, now: Date) async -> ActResult {
        let byProject = Dictionary(grouping: batches, by: \.project)
        let results = await boundedForEach(byProject.keys.sorted(), limit: settings.projectConcurrency) { projectName in
            guard let project = projects.first(where: { $0.name == projectName }) else { return ActResult() }
            return await self.act(on: project, batches: byProject[projectName] ?? [], settings: settings, now: now)
        }
        var total = ActResult()
        for result in results {
            total.acted += result.acted
            total.failures += result.failures
            total.failedBoundaries.formUnion(result.failedBoundaries)
        }
        return total
    }

    /// The loop's stop/start calls written since `since`, with what the journal knows of each.
    func journaledCalls(since: Date) async throws -> [JournaledCall] {
        try await context.store.intentsWithResults(loop: name, since: since).compactMap { intent, results in
            guard let project = intent.project, let schedule = intent.subject, let action = intent.action.flatMap(ScheduleAction.init(rawValue:)) else {
                return nil
            }
            let dryRun = intent.kind == .dryRun
            return JournaledCall(
                project: project, schedule: schedule, action: action, at: intent.at, servers: Set(intent.servers),
                state: dryRun ? .accepted : JournaledCall.state(outcomeResults: results), dryRun: dryRun)
        }
    }

    struct ActResult: Sendable {
        var acted = 0
        var failures: [PartFailure] = []
        var failedBoundaries = Set<ScheduleMarkKey>()
    }

    /// One project's batches: re-read its servers, keep those still in the planned state, act.
    private func act(on project: WardenProject, batches: [AutoStopPlan.Batch], settings: WardenSettings, now: Date) async -> ActResult {
        var result = ActResult()
        let fresh: [String: Server]
        do {
            // Re-read just before acting: a server started or re-tagged since the plan is left alone.
            fresh = try await reread(Set(batches.flatMap(\.serverIds)), of: project)
        } catch {
            result.failures.append(PartFailure(part: project.name, message: "cannot re-read servers before acting: \(error)"))
            for batch in batches { result.failedBoundaries.insert(ScheduleMarkKey(schedule: batch.schedule, project: project.name)) }
            return result
        }
        for batch in batches {
            let ids = batch.serverIds.filter { id in
                guard let server = fresh[id] else { return false }
                return Self.notAsPlanned(server, schedule: batch.schedule, action: batch.action, tags: settings.tags, now: now) == nil
            }
            guard !ids.isEmpty else { continue }
            do {
                result.acted += try await act(batch, serverIds: ids, project: project, now: now)
            } catch {
                result.failures.append(PartFailure(part: project.name, message: "\(batch.action.rawValue) \(ids.count) servers of \(batch.schedule): \(error)"))
                result.failedBoundaries.insert(ScheduleMarkKey(schedule: batch.schedule, project: project.name))
            }
        }
        return result
    }

    /// The servers `ids` as they are now: one by one when they are few (a boundary is not kept
    /// waiting for the whole project's listing), else the project's listing. A server not found is
    /// absent from the answer.
    func reread(_ ids: Set<String>, of project: WardenProject) async throws -> [String: Server] {
        guard ids.count <= Self.oneByOneRereadLimit else {
            return Dictionary(try await project.client.serverDetails().collect().map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        }
        let answers = await boundedForEach(ids.sorted(), limit: 8) { id -> Result<Server?, any Error> in
            do {
                return .success(try await project.client.server(id: id))
            } catch let error as ECSError where error.isNotFound {
                return .success(nil)
            } catch {
                return .failure(error)
            }
        }
        var servers: [String: Server] = [:]
        for answer in answers {
            if let server = try answer.get() { servers[server.id] = server }
        }
        return servers
    }

    /// Up to this many servers are re-read one by one before acting; more, by listing the project.
    static let oneByOneRereadLimit = 50

    /// The plan for the servers observed now, with the stored marks and snoozes.
    func makePlan(observed: [ProjectServers], settings: WardenSettings, now: Date, calls: [JournaledCall] = []) async throws -> AutoStopPlan {
        let store = context.store
        var marks: [ScheduleMarkKey: Date] = [:]
        for project in observed {
            for schedule in settings.schedules.keys {
                if let mark = try await store.lastHandledBoundary(schedule: schedule, project: project.project) {
                    marks[ScheduleMarkKey(schedule: schedule, project: project.project)] = mark
                }
            }
        }
        var snoozes: [String: Set<String>] = [:]
        for snooze in try await store.activeSnoozes(at: now) { snoozes[snooze.project, default: []].insert(snooze.serverId) }
        return AutoStopPlanner.plan(
            projects: observed, schedules: settings.schedules, tags: settings.tags, limits: settings.autoStop, handledBoundaries: marks,
            snoozes: snoozes, dryRun: settings.dryRun, now: now, calls: calls)
    }

    /// Sends (or, in dry-run, journals) one batch. Returns the servers acted on.
    private func act(_ batch: AutoStopPlan.Batch, serverIds: [String], project: WardenProject, now: Date) async throws -> Int {
        let store = context.store
        let boundaryText = batch.boundary.map { " at the \(ISO8601DateFormatter().string(from: $0)) boundary" } ?? " (enforce)"
        if batch.dryRun {
            try await store.append(
                JournalEntry(
                    at: now, kind: .dryRun, loop: name, project: project.name, subject: batch.schedule, action: batch.action.rawValue, servers: serverIds,
                    message: "dry-run: would \(batch.action.rawValue) \(serverIds.count) servers of \(batch.schedule)\(boundaryText)"))
            context.metrics.recordScheduleActions(schedule: batch.schedule, action: batch.action.rawValue, result: "dry_run", count: serverIds.count)
            return serverIds.count
        }
        context.logger.notice(
            "\(batch.action.rawValue == "stop" ? "stopping" : "starting") \(serverIds.count) servers of schedule \(batch.schedule)\(boundaryText)",
            metadata: ["loop": "\(name)", "project": "\(project.name)"])
        let token = ECSClient.makeClientToken()
        let intent = try await store.append(
            JournalEntry(
                at: now, kind: .intent, loop: name, project: project.name, subject: batch.schedule, action: batch.action.rawValue, clientToken: token,
                servers: serverIds, result: "pending", message: "\(batch.action.rawValue) \(serverIds.count) servers of \(batch.schedule)\(boundaryText)"))
        try await send(action: batch.action, serverIds: serverIds, project: project, token: token, intent: intent, schedule: batch.schedule)
        return serverIds.count
    }

    /// The call itself and its outcome. An ambiguous failure (no answer) leaves the intent open, so
    /// recovery decides later; a clear refusal closes it.
    private func send(action: ScheduleAction, serverIds: [String], project: WardenProject, token: String, intent: Int64, schedule: String) async throws {
        let store = context.store
        let batchAction: BatchServerAction = action == .stop ? .stop(.soft) : .start
        do {
            let accepted = try await project.client.batchAction(batchAction, serverIds: serverIds, clientToken: token)
            let now = context.clock.now()
            try await store.append(
                JournalEntry(
                    at: now, kind: .outcome, loop: name, project: project.name, subject: schedule, action: action.rawValue, clientToken: token,
                    jobId: accepted.jobId, servers: serverIds, result: "accepted", message: "job \(accepted.jobId) accepted", intentSeq: intent))
            try await store.watch(
                WatchedJob(project: project.name, jobId: accepted.jobId, jobType: nil, source: "warden", registeredAt: now, intentSeq: intent))
        } catch let error as ECSError where !error.mayHaveBeenCarriedOut {
            try await store.append(
                JournalEntry(
                    at: context.clock.now(), kind: .outcome, loop: name, project: project.name, subject: schedule, action: action.rawValue,
                    clientToken: token, servers: serverIds, result: "error", message: "refused: \(error)", intentSeq: intent))
            context.metrics.recordScheduleActions(schedule: schedule, action: action.rawValue, result: "failed", count: serverIds.count)
            throw error
        }
    }

    /// Resolves intents without an outcome: the daemon died between the two writes, or the call got
    /// no answer (a timeout, a dropped connection) and may still be carried out late.
    ///
    /// The decision rests on what the servers are now, never on their `updated` times (the cloud's
    /// clock is not ours, and any edit moves them): while every server is still as the plan wanted it
    /// (tagged with the schedule, not opted out, in the state the action starts from), the same
    /// request is sent again with the same `X-Client-Token` — whether the first one never left or is
    /// still on its way, the cloud carries it out once. Otherwise the call may have been carried out:
    /// the intent is closed as `unknown` and its servers are not acted on again for that boundary
    /// (see `JournaledCall`).
    func recoverOpenIntents(projects: [WardenProject], settings: WardenSettings, now: Date) async -> [PartFailure] {
        let store = context.store
        guard let open = try? await store.openIntents(loop: name), !open.isEmpty else { return [] }
        var failures: [PartFailure] = []
        for intent in open {
            guard let project = projects.first(where: { $0.name == intent.project }), let action = intent.action.flatMap(ScheduleAction.init(rawValue:)),
                let token = intent.clientToken, let schedule = intent.subject
            else {
                _ = try? await closeRecovered(intent, result: "abandoned", message: "recovery: project or action no longer known; nothing sent")
                continue
            }
            if now.timeIntervalSince(intent.at) > settings.autoStop.boundaryGrace {
                _ = try? await closeRecovered(intent, result: "expired", message: "recovery: intent older than the grace period; not re-sent")
                continue
            }
            do {
                let servers = try await reread(Set(intent.servers), of: project)
                let changed = intent.servers.compactMap { id -> String? in
                    guard let server = servers[id] else { return "\(id): gone" }
                    return Self.notAsPlanned(server, schedule: schedule, action: action, tags: settings.tags, now: now).map { "\(id): \($0)" }
                }
                if changed.isEmpty {
                    await context.event(
                        name, project: project.name, subject: schedule, action: "recovery-resend", severity: "warning", servers: intent.servers,
                        message: "recovery: intent \(intent.seq) has no answer and its \(intent.servers.count) servers are still as planned; re-sending with the same client token")
                    try await send(action: action, serverIds: intent.servers, project: project, token: token, intent: intent.seq, schedule: schedule)
                } else {
                    let shown = changed.prefix(5).joined(separator: ", ") + (changed.count > 5 ? ", …" : "")
                    try await closeRecovered(
                        intent, result: "unknown",
                        message: "recovery: intent \(intent.seq) has no answer and \(changed.count) of its \(intent.servers.count) servers are no longer as planned (\(shown)); "
                            + "the call may have been carried out, so it is not re-sent and its servers are not acted on again for this boundary")
                }
            } catch {
                failures.append(PartFailure(part: project.name, message: "recovering intent \(intent.seq): \(error)"))
            }
        }
        return failures
    }

    /// Why a server is no longer as a plan to `action` it under `schedule` wanted it, or nil.
    static func notAsPlanned(_ server: Server, schedule: String, action: ScheduleAction, tags: ScheduleTagKeys, now: Date) -> String? {
        guard server.tagValue(tags.schedule) == schedule else { return "\(tags.schedule) is now \(server.tagValue(tags.schedule) ?? "absent")" }
        if server.tagValue(tags.ignore) != nil { return "carries \(tags.ignore)" }
        if let snooze = server.tagValue(tags.snoozeUntil), AutoStopPlanner.parseSnooze(snooze).map({ $0 > now }) ?? true { return "snoozed" }
        if let blocker = AutoStopPlanner.blocker(server, for: action) { return "\(blocker) (\(server.status.rawValue)/\(server.taskState ?? "-"))" }
        return nil
    }

    private func closeRecovered(_ intent: JournalEntry, result: String, message: String) async throws {
        try await context.store.append(
            JournalEntry(
                at: context.clock.now(), kind: .outcome, loop: name, project: intent.project, subject: intent.subject, action: intent.action,
                clientToken: intent.clientToken, servers: intent.servers, result: result, message: message, intentSeq: intent.seq))
        await context.event(name, project: intent.project, subject: intent.subject, action: "recovery-\(result)", severity: "warning", servers: intent.servers, message: message)
    }

    /// Metrics and events of a plan: servers per schedule and state, tag errors.
    private func report(_ plan: AutoStopPlan, settings: WardenSettings) async {
        var series: [([(String, String)], Double)] = []
        for (schedule, states) in plan.counts {
            for (state, count) in states { series.append(([("schedule", schedule), ("state", state)], Double(count))) }
        }
        context.metrics.scheduleServers.replace(with: series)
        var tagErrors: [String: Double] = [:]
        for skip in plan.skips where skip.reason == "unknown_schedule" || skip.reason == "malformed_snooze" {
            tagErrors["\(skip.project)\u{1F}\(skip.reason)", default: 0] += 1
            let key = "\(skip.project)/\(skip.serverId)/\(skip.reason)/\(skip.detail)"
            if reportedSkips.withLock({ $0.insert(key).inserted }) {
                await context.event(
                    name, project: skip.project, subject: skip.schedule, action: skip.reason, severity: "warning", servers: [skip.serverId],
                    message: "\(skip.project): server \(skip.serverId) left alone: \(skip.detail)")
            }
        }
        context.metrics.scheduleTagErrors.replace(
            with: tagErrors.map { key, count in
                let parts = key.split(separator: "\u{1F}").map(String.init)
                return ([("project", parts[0]), ("reason", parts.count > 1 ? parts[1] : "")], count)
            })
    }

    /// What the real planner would do over the next `hours`, from the servers as they are now.
    public func preview(now: Date, hours: Double) async throws -> [AutoStopPlanner.PreviewStep] {
        let settings = context.settings
        var observed: [ProjectServers] = []
        for project in context.projects {
            observed.append(ProjectServers(project: project.name, servers: try await project.client.serverDetails().collect()))
        }
        var marks: [ScheduleMarkKey: Date] = [:]
        for project in observed {
            for schedule in settings.schedules.keys {
                if let mark = try await context.store.lastHandledBoundary(schedule: schedule, project: project.project) {
                    marks[ScheduleMarkKey(schedule: schedule, project: project.project)] = mark
                }
            }
        }
        var snoozes: [String: Set<String>] = [:]
        for snooze in try await context.store.activeSnoozes(at: now) { snoozes[snooze.project, default: []].insert(snooze.serverId) }
        return AutoStopPlanner.preview(
            projects: observed, schedules: settings.schedules, tags: settings.tags, limits: settings.autoStop, handledBoundaries: marks,
            snoozes: snoozes, dryRun: settings.dryRun, from: now, to: now.addingTimeInterval(hours * 3600))
    }
}

extension AutoStopPlanner {
    /// One instant of a preview and the batches the planner decides then.
    public struct PreviewStep: Sendable, Equatable {
        public var at: Date
        public var batches: [AutoStopPlan.Batch]
        public var skips: [AutoStopPlan.Skip]
    }

    /// Runs the real planner now and at every boundary up to `to`, assuming each planned action
    /// succeeds (a stopped server is SHUTOFF at the next step). Pure.
    public static func preview(
        projects: [ProjectServers], schedules: [String: Schedule], tags: ScheduleTagKeys, limits: AutoStopLimits,
        handledBoundaries: [ScheduleMarkKey: Date], snoozes: [String: Set<String>], dryRun: Bool, from: Date, to: Date
    ) -> [PreviewStep] {
        var instants = [from]
        for schedule in schedules.values {
            instants += ScheduleEvaluator(schedule: schedule).boundaries(after: from, through: to).map(\.date)
        }
        var marks = handledBoundaries
        var current = projects
        var steps: [PreviewStep] = []
        for instant in Set(instants).sorted() {
            let plan = plan(
                projects: current, schedules: schedules, tags: tags, limits: limits, handledBoundaries: marks, snoozes: snoozes, dryRun: dryRun,
                now: instant)
            for mark in plan.handled { marks[ScheduleMarkKey(schedule: mark.schedule, project: mark.project)] = mark.boundary }
            for batch in plan.batches {
                let ids = Set(batch.serverIds)
                for index in current.indices where current[index].project == batch.project {
                    for serverIndex in current[index].servers.indices where ids.contains(current[index].servers[serverIndex].id) {
                        current[index].servers[serverIndex].status = batch.action == .stop ? .shutoff : .active
                    }
                }
            }
            if !plan.batches.isEmpty || instant == from {
                steps.append(PreviewStep(at: instant, batches: plan.batches, skips: instant == from ? plan.skips : []))
            }
        }
        return steps
    }
}
