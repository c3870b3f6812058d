import AsyncHTTPClient
import ECSAPI
import ECSSigning
import Foundation
import Logging
import Prometheus
import Synchronization
import WardenCore
import WardenHTTP

/// The daemon's moving parts, built from a configuration: clients, store, metrics, the four loops
/// (plus state maintenance) and their supervisor. Reload swaps settings and projects in place.
public final class WardenRuntime: Sendable {
    public static let version = "0.1.0"

    public let context: WardenContext
    public let supervisor: Supervisor
    public let quota: QuotaWatch
    public let stuck: StuckTaskDetector
    public let flavors: FlavorSaleTracker
    public let scheduler: AutoStopScheduler
    public let jobs: JobFollower
    public let loops: [ReconcileLoop]
    /// Whether the journal can be written (readiness, `ecs_warden_store_writable`).
    public let storeHealth: StoreHealth
    /// Cluster mode: the lease coordinator's view (nil on a single node).
    public let cluster: (any ClusterStatusSource)?
    /// Cluster mode: where pauses and run-now requests go.
    public let clusterControl: (any ClusterControl)?
    let logger: Logger
    let environment: [String: String]
    let dryRunOverride: Bool
    private let state: Mutex<(configuration: DaemonConfiguration, clients: [TLSKey: HTTPClient])>
    private let reloads: CounterFamilyHandle

    struct TLSKey: Hashable {
        var caBundle: String?
        var insecure: Bool
    }

    /// Builds the runtime. Throws on unreadable secrets or an unusable state store.
    public init(
        configuration: DaemonConfiguration, store: any StateStore, clock: any WardenClock = SystemClock(), logger: Logger,
        environment: [String: String] = ProcessInfo.processInfo.environment, dryRunOverride: Bool = false,
        metrics: WardenMetrics = WardenMetrics(), ownership: any ShardOwnership = SoleOwnership(), cluster: (any ClusterStatusSource)? = nil,
        clusterControl: (any ClusterControl)? = nil
    ) throws {
        self.cluster = cluster
        self.clusterControl = clusterControl
        self.logger = logger
        self.environment = environment
        self.dryRunOverride = dryRunOverride
        var clients: [TLSKey: HTTPClient] = [:]
        let projects = try Self.makeProjects(configuration, clients: &clients, metrics: metrics, logger: logger, environment: environment)
        var settings = configuration.settings
        if dryRunOverride { settings.dryRun = true }
        // The reconcilers sleep on a clock whose sleeps end when shutdown begins (the gate closes),
        // so a pass waiting for a schedule boundary ends then without acting. The loops keep the
        // plain clock: their own waits end on graceful shutdown.
        let mutationGate = MutationGate()
        // Every journal append goes through the health report: a store that cannot be written
        // makes the daemon not ready, once per episode.
        storeHealth = StoreHealth(location: store.location, metrics: metrics, logger: logger)
        context = WardenContext(
            settings: settings, projects: projects, store: HealthReportingStore(base: store, health: storeHealth), metrics: metrics, clock: ShutdownInterruptedClock(base: clock, gate: mutationGate),
            logger: logger, mutationGate: mutationGate, ownership: ownership)
        supervisor = Supervisor(clock: clock)
        quota = QuotaWatch(context: context)
        stuck = StuckTaskDetector(context: context)
        flavors = FlavorSaleTracker(context: context)
        scheduler = AutoStopScheduler(context: context)
        jobs = JobFollower(context: context)
        let reconcilers: [any Reconciler] = [quota, stuck, scheduler, jobs, flavors, StateMaintenance(context: context)]
        let supervisor = self.supervisor
        loops = reconcilers.map { reconciler in
            ReconcileLoop(
                reconciler: reconciler, timing: configuration.loops[reconciler.name] ?? LoopTiming(interval: 300), clock: clock, supervisor: supervisor,
                metrics: metrics, logger: logger)
        }
        state = Mutex((configuration, clients))
        reloads = CounterFamilyHandle(registry: metrics.registry)
        metrics.registry.makeGauge(
            descriptor: MetricNameDescriptor(metricName: "ecs_warden_build_info", unitName: "", helpText: "Always 1; the version is a label."),
            labels: [("version", Self.version)]
        ).set(to: 1.0)
    }

    /// The configuration in force.
    public var configuration: DaemonConfiguration { state.withLock { $0.configuration } }

    /// Validates and applies a new configuration file. Returns nil when applied, or why it was
    /// rejected (the old configuration stays).
    public func reload(path: String) -> String? {
        do {
            let fresh = try ConfigLoader.load(path: path, environment: environment)
            return apply(fresh)
        } catch {
            reloads.count("rejected")
            logger.error("configuration reload rejected; the previous configuration stays", metadata: ["error": "\(error)"])
            return "\(error)"
        }
    }

