import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization
import WardenCore
import WardenPostgres

/// The configured state store, opened, and what cluster mode adds to the daemon: the PostgreSQL
/// client and the lease coordinator (services that run with the daemon), the shard ownership the
/// loops obey and the cluster view of `/v1/cluster`.
struct OpenedState: Sendable {
    var store: any StateStore
    /// The metrics registry the runtime and cluster mode share.
    var metrics: WardenMetrics
    var ownership: any ShardOwnership = SoleOwnership()
    var cluster: (any ClusterStatusSource)?
    var clusterControl: (any ClusterControl)?
    /// Run before everything else and stopped after everything else (the client), or just before
    /// the listeners stop (the coordinator hands its shards over once the loops have ended).
    var services: [(name: String, service: any Service)] = []
    /// Told the runtime once it exists: the coordinator reads its shards and wakes its loops.
    var attach: @Sendable (WardenRuntime) async -> Void = { _ in }
    /// Cluster mode: false once the node has not renewed its leases for long (gates the watchdog).
    var healthy: @Sendable () -> Bool = { true }
    /// Cluster mode: hands every shard over as soon as shutdown begins.
    var handOver: @Sendable () async -> Void = {}
    /// Cluster mode: why the node is not ready (`/readyz`), or nil.
    var readinessProblem: @Sendable () -> String? = { nil }
}

/// Opens the state store the configuration names.
enum StateBackendSession {
    /// How long start-up waits for PostgreSQL (connection and migrations) before it gives up.
    static let connectTimeout: Duration = .seconds(30)

    /// Opens the store, runs `body` with it, closes it. SQLite: the file in the state directory.
    /// PostgreSQL: a client running for the whole of `body`, the store migrated, a lease coordinator.
    /// A failure to open is returned as a one-line start-up failure.
    static func with(
        _ configuration: DaemonConfiguration, logger: Logger, environment: [String: String], _ body: (OpenedState) async -> Int32
    ) async -> Int32 {
        switch configuration.stateBackend {
        case .sqlite:
            do {
                let store = try SQLiteStateStore.open(directory: configuration.stateDirectory, retention: configuration.retention)
                return await body(OpenedState(store: store, metrics: WardenMetrics()))
            } catch {
                return DaemonRunner.startupFailed(error)
            }
        case .postgres(let secret):
            let url: PostgresURL
            let client: PostgresClient
            do {
                url = try PostgresURL(try SecretResolver(environment: environment).resolve(secret))
                client = try PostgresStateStore.makeClient(url: url, logger: logger)
            } catch {
                return DaemonRunner.startupFailed(error)
            }
            return await withTaskGroup(of: Void.self) { group -> Int32 in
                group.addTask { await client.run() }
                defer { group.cancelAll() }
                let store: PostgresStateStore
                do {
                    store = try await withTimeout(connectTimeout) {
                        try await PostgresStateStore.open(client: client, location: url.redacted, retention: configuration.retention, logger: logger)
                    }
                } catch is ClusterTimeout {
                    return DaemonRunner.startupFailed(
                        StartupError.stateDatabaseUnusable(
                            location: url.redacted, reason: "no answer within \(connectTimeout) (is PostgreSQL running and reachable?)"))
                } catch {
                    return DaemonRunner.startupFailed(StartupError.stateDatabaseUnusable(location: url.redacted, reason: "\(error)"))
                }
                let cluster = configuration.cluster ?? ClusterConfiguration(node: ProcessInfo.processInfo.hostName, leaseTTL: 15)
                let runtimeBox = Mutex<WardenRuntime?>(nil)
                let metrics = WardenMetrics()
                let coordinator = LeaseCoordinator(
                    client: client, settings: LeaseSettings(node: cluster.node, ttl: .milliseconds(Int64(cluster.leaseTTL * 1000))),
                    shards: { runtimeBox.withLock { $0?.context.shards } ?? [] },
                    metrics: ClusterMetrics(metrics: metrics, node: cluster.node), logger: logger,
                    notified: { payload in await runtimeBox.withLock { $0 }?.clusterNotified(payload) })
                var opened = OpenedState(store: store, metrics: metrics, ownership: coordinator, cluster: coordinator, clusterControl: coordinator)
                opened.services = [("lease coordinator", coordinator)]
                let patience = max(Duration.seconds(60), .milliseconds(Int64(cluster.leaseTTL * 4000)))
                opened.healthy = { coordinator.renewedRecently(within: patience) }
                opened.readinessProblem = { coordinator.readinessProblem() }
                opened.handOver = { await coordinator.handOver() }
                opened.attach = { runtime in
                    runtimeBox.withLock { $0 = runtime }
                    // Pauses made through any node hold for every node, also one started later.
                    do {
                        for name in try await coordinator.pausedLoops() {
                            await runtime.loops.first { $0.name == name }?.pause()
                        }
                    } catch {
                        logger.error("cannot read the cluster's loop pauses; they apply from the next change", metadata: ["error": "\(error)"])
                    }
                }
                return await body(opened)
            }
        }
    }
}

extension WardenRuntime {
    /// A notification on the cluster channel: a pause, a resume or a run-now made through any
    /// node, or shards that changed hands (every loop passes at once, so a shard taken over is
    /// worked on without waiting for an interval).
    func clusterNotified(_ payload: String) async {
        switch ClusterMessage(payload: payload) {
        case .pause(let name): await loops.first { $0.name == name }?.pause()
        case .resume(let name): await loops.first { $0.name == name }?.resume()
        case .run(let name): loops.first { $0.name == name }?.runNow()
        case .shardsMoved: for loop in loops { loop.runNow() }
        }
    }
}
