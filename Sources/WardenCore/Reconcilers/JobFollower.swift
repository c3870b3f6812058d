import Foundation

/// Follows the jobs of the daemon's calls (and registered ones) to their end, through the
/// `ActionExecutor`: per-server outcomes, the intent's outcome, the action metrics. A loop of its
/// own, so pausing the scheduler or the stuck-task loop never leaves a job unfollowed; with no
/// open job a pass reads nothing from the cloud.
public final class JobFollower: Reconciler {
    public let name = LoopName.jobs.rawValue
    let context: WardenContext
    let executor: ActionExecutor

    public init(context: WardenContext) {
        self.context = context
        self.executor = ActionExecutor(context: context)
    }

    public func reconcile(now: Date) async throws -> ReconcileReport {
        let report = await executor.followJobs(projects: context.ownedProjects, now: now)
        if report.followed > 0 && report.failures.count == report.followed {
            throw WardenError.allPartsFailed(loop: name, failures: report.failures)
        }
        if report.followed == 0, let failure = report.failures.first {
            throw WardenError.allPartsFailed(loop: name, failures: [failure])
        }
        return ReconcileReport(summary: "\(report.followed) jobs followed, \(report.closed) ended", failures: report.failures)
    }
}
