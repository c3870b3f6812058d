import ECSAPI
import Foundation
import Synchronization

/// Tag-based auto-stop/start.
///
/// Servers carrying the schedule tag are stopped and started at their schedule's boundaries (or
/// kept converged, with `enforce`). A pass: resolves intents a crash left open, reads every
/// project's servers, plans with `AutoStopPlanner` (pure), re-reads the servers just before acting,
/// and acts in batches of at most 1,000 through the `ActionExecutor` (intent journaled before the
/// call, job followed to its end, failed sub-jobs retried once their code's wait has passed). The
/// loop wakes at the next boundary of any schedule.
public final class AutoStopScheduler: Reconciler {
    public let name = LoopName.schedule.rawValue
    let context: WardenContext
    let executor: ActionExecutor
    private let lastPlan = Mutex<AutoStopPlan?>(nil)
    /// Servers due to start soon whose start is at risk (the last pass's check).
    let latestAtRisk = Mutex<[StartPreflight.AtRisk]>([])
    /// The last pass's reading of each project, for the plan endpoints (which then list nothing):
    /// the compact values the inventory keeps (the same storage while it shares them), not `Server`s.
    let lastObserved = Mutex<[String: [CompactServer]]>([:])
    /// How long the last reading of every project took (sets how early to read before a boundary).
    private let lastReadSeconds = Mutex<Double>(0)
    /// The loop was paused: a pass in progress (waiting for a boundary) acts on nothing more.
    private let paused = Mutex(false)

    public func loopPaused(_ paused: Bool) { self.paused.withLock { $0 = paused } }

    public init(context: WardenContext) {
        self.context = context
        self.executor = ActionExecutor(context: context)
    }

    /// The plan of the last pass.
    public func latestPlan() -> AutoStopPlan? { lastPlan.withLock { $0 } }

