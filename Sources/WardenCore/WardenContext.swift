import ECSAPI
import Foundation
import Logging
import Synchronization

/// One configured project: where it is and the client that talks to it.
public struct WardenProject: Sendable {
    /// The label used in metrics and the API (the configured name, or the id).
    public var name: String
    public var projectId: String
    public var region: String
    public var client: ECSClient
    /// AZs to track flavors in; nil asks the API (`os-availability-zone`).
    public var availabilityZones: [String]?

    public init(name: String, projectId: String, region: String, client: ECSClient, availabilityZones: [String]? = nil) {
        self.name = name
        self.projectId = projectId
        self.region = region
        self.client = client
        self.availabilityZones = availabilityZones
    }
}

/// Everything the loops are told by the configuration, as plain typed values.
public struct WardenSettings: Sendable {
    /// Global dry-run: plans are journaled, no mutating call is made.
    public var dryRun: Bool
    public var tags: ScheduleTagKeys
    public var schedules: [String: Schedule]
    public var autoStop: AutoStopLimits
    public var quotaThresholds: QuotaThresholds
    /// Per-resource thresholds (`instances`, `cores`, `ram`, …).
    public var quotaOverrides: [String: QuotaThresholds]
    /// History used by the time-to-exhaustion forecast.
    public var forecastWindow: TimeInterval
    public var stuck: StuckRules
    /// Projects reconciled at once.
    public var projectConcurrency: Int
    /// At most this many stuck servers are exported one by one.
    public var maxStuckServersExported: Int

    public init(
        dryRun: Bool = false, tags: ScheduleTagKeys = ScheduleTagKeys(), schedules: [String: Schedule] = [:],
        autoStop: AutoStopLimits = AutoStopLimits(), quotaThresholds: QuotaThresholds = QuotaThresholds(),
        quotaOverrides: [String: QuotaThresholds] = [:], forecastWindow: TimeInterval = 7 * 86_400, stuck: StuckRules = StuckRules(),
        projectConcurrency: Int = 4, maxStuckServersExported: Int = 100
    ) {
        self.dryRun = dryRun
        self.tags = tags
        self.schedules = schedules
        self.autoStop = autoStop
        self.quotaThresholds = quotaThresholds
        self.quotaOverrides = quotaOverrides
        self.forecastWindow = forecastWindow
        self.stuck = stuck
        self.projectConcurrency = max(1, projectConcurrency)
        self.maxStuckServersExported = maxStuckServersExported
    }
}

/// What every reconciler shares: the settings and projects (swapped whole on reload), the state
/// store, the metrics, the clock and the logger.
public final class WardenContext: Sendable {
    public let store: any StateStore
    public let metrics: WardenMetrics
    public let clock: any WardenClock
    public let logger: Logger
    /// The servers listed by the schedule loop, shared with the stuck-task loop for a few seconds.
    public let inventory: ServerInventory
    /// Closed when shutdown begins: once closed, no new mutating call starts.
    public let mutationGate: MutationGate
    /// Flavor sizes as the flavor loop last read them.
    public let flavorCatalogue = FlavorCatalogue()
    /// Which shards (projects, regions) this process works on: all of them on a single node, the
    /// leased ones in cluster mode.
    public let ownership: any ShardOwnership
    private let current: Mutex<(settings: WardenSettings, projects: [WardenProject])>

    public init(
        settings: WardenSettings, projects: [WardenProject], store: any StateStore, metrics: WardenMetrics, clock: any WardenClock, logger: Logger,
        inventory: ServerInventory = ServerInventory(), mutationGate: MutationGate = MutationGate(), ownership: any ShardOwnership = SoleOwnership()
    ) {
        self.ownership = ownership
        self.store = store
        self.inventory = inventory
        self.mutationGate = mutationGate
        self.metrics = metrics
        self.clock = clock
        self.logger = logger
        self.current = Mutex((settings, projects))
    }

    /// The settings in force.
    public var settings: WardenSettings { current.withLock { $0.settings } }
    /// The projects in force.
    public var projects: [WardenProject] { current.withLock { $0.projects } }

    /// The projects whose shard this process owns now (every project on a single node).
    public var ownedProjects: [WardenProject] { projects.filter { ownership.owns(.project($0.projectId)) } }

    /// The regions whose shard this process owns now (the flavor loop's work).
    public var ownedRegions: [String] { Array(Set(projects.map(\.region))).filter { ownership.owns(.region($0)) }.sorted() }

    /// Every shard of the configuration: one per project, one per region.
    public var shards: [ShardID] {
        let configured = projects
        return (configured.map { ShardID.project($0.projectId) } + Set(configured.map(\.region)).map { ShardID.region($0) }).sorted()
    }

    /// Replaces settings and projects (configuration reload); passes in progress finish with the old.
    public func update(settings: WardenSettings, projects: [WardenProject]) {
        current.withLock { $0 = (settings, projects) }
        inventory.clear()
    }

    /// Looks a project up by name or id.
    public func project(named name: String) -> WardenProject? {
        projects.first { $0.name == name || $0.projectId == name }
    }

    /// Journals an event (failures to write are logged, never thrown into a pass).
    func event(
        _ loop: String, project: String? = nil, subject: String? = nil, action: String, severity: String, servers: [String] = [], message: String
    ) async {
        do {
            try await store.append(
                JournalEntry(
                    at: clock.now(), kind: .event, loop: loop, project: project, subject: subject, action: action, severity: severity,
                    servers: servers, message: message))
        } catch {
            logger.error("cannot journal an event", metadata: ["loop": "\(loop)", "error": "\(error)"])
        }
        let level: Logger.Level = severity == "critical" ? .error : severity == "warning" ? .warning : .info
        logger.log(level: level, "\(message)", metadata: ["loop": "\(loop)", "action": "\(action)", "project": "\(project ?? "-")"])
    }
}
