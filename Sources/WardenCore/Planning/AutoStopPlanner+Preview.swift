import ECSAPI
import Foundation

extension AutoStopPlanner {
    /// One instant of a preview and the batches the planner decides then.
    public struct PreviewStep: Sendable, Equatable {
        public var at: Date
        public var batches: [AutoStopPlan.Batch]
        public var skips: [AutoStopPlan.Skip]
    }

    /// Runs the real planner now and at every boundary up to `to` (and whenever a retry or the
    /// per-minute budget frees servers), assuming each planned action succeeds (a stopped server is
    /// SHUTOFF at the next step) and holds its servers as a journaled call would. Pure.
    public static func preview(
        projects: [ProjectServers], schedules: [String: Schedule], tags: ScheduleTagKeys, limits: AutoStopLimits,
        handledBoundaries: [ScheduleMarkKey: Date], snoozes: [String: Set<String>], dryRun: Bool, calls: [JournaledCall] = [], from: Date, to: Date
    ) -> [PreviewStep] {
        var instants = Set([from])
        for schedule in schedules.values {
            instants.formUnion(ScheduleEvaluator(schedule: schedule).boundaries(after: from, through: to).map(\.date))
        }
        var marks = handledBoundaries
        // Planned again at every step and changed by each batch: built once.
        var current = projects.map { $0.materialized() }
        var calls = calls
        var nextSeq = (calls.map(\.seq).max() ?? 0) + 1
        var steps: [PreviewStep] = []
        var done = Set<Date>()
        // Bounded: every step either reaches a boundary or a recheck the plan asked for.
        while let instant = instants.subtracting(done).min(), instant <= to, done.count < 10_000 {
            done.insert(instant)
            let plan = plan(
                projects: current, schedules: schedules, tags: tags, limits: limits, handledBoundaries: marks, snoozes: snoozes, dryRun: dryRun,
                now: instant, calls: calls)
            for mark in plan.handled { marks[ScheduleMarkKey(schedule: mark.schedule, project: mark.project)] = mark.boundary }
            for batch in plan.batches {
                let ids = Set(batch.serverIds)
                for index in current.indices where current[index].project == batch.project {
                    var servers = current[index].servers
                    for serverIndex in servers.indices where ids.contains(servers[serverIndex].id) {
                        servers[serverIndex].status = batch.action == .stop ? .shutoff : .active
                    }
                    current[index].servers = servers
                }
                calls.append(
                    JournaledCall(
                        project: batch.project, schedule: batch.schedule, action: batch.action, at: instant, servers: ids, state: .accepted,
                        dryRun: batch.dryRun, seq: nextSeq, boundary: batch.boundary))
                nextSeq += 1
            }
            if let recheck = plan.recheckAt, recheck > instant, plan.waitingForBudget > 0 || plan.skips.contains(where: { $0.reason == "retry_wait" }) {
                instants.insert(recheck)
            }
            if !plan.batches.isEmpty || instant == from {
                steps.append(PreviewStep(at: instant, batches: plan.batches, skips: instant == from ? plan.skips : []))
            }
        }
        return steps
    }
}