    public func reconcile(now: Date) async throws -> ReconcileReport {
        let settings = context.settings
        let projects = context.ownedProjects
        var failures: [PartFailure] = []
        failures += await recoverOpenIntents(projects: projects, settings: settings, now: now)

        let readStarted = ContinuousClock.now
        typealias Read = (servers: ProjectServers, reading: [CompactServer])
        let reads = await boundedForEach(projects, limit: settings.projectConcurrency) { project -> Result<Read, ReadFailure> in
            do {
                let reading = try await self.context.inventory.compactServers(of: project, fresh: true, now: now, settings: settings)
                // The reference: `tags` is absent when the microversion is not honoured. Such a
                // listing cannot tell scheduled servers from others: act on nothing in the project.
                let untagged = reading.filter { !$0.hasTagsField }
                if let example = untagged.first {
                    return Result<Read, ReadFailure>.failure(
                        ReadFailure(
                            part: PartFailure(
                                part: project.name,
                                message: "the server listing has no tags field for \(untagged.count) servers (e.g. \(example.serverId)): the API did not honour microversion 2.26; acting on nothing in this project"),
                            listingWithoutTags: true))
                }
                let tagged = ProjectServers(project: project.name, reading: reading, scheduleTag: settings.tags.schedule)
                return Result<Read, ReadFailure>.success((tagged, reading))
            } catch {
                return .failure(ReadFailure(part: PartFailure(part: project.name, message: "cannot read servers: \(error)"), listingWithoutTags: false))
            }
        }
        var observed: [ProjectServers] = []
        var readings: [String: [CompactServer]] = [:]
        var withoutTags: [PartFailure] = []
        for read in reads {
            switch read {
            case .success(let read):
                observed.append(read.servers)
                readings[read.servers.project] = read.reading
            case .failure(let failure):
                failures.append(failure.part)
                if failure.listingWithoutTags { withoutTags.append(failure.part) }
            }
        }
        await reportListingsWithoutTags(withoutTags, read: observed.map(\.project))
        if !projects.isEmpty && observed.isEmpty {
            throw WardenError.allPartsFailed(loop: name, failures: failures)
        }
        lastObserved.withLock { $0 = readings }
        let readSeconds = (ContinuousClock.now - readStarted).inSeconds
        lastReadSeconds.withLock { $0 = readSeconds }
        let plan = try await makePlan(
            observed: observed, settings: settings, now: now, calls: try await journaledCalls(since: now.addingTimeInterval(-settings.autoStop.boundaryGrace)))
        lastPlan.withLock { $0 = plan }
        await report(plan, observedProjects: observed.map(\.project))
        await checkStartsAhead(observed: observed, settings: settings, projects: projects, now: now)
        await trackSavings(observed: observed, settings: settings, now: now)

        if paused.withLock({ $0 }) && !plan.batches.isEmpty {
            // Paused during this pass: no call, and no boundary marked (a resume acts within the grace).
            return ReconcileReport(summary: "paused during the pass: \(plan.actionCount) planned actions not taken", failures: failures)
        }
        let result = await act(plan.batches, projects: projects, settings: settings, now: now)
        var acted = result.acted
        failures += result.failures
        let failedBoundaries = result.failedBoundaries
        // Cluster mode: each mark is written under its project's lease, or not at all (the new owner decides).
        var marks: [BoundaryMark] = []
        for mark in plan.handled where !failedBoundaries.contains(ScheduleMarkKey(schedule: mark.schedule, project: mark.project)) {
            guard let project = projects.first(where: { $0.name == mark.project }),
                let grant = context.ownership.grant(.project(project.projectId), needing: .zero)
            else { continue }
            marks.append(BoundaryMark(schedule: mark.schedule, project: mark.project, boundary: mark.boundary, fence: grant.fence))
        }
        let notWritten = try await context.store.setLastHandledBoundaries(marks)
        let written = Set(marks.map(\.key))
        for mark in plan.handled {
            let key = ScheduleMarkKey(schedule: mark.schedule, project: mark.project)
            if let error = notWritten[key] {
                failures.append(PartFailure(part: mark.project, message: "\(error)"))
                continue
            }
            if mark.missed && written.contains(key) {
                await context.event(
                    name, project: mark.project, subject: mark.schedule, action: "boundary-missed", severity: "warning",
                    message: "\(mark.project): the \(mark.schedule) boundary at \(ISO8601DateFormatter().string(from: mark.boundary)) passed more than the grace period ago; not acted on late")
            }
        }
        let verb = settings.dryRun ? "would act on" : "acted on"
        var summary =
            "\(observed.reduce(0) { $0 + $1.count }) servers read, \(verb) \(acted), \(plan.skips.count) left alone, \(plan.deferred) deferred, \(plan.waiting) waiting for a task to end"
        if plan.waitingForBudget > 0 { summary += ", \(plan.waitingForBudget) waiting for the per-minute budget" }
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
                guard !paused.withLock({ $0 }), !context.mutationGate.isClosed else {
                    return ReconcileReport(
                        summary: summary + "; paused or shutting down while waiting for the next boundary: not acted on", actions: acted, failures: failures,
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
        // Servers held by the per-pass cap go in the next pass; those held by the per-minute budget
        // wake the loop when it frees (`recheckAt`).
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
            // Cluster mode: a project whose lease is lost meanwhile stops here, at once.
            do {
                return try await self.context.ownership.whileOwned(.project(project.projectId)) {
                    await self.act(on: project, batches: byProject[projectName] ?? [], settings: settings, now: now)
                }
            } catch {
                var lost = ActResult()
                lost.failures = [PartFailure(part: project.name, message: "\(error)")]
                for batch in byProject[projectName] ?? [] { lost.failedBoundaries.insert(ScheduleMarkKey(schedule: batch.schedule, project: project.name)) }
                return lost
            }
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
        try await context.store.calls(loop: name, since: since).compactMap { call in
            let intent = call.intent
            guard let project = intent.project, let schedule = intent.subject, let action = intent.action.flatMap(ScheduleAction.init(rawValue:)) else {
                return nil
            }
            return JournaledCall(
                project: project, schedule: schedule, action: action, at: intent.at, servers: Set(intent.servers), state: call.state,
                dryRun: intent.kind == .dryRun, seq: intent.seq, boundary: intent.boundary,
                failures: call.serverOutcomes.filter { $0.value.result == .failed }, ended: !call.serverOutcomes.isEmpty)
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
            // A server that became busy since the plan is acted on once its task ends: the boundary
            // stays open for it.
            if batch.boundary != nil, batch.serverIds.contains(where: { fresh[$0]?.taskState != nil }) {
                result.failedBoundaries.insert(ScheduleMarkKey(schedule: batch.schedule, project: project.name))
            }
            guard !ids.isEmpty else { continue }
            do {
                let call = try await act(batch, serverIds: ids, project: project, now: now)
                switch call {
                case .dryRun, .accepted:
                    result.acted += ids.count
                case .noAnswer(let intent, let reason):
                    result.acted += ids.count
                    result.failures.append(PartFailure(part: project.name, message: "\(batch.action.rawValue) \(ids.count) servers of \(batch.schedule): no answer (intent \(intent) stays open): \(reason)"))
                    result.failedBoundaries.insert(ScheduleMarkKey(schedule: batch.schedule, project: project.name))
                case .refused(_, let reason):
                    result.failures.append(PartFailure(part: project.name, message: "\(batch.action.rawValue) \(ids.count) servers of \(batch.schedule): \(reason)"))
                    result.failedBoundaries.insert(ScheduleMarkKey(schedule: batch.schedule, project: project.name))
                case .notSent:
                    result.failedBoundaries.insert(ScheduleMarkKey(schedule: batch.schedule, project: project.name))
                }
            } catch {
                result.failures.append(PartFailure(part: project.name, message: "\(batch.action.rawValue) \(ids.count) servers of \(batch.schedule): cannot journal the intent, so nothing was sent: \(error)"))
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
            return Dictionary(try await project.client.serverListing().collect().map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
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
        let (marks, snoozes) = try await storedMarksAndSnoozes(of: observed, settings: settings, now: now)
        return AutoStopPlanner.plan(
            projects: observed, schedules: settings.schedules, tags: settings.tags, limits: settings.autoStop, handledBoundaries: marks,
            snoozes: snoozes, dryRun: settings.dryRun, now: now, calls: calls)
    }

    /// The boundaries already handled in the projects observed (of the configured schedules) and
    /// the snoozes in force, by project: two reads, whatever the number of projects.
    func storedMarksAndSnoozes(of observed: [ProjectServers], settings: WardenSettings, now: Date) async throws -> (
        marks: [ScheduleMarkKey: Date], snoozes: [String: Set<String>]
    ) {
        let marks = try await context.store.handledBoundaries(projects: observed.map(\.project)).filter { settings.schedules[$0.key.schedule] != nil }
        var snoozes: [String: Set<String>] = [:]
        for snooze in try await context.store.activeSnoozes(at: now) { snoozes[snooze.project, default: []].insert(snooze.serverId) }
        return (marks, snoozes)
    }

    /// Sends (or, in dry-run, journals) one batch through the executor.
    private func act(_ batch: AutoStopPlan.Batch, serverIds: [String], project: WardenProject, now: Date) async throws -> CallResult {
        let boundaryText = batch.boundary.map { " at the \(ISO8601DateFormatter().string(from: $0)) boundary" } ?? " (enforce)"
        let retryText = batch.retryOf.map { ", retrying servers whose sub-jobs failed in intent \($0)" } ?? ""
        if !batch.dryRun {
            context.logger.notice(
                "\(batch.action == .stop ? "stopping" : "starting") \(serverIds.count) servers of schedule \(batch.schedule)\(boundaryText)\(retryText)",
                metadata: ["loop": "\(name)", "project": "\(project.name)"])
        }
        return try await executor.perform(
            ActionIntent(
                loop: .schedule, action: ServerAction(batch.action), project: project.name, servers: serverIds, subject: batch.schedule,
                boundary: batch.boundary, retryOf: batch.retryOf,
                description: "\(batch.action.rawValue) \(serverIds.count) servers of \(batch.schedule)\(boundaryText)\(retryText)", at: now),
            client: project.client, dryRun: batch.dryRun)
    }
}