    /// Applies an already-parsed configuration (loop intervals need a restart to change).
    public func apply(_ fresh: DaemonConfiguration) -> String? {
        do {
            var clients = state.withLock { $0.clients }
            let projects = try Self.makeProjects(fresh, clients: &clients, metrics: context.metrics, logger: logger, environment: environment)
            var settings = fresh.settings
            if dryRunOverride { settings.dryRun = true }
            context.update(settings: settings, projects: projects)
            let old = state.withLock { state -> DaemonConfiguration in
                defer { state = (fresh, clients) }
                return state.configuration
            }
            if old.loops != fresh.loops || old.stateDirectory != fresh.stateDirectory || old.metricsListen != fresh.metricsListen
                || old.controlListen != fresh.controlListen
            {
                logger.warning("loop intervals, listeners and the state directory change only on restart")
            }
            reloads.count("applied")
            logger.info("configuration reloaded", metadata: ["projects": "\(projects.count)", "schedules": "\(settings.schedules.count)"])
            return nil
        } catch {
            reloads.count("rejected")
            logger.error("configuration reload rejected; the previous configuration stays", metadata: ["error": "\(error)"])
            return "\(error)"
        }
    }

    /// One pass of every loop, in a useful order; returns each outcome.
    public func runOnce() async -> [(loop: String, outcome: PassOutcome)] {
        var results: [(String, PassOutcome)] = []
        for name in LoopName.oncePassOrder.map(\.rawValue) {
            guard let loop = loops.first(where: { $0.name == name }) else { continue }
            results.append((name, await loop.runPass()))
        }
        return results
    }

    /// What the HTTP layer needs.
    public func backend(token: String?, reload: @escaping @Sendable () async -> String?, started: @escaping @Sendable () -> Bool) -> ControlBackend {
        var backend = ControlBackend(
            context: context, supervisor: supervisor, loops: loops, quota: quota, stuck: stuck, flavors: flavors, scheduler: scheduler, token: token,
            reload: reload, started: started, version: Self.version)
        backend.storeHealth = storeHealth
        if let cluster { backend.cluster = cluster }
        backend.clusterControl = clusterControl
        return backend
    }

    /// Shuts the HTTP clients down.
    public func shutdown() async {
        let clients = state.withLock { Array($0.clients.values) }
        for client in clients { try? await client.shutdown() }
    }

    static func makeProjects(
        _ configuration: DaemonConfiguration, clients: inout [TLSKey: HTTPClient], metrics: WardenMetrics, logger: Logger, environment: [String: String]
    ) throws -> [WardenProject] {
        let secrets = SecretResolver(environment: environment)
        var authentications: [String: ECSAuthentication] = [:]
        for account in configuration.accounts {
            switch account.credentials {
            case .accessKey(let ak, let sk, let token):
                authentications[account.name] = .accessKey(
                    AccessKeyCredentials(accessKey: try secrets.resolve(ak), secretKey: try secrets.resolve(sk), securityToken: try token.map(secrets.resolve)))
            case .iamPassword(let endpoint, let user, let domain, let password):
                authentications[account.name] = .iamPassword(
                    IAMPasswordCredentials(iamEndpoint: endpoint, userName: user, password: try secrets.resolve(password), domainName: domain))
            }
        }
        let limiters = Dictionary(configuration.regions.map { ($0.name, TokenBucket($0.rateLimit)) }, uniquingKeysWith: { a, _ in a })
        var projects: [WardenProject] = []
        for project in configuration.projects {
            guard let region = configuration.regions.first(where: { $0.name == project.region }),
                let authentication = authentications[project.account]
            else { continue }
            let key = TLSKey(caBundle: region.caBundle, insecure: region.insecureSkipVerify)
            let http: HTTPClient
            if let existing = clients[key] {
                http = existing
            } else {
                http = ECSClient.makeHTTPClient(tls: ECSTLSConfiguration(caBundlePath: region.caBundle, insecureSkipVerify: region.insecureSkipVerify))
                clients[key] = http
            }
            let client = ECSClient(
                configuration: ECSClientConfiguration(
                    endpoint: region.endpoint, projectId: project.id, region: region.name, authentication: authentication,
                    requestTimeout: .milliseconds(Int64(region.requestTimeout * 1000)), pageSize: region.pageSize, userAgent: "ecs-warden/\(version)"),
                httpClient: http, rateLimiter: limiters[region.name], logger: logger, observer: { metrics.recordAPI($0) })
            projects.append(
                WardenProject(name: project.name, projectId: project.id, region: region.name, client: client, availabilityZones: project.availabilityZones))
        }
        return projects
    }
}

/// `ecs_warden_config_reloads_total{result}`.
final class CounterFamilyHandle: Sendable {
    private let registry: PrometheusCollectorRegistry

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        for result in ["applied", "rejected"] { counter(result).increment(by: Int64(0)) }
    }

    private func counter(_ result: String) -> Counter {
        registry.makeCounter(
            descriptor: MetricNameDescriptor(metricName: "ecs_warden_config_reloads_total", unitName: "", helpText: "Configuration reloads by result."),
            labels: [("result", result)])
    }

    func count(_ result: String) { counter(result).increment() }
}
