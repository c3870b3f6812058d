import ECSAPI
import Foundation

extension AutoStopPlanner {
    /// Retries of servers a call of this boundary already named whose sub-job failed with a
    /// retryable code: due once the code's wait has passed, at most `failedSubJobRetries` times,
    /// and only for a server that, as read now, still needs the action (a person's action in
    /// between wins). Servers named by a call that may have been carried out are otherwise held.
    static func planRetries(
        _ servers: [Server], project: String, schedule: String, action: ScheduleAction, boundary: Date, calls: [JournaledCall], inFlight: Set<String>,
        limits: AutoStopLimits, now: Date, reportHeld: Bool = true, plan: inout AutoStopPlan
    ) -> [Wanted] {
        let allCalls = calls.filter { $0.action == action && $0.belongs(to: boundary) }
        let boundaryCalls = allCalls.filter { $0.state != .refused }.sorted { $0.seq < $1.seq }
        guard !boundaryCalls.isEmpty else { return [] }
        var due: [Int64: [String]] = [:]
        for server in servers {
            let naming = boundaryCalls.filter { $0.servers.contains(server.id) }
            guard let latest = naming.last, blocker(server, for: action) == nil, !inFlight.contains(server.id) else { continue }
            guard latest.state == .accepted, let failure = latest.failures[server.id], let retryAt = failure.retryAt else {
                if reportHeld {
                    plan.skip(project, server, schedule, "acted_on", "a \(action.rawValue) call that may have been carried out already named it", counted: true)
                }
                continue
            }
            let allowed = SubJobRetryRules.classify(failure.errorCode) == .capacity ? limits.capacityRetries : limits.failedSubJobRetries
            // Every call naming it counts as an attempt, a refused one too ("once" means once).
            let attempts = allCalls.filter { $0.servers.contains(server.id) }.count
            if attempts > allowed {
                plan.skip(
                    project, server, schedule, "retry_exhausted",
                    "its \(action.rawValue) failed with \(failure.errorCode ?? "-") after \(attempts) calls; not retried again", counted: true)
            } else if retryAt > now {
                plan.skip(project, server, schedule, "retry_wait", "its \(action.rawValue) failed with \(failure.errorCode ?? "-"); retried after \(ISO8601DateFormatter().string(from: retryAt))", counted: true)
                plan.recheckAt = min(plan.recheckAt ?? retryAt, retryAt)
            } else {
                due[latest.seq, default: []].append(server.id)
            }
        }
        return due.sorted { $0.key < $1.key }.map { seq, ids in
            Wanted(project: project, schedule: schedule, action: action, boundary: boundary, ids: ids, busy: 0, retryOf: seq)
        }
    }
}
