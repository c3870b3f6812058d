import ECSAPI
import Foundation
import Synchronization

/// Flavor sold-out tracking: the sale state of every flavor in every AZ, resolved from
/// `cond:operation:az` over `cond:operation:status`, with transitions stored and timestamped.
/// Answers "which flavors can be launched in AZ x now" and "since when is flavor f sold out in AZ x".
/// One flavor read per region, whatever the number of projects there.
public final class FlavorSaleTracker: Reconciler {
    public let name = LoopName.flavors.rawValue
    let context: WardenContext
    private let reportedProblems = Mutex<Set<String>>([])

    /// One flavor's state in one AZ.
    public struct FlavorState: Sendable, Equatable, Codable {
        public var region: String
        public var az: String
        public var flavor: String
        public var state: String
        public var since: Date
        public var soldOut: Bool { SaleStateResolver.isSoldOut(state) }
        public var launchable: Bool { SaleStateResolver.isLaunchable(state) }
    }

    public init(context: WardenContext) {
        self.context = context
    }

    /// The flavor catalogue and AZs of each region as last read (the launch preflight's sizes).
    private let catalogues = Mutex<[String: (flavors: [Flavor], zones: [String])]>([:])

    /// The last catalogue and AZs read in `region` (empty before the first pass).
    public func catalogue(region: String) -> (flavors: [Flavor], zones: [String]) {
        catalogues.withLock { $0[region] } ?? ([], [])
    }

    public func reconcile(now: Date) async throws -> ReconcileReport {
        let owned = Set(context.ownedRegions)
        // Cluster mode: a region another node owns is exported by that node only.
        for region in Set(context.projects.map(\.region)).subtracting(owned) { context.metrics.flavorSoldOut.replace(scope: [("region", region)], with: []) }
        let byRegion = Dictionary(grouping: context.projects.filter { owned.contains($0.region) }, by: \.region)
        let results = await boundedForEach(byRegion.keys.sorted(), limit: context.settings.projectConcurrency) { region in
            await self.reconcile(region: region, projects: byRegion[region] ?? [], now: now)
        }
        var failures: [PartFailure] = []
        var changes = 0
        for result in results {
            switch result {
            case .success(let count): changes += count
            case .failure(let failure): failures.append(failure)
            }
        }
        if !byRegion.isEmpty && failures.count == byRegion.count {
            throw WardenError.allPartsFailed(loop: name, failures: failures)
        }
        return ReconcileReport(summary: "\(byRegion.count - failures.count)/\(byRegion.count) regions read, \(changes) sale-state changes", failures: failures)
    }

    /// Reads one region through the first project that answers.
    private func reconcile(region: String, projects: [WardenProject], now: Date) async -> Result<Int, PartFailure> {
        var lastError = "no project in region"
        for project in projects {
            do {
                let zones: [String]
                if let configured = project.availabilityZones {
                    zones = configured
                } else {
                    zones = try await project.client.availabilityZones()
                }
                let flavors = try await project.client.flavors()
                catalogues.withLock { $0[region] = (flavors, zones) }
                context.flavorCatalogue.record(flavors)
                return .success(try await record(region: region, zones: zones, flavors: flavors, now: now))
            } catch {
                lastError = "\(project.name): \(error)"
            }
        }
        return .failure(PartFailure(part: region, message: lastError))
    }

    private func record(region: String, zones: [String], flavors: [Flavor], now: Date) async throws -> Int {
        var states: [SaleKey: String] = [:]
        for flavor in flavors {
            let resolution = SaleStateResolver.resolve(extraSpecs: flavor.extraSpecs, availabilityZones: zones)
            for (az, state) in resolution.states { states[SaleKey(az: az, flavor: flavor.id)] = state }
            for problem in resolution.problems {
                let key = "\(region)/\(flavor.id)/\(problem)"
                if reportedProblems.withLock({ $0.insert(key).inserted }) {
                    await context.event(name, subject: flavor.id, action: "malformed-sale-state", severity: "warning", message: "\(region) flavor \(flavor.id): \(problem)")
                }
            }
        }
        let transitions = try await context.store.recordSaleStates(region: region, states: states, at: now)
        var changes = 0
        for transition in transitions {
            guard let from = transition.from else { continue }
            changes += 1
            context.metrics.recordFlavorChange(region: region, az: transition.az, flavor: transition.flavor)
            if transition.to == SaleStateResolver.absent {
                await context.event(
                    name, subject: transition.flavor, action: "flavor-gone", severity: "warning",
                    message: "\(region) \(transition.az): flavor \(transition.flavor) (\(from)) is no longer listed there: taken offline, or the AZ is gone")
                continue
            }
            let severity = SaleStateResolver.isSoldOut(transition.to) ? "warning" : "info"
            await context.event(
                name, subject: transition.flavor, action: SaleStateResolver.isSoldOut(transition.to) ? "sold-out" : "sale-state-changed",
                severity: severity, message: "\(region) \(transition.az): flavor \(transition.flavor) \(from) → \(transition.to)")
        }
        context.metrics.flavorSoldOut.replace(
            scope: [("region", region)],
            with: states.map { key, state in
                ([("region", region), ("az", key.az), ("flavor", key.flavor)], SaleStateResolver.isSoldOut(state) ? 1 : 0)
            })
        return changes
    }

    /// Every flavor state known, optionally for one region / AZ.
    public func states(region: String? = nil, az: String? = nil) async throws -> [FlavorState] {
        let regions = region.map { [$0] } ?? Array(Set(context.projects.map(\.region))).sorted()
        var result: [FlavorState] = []
        for region in regions {
            for (key, value) in try await context.store.saleStates(region: region) where az == nil || key.az == az {
                result.append(FlavorState(region: region, az: key.az, flavor: key.flavor, state: value.state, since: value.since))
            }
        }
        return result.sorted { ($0.region, $0.az, $0.flavor) < ($1.region, $1.az, $1.flavor) }
    }

    /// The flavors that can be launched in `az` now.
    public func launchable(region: String, az: String) async throws -> [FlavorState] {
        try await states(region: region, az: az).filter(\.launchable)
    }

    /// Since when `flavor` has been in its current state in `az` (answers "since when is it sold out").
    public func state(region: String, az: String, flavor: String) async throws -> FlavorState? {
        try await states(region: region, az: az).first { $0.flavor == flavor }
    }
}
