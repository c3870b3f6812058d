import ECSAPI
import Foundation
import Synchronization

/// Quota watch: per project, every resource of `cloudservers/limits` (used, limit, headroom,
/// ratio; `-1` unlimited), warn/critical levels with one event per crossing and one when it clears,
/// and a linear time-to-exhaustion forecast from the stored history.
public final class QuotaWatch: Reconciler {
    public let name = LoopName.quota.rawValue
    let context: WardenContext
    private let latest = Mutex<[String: ProjectQuota]>([:])

    /// One resource's state, as the control API reports it.
    public struct ResourceQuota: Sendable, Equatable, Codable {
        public var resource: String
        public var used: Int
        /// nil = unlimited.
        public var limit: Int?
        public var headroom: Int?
        public var ratio: Double?
        public var level: QuotaLevel
        public var exhaustionETASeconds: Double?
    }

    /// One project's quotas at the last successful read.
    public struct ProjectQuota: Sendable, Equatable, Codable {
        public var project: String
        public var region: String
        public var observedAt: Date
        public var resources: [ResourceQuota]
    }

    public init(context: WardenContext) {
        self.context = context
    }

    /// The last observed quotas of every project.
    public func snapshot() -> [ProjectQuota] {
        latest.withLock { Array($0.values) }.sorted { $0.project < $1.project }
    }

    public func reconcile(now: Date) async throws -> ReconcileReport {
        let projects = context.ownedProjects
        let settings = context.settings
        let results = await boundedForEach(projects, limit: settings.projectConcurrency) { project in
            do {
                let quota = try await self.context.ownership.whileOwned(.project(project.projectId)) {
                    try await self.reconcile(project, settings: settings, now: now)
                }
                return Result<ProjectQuota, PartFailure>.success(quota)
            } catch {
                return .failure(PartFailure(part: project.name, message: "\(error)"))
            }
        }
        forgetProjectsNotOwned(owned: Set(projects.map(\.name)))
        var failures: [PartFailure] = []
        var crossings = 0
        for result in results {
            switch result {
            case .success(let quota):
                latest.withLock { $0[quota.project] = quota }
                crossings += quota.resources.filter { $0.level != .ok }.count
            case .failure(let failure):
                failures.append(failure)
            }
        }
        if failures.count == projects.count && !projects.isEmpty {
            throw WardenError.allPartsFailed(loop: name, failures: failures)
        }
        return ReconcileReport(
            summary: "\(projects.count - failures.count)/\(projects.count) projects read, \(crossings) resources above warning",
            failures: failures)
    }

    /// Cluster mode: a project another node owns now is exported (and shown) by that node only, so
    /// sums across replicas never count it twice; its series and snapshot are dropped here.
    private func forgetProjectsNotOwned(owned: Set<String>) {
        let metrics = context.metrics
        for project in context.projects where !owned.contains(project.name) {
            let scope = [("project", project.name), ("region", project.region)]
            for family in [metrics.quotaLimit, metrics.quotaUsed, metrics.quotaRatio, metrics.quotaETA] { family.replace(scope: scope, with: []) }
        }
        latest.withLock { latest in latest = latest.filter { owned.contains($0.key) } }
    }

    private func reconcile(_ project: WardenProject, settings: WardenSettings, now: Date) async throws -> ProjectQuota {
        let limits = try await project.client.limits()
        let usages = limits.usages
        let store = context.store
        try await store.appendQuotaSamples(project: project.name, samples: usages.map { QuotaSample(resource: $0.resource, used: $0.used, limit: $0.limit) }, at: now)
        let previousLevels = try await store.quotaLevels(project: project.name)
        let histories = try await store.quotaHistory(
            project: project.name, resources: usages.map(\.resource), since: now.addingTimeInterval(-settings.forecastWindow))
        var resources: [ResourceQuota] = []
        for usage in usages {
            let thresholds = settings.quotaOverrides[usage.resource] ?? settings.quotaThresholds
            let level = thresholds.level(for: usage.ratio)
            let previous = previousLevels[usage.resource].flatMap(QuotaLevel.init(rawValue:)) ?? .ok
            if level != previous {
                try await store.setQuotaLevel(project: project.name, resource: usage.resource, level: level.rawValue)
                let percent = usage.ratio.map { String(format: "%.1f%%", $0 * 100) } ?? "unlimited"
                if level > previous {
                    await context.event(
                        name, project: project.name, subject: usage.resource, action: "threshold-crossed", severity: level == .critical ? "critical" : "warning",
                        message: "\(project.name): \(usage.resource) at \(percent) (\(usage.used) of \(usage.limit.map(String.init) ?? "∞")) crossed \(level.rawValue)")
                } else {
                    await context.event(
                        name, project: project.name, subject: usage.resource, action: "threshold-cleared", severity: "info",
                        message: "\(project.name): \(usage.resource) back to \(level.rawValue) at \(percent)")
                }
            }
            let history = histories[usage.resource] ?? []
            let eta = QuotaForecaster.secondsToExhaustion(samples: history.map { ($0.at, $0.used) }, limit: usage.limit)
            resources.append(
                ResourceQuota(
                    resource: usage.resource, used: usage.used, limit: usage.limit, headroom: usage.headroom, ratio: usage.ratio, level: level,
                    exhaustionETASeconds: eta))
        }
        let scope = [("project", project.name), ("region", project.region)]
        func series(_ value: (ResourceQuota) -> Double?) -> [([(String, String)], Double)] {
            resources.compactMap { resource in value(resource).map { (scope + [("resource", resource.resource)], $0) } }
        }
        let metrics = context.metrics
        metrics.quotaLimit.replace(scope: scope, with: series { $0.limit.map(Double.init) })
        metrics.quotaUsed.replace(scope: scope, with: series { Double($0.used) })
        metrics.quotaRatio.replace(scope: scope, with: series { $0.ratio })
        metrics.quotaETA.replace(scope: scope, with: series { $0.exhaustionETASeconds })
        return ProjectQuota(project: project.name, region: project.region, observedAt: now, resources: resources)
    }
}

/// Errors of the controller itself.
public enum WardenError: Error, CustomStringConvertible, Equatable {
    /// Every part (project or region) of a pass failed.
    case allPartsFailed(loop: String, failures: [PartFailure])

    public var description: String {
        switch self {
        case .allPartsFailed(let loop, let failures):
            return "\(loop): every part failed: " + failures.map { "\($0.part): \($0.message)" }.joined(separator: "; ")
        }
    }
}
