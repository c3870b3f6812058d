import Foundation
import Hummingbird
import HummingbirdCore
import NIOCore
import Logging
import ServiceLifecycle
import Synchronization
import SystemdNotify
import WardenCore
import WardenHTTP

/// Knows which listeners are bound; the loops and READY=1 wait until every one is.
final class ListenerGate: Sendable {
    private let state: Mutex<(bound: Set<String>, waiters: [UInt64: CheckedContinuation<Void, any Error>], nextWaiter: UInt64)>
    /// The listeners that must be bound (`metrics`, `control`).
    let expected: Set<String>

    init(expected: Set<String>) {
        self.expected = expected
        state = Mutex(([], [:], 0))
    }

    /// Records that a listener is bound; opens the gate with the last one.
    func bound(_ kind: String) {
        let ready = state.withLock { state -> [CheckedContinuation<Void, any Error>] in
            state.bound.insert(kind)
            guard expected.isSubset(of: state.bound) else { return [] }
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in ready { waiter.resume() }
    }

    /// Whether this listener is bound.
    func isBound(_ kind: String) -> Bool { state.withLock { $0.bound.contains(kind) } }

    /// Whether every listener is bound.
    var isOpen: Bool { state.withLock { expected.isSubset(of: $0.bound) } }

    /// Returns once every listener is bound; throws `CancellationError` when the task is cancelled.
    func waitUntilOpen() async throws {
        let id = state.withLock { state -> UInt64 in
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let now = state.withLock { state -> Bool? in
                    if expected.isSubset(of: state.bound) { return true }
                    if Task.isCancelled { return false }
                    state.waiters[id] = continuation
                    return nil
                }
                switch now {
                case true?: continuation.resume()
                case false?: continuation.resume(throwing: CancellationError())
                case nil: break
                }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume(throwing: CancellationError())
        }
    }
}

/// A Hummingbird application that reports a failure to bind as a `StartupError` naming the
/// listener, its address and the OS reason.
struct Listener: Service {
    let kind: String
    let address: ListenAddress
    let server: any Service
    let gate: ListenerGate

    func run() async throws {
        do {
            try await server.run()
        } catch {
            guard !gate.isBound(kind), !(error is CancellationError) else { throw error }
            let reason = (error as? IOError).map { StartupError.reason(errno: $0.errnoCode) } ?? "\(error)"
            throw StartupError.cannotListen(kind: kind, address: address.description, reason: reason)
        }
    }
}

/// A service that must run until shutdown: if it returns while no shutdown is under way, that is
/// logged as critical with its name and the daemon ends with an error (instead of a silent,
/// successful-looking exit).
struct EndsOnlyOnShutdown: Service {
    struct EndedByItself: Error, CustomStringConvertible {
        var name: String
        var description: String { "the \(name) ended by itself" }
    }

    let name: String
    let service: any Service
    let logger: Logger

    func run() async throws {
        try await service.run()
        guard Task.isShuttingDownGracefully || Task.isCancelled else {
            logger.critical("the \(name) ended by itself; stopping the daemon with an error")
            throw EndedByItself(name: name)
        }
    }
}

/// Runs a service only once every listener is bound (staged start: listeners, then loops). When
/// the daemon shuts down or fails before that, the service never starts.
struct AfterListeners: Service {
    let service: any Service
    let gate: ListenerGate

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown { try await gate.waitUntilOpen() }
        } catch {
            return
        }
        try await service.run()
    }
}

/// The first service told to shut down (it is the last in the group): closes the mutation gate so
/// no new mutating call starts, and stops the loops from starting passes, before anything else
/// stops. Also on cancellation (a failed start).
struct ShutdownBeginning: Service {
    let gate: MutationGate
    let loops: [ReconcileLoop]
    /// Cluster mode: hands the shards over (after the calls in flight), without waiting for the
    /// loops' passes to end.
    var handOver: @Sendable () async -> Void = {}

    func run() async throws {
        try? await gracefulShutdown()
        gate.close()
        for loop in loops { loop.stopStartingPasses() }
        await handOver()
    }
}

/// Reloads the configuration on SIGHUP, with RELOADING=1 / READY=1 around it.
final class ReloadOnHangup: Service, Sendable {
    let reload: @Sendable () async -> Void

    init(reload: @escaping @Sendable () async -> Void) {
        self.reload = reload
    }

    func run() async throws {
        signal(SIGHUP, SIG_IGN)
        let (stream, continuation) = AsyncStream<Void>.makeStream()
        let source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        source.setEventHandler { continuation.yield() }
        source.resume()
        await withGracefulShutdownHandler {
            for await _ in stream.cancelOnGracefulShutdown() { await reload() }
        } onGracefulShutdown: {
            continuation.finish()
        }
        source.cancel()
    }
}

/// Runs the daemon: `ecs-warden run`.
public enum DaemonRunner {
    /// How long a graceful shutdown may take (calls in flight finish) before the remaining work is
    /// cancelled; with `cancellationGrace` it stays well below systemd's `TimeoutStopSec=30s`.
    static let shutdownGrace: Duration = .seconds(10)
    /// How long cancelled work may take to end before ServiceLifecycle aborts the process.
    static let cancellationGrace: Duration = .seconds(5)

    /// Loads the configuration, locks the state directory and opens the store, then serves until
    /// SIGTERM. Returns the exit status. A start-up failure is one line on stderr and a non-zero
    /// status, with no READY=1.
    public static func run(configPath: String, dryRun: Bool, logger: Logger, environment: [String: String] = ProcessInfo.processInfo.environment) async -> Int32 {
        let configuration: DaemonConfiguration
        do {
            configuration = try ConfigLoader.load(path: configPath, environment: environment)
        } catch {
            FileHandle.standardError.write(Data("ecs-warden: invalid configuration:\n\(error)\n".utf8))
            return 2
        }
        let lock: StateDirectoryLock
        do {
            lock = try StateDirectoryLock.acquire(directory: configuration.stateDirectory)
        } catch {
            return startupFailed(error)
        }
        defer { lock.release() }
        return await StateBackendSession.with(configuration, logger: logger, environment: environment) { opened in
            let runtime: WardenRuntime
            let token: String?
            do {
                runtime = try WardenRuntime(
                    configuration: configuration, store: opened.store, logger: logger, environment: environment, dryRunOverride: dryRun,
                    metrics: opened.metrics, ownership: opened.ownership, cluster: opened.cluster, clusterControl: opened.clusterControl)
                token = try configuration.controlToken.map { try SecretResolver(environment: environment).resolve($0) }
            } catch {
                return startupFailed(error)
            }
            await opened.attach(runtime)
            if token == nil {
                logger.warning("no control token configured: mutating control-API calls are refused")
            }
            let code = await serve(
                runtime: runtime, configuration: configuration, token: token, configPath: configPath, logger: logger, environment: environment,
                clusterServices: opened.services, clusterHealthy: opened.healthy, clusterProblem: opened.readinessProblem,
                clusterHandOver: opened.handOver)
            await runtime.shutdown()
            return code
        }
    }

    /// Prints why start-up failed, in one line, and returns the exit status.
    static func startupFailed(_ error: any Error, prefix: String = "ecs-warden") -> Int32 {
        let line = "\(error)".split(whereSeparator: \.isNewline).joined(separator: "; ")
        FileHandle.standardError.write(Data("\(prefix): \(line)\n".utf8))
        return 1
    }

    /// Serves a built runtime (also used by the demo). Staged: the listeners are bound first; the
    /// loops (and `extraServices`) start only then, and READY=1 goes out only then. A listener that
    /// cannot bind ends the daemon at once with one line naming its address and the OS reason.
    /// SIGTERM first closes the mutation gate (no new mutating call) and stops new passes, then
    /// stops every service, with a bounded grace for calls in flight.
    static func serve(
        runtime: WardenRuntime, configuration: DaemonConfiguration, token: String?, configPath: String?, logger: Logger,
        environment: [String: String], extraServices: [any Service] = [], clusterServices: [(name: String, service: any Service)] = [],
        clusterHealthy: @escaping @Sendable () -> Bool = { true }, clusterProblem: @escaping @Sendable () -> String? = { nil },
        clusterHandOver: @escaping @Sendable () async -> Void = {},
        onListening: (@Sendable (String, String) -> Void)? = nil, errorPrefix: String = "ecs-warden"
    ) async -> Int32 {
        // An extra service that returns ends the whole daemon gracefully (the demo's --duration).
        let listeners = ListenerGate(expected: ["metrics", "control"])
        let notifier = SystemdNotifier(
            environment: environment, waitUntilReady: { try await listeners.waitUntilOpen() },
            isHealthy: { await runtime.supervisor.allAlive() && clusterHealthy() },
            status: { await runtime.supervisor.summaryLine() })
        let reload: @Sendable () async -> String? = {
            guard let configPath else { return "this daemon was started without a configuration file" }
            // Before start-up completed (a SIGHUP that early) nothing is announced: no READY=1 yet.
            let announce = listeners.isOpen
            if announce { notifier.reloading() }
            let result = runtime.reload(path: configPath)
            if announce { notifier.reloaded(status: result == nil ? "configuration reloaded" : "reload rejected; previous configuration kept") }
            return result
        }
        var backend = runtime.backend(token: token, reload: reload, started: { listeners.isOpen })
        backend.clusterProblem = clusterProblem
        // Idle connections cannot use up the descriptors: each listener closes idle ones and caps
        // how many are open, within what the descriptor limit leaves after a reserve.
        let limits = configuration.listenerLimits
        let descriptorLimit = ListenerLimits.descriptorLimit()
        let cap = ListenerLimits.effectiveCap(configured: limits.maxConnections, listeners: listeners.expected.count, descriptorLimit: descriptorLimit)
        if cap < limits.maxConnections, let descriptorLimit {
            logger.warning(
                "the descriptor limit (\(descriptorLimit)) leaves room for \(cap) connections per listener: listen.max_connections \(limits.maxConnections) lowered to \(cap)")
        }
        let metricsApp = Application(
            router: WardenRoutes.metricsRouter(backend: backend),
            server: CappedHTTP1Channel.builder(limits: limits, cap: ConnectionCap(listener: "metrics", limit: cap, logger: logger)),
            configuration: .init(
                address: bindAddress(configuration.metricsListen), serverName: "ecs-warden",
                availableConnectionsDelegate: MaximumAvailableConnections(ListenerLimits.acceptLimit(cap: cap), logger: logger)),
            onServerRunning: { channel in
                await AcceptFailureReporter.install(on: channel, listener: "metrics", logger: logger)
                listeners.bound("metrics")
                onListening?("metrics", describe(channel.localAddress, fallback: configuration.metricsListen))
            }, logger: logger)
        let controlApp = Application(
            router: WardenRoutes.controlRouter(backend: backend),
            server: CappedHTTP1Channel.builder(limits: limits, cap: ConnectionCap(listener: "control", limit: cap, logger: logger)),
            configuration: .init(
                address: bindAddress(configuration.controlListen), serverName: "ecs-warden",
                availableConnectionsDelegate: MaximumAvailableConnections(ListenerLimits.acceptLimit(cap: cap), logger: logger)),
            onServerRunning: { channel in
                await AcceptFailureReporter.install(on: channel, listener: "control", logger: logger)
                listeners.bound("control")
                onListening?("control", describe(channel.localAddress, fallback: configuration.controlListen))
            }, logger: logger)
        if case .unix(let path) = configuration.controlListen { try? FileManager.default.removeItem(atPath: path) }
        // A listener that fails shuts the rest down gracefully (nothing else has started) and its
        // error ends `run()`. ServiceGroup stops services in reverse order: `ShutdownBeginning`
        // first, then the notifier (STOPPING=1), the extras, the loops, and the listeners last.
        // Listeners, loops, the reload handler and the notifier run until shutdown: one that ends by
        // itself is a bug, reported by name and turned into an error exit (systemd restarts).
        func lasting(_ name: String, _ service: any Service) -> ServiceGroupConfiguration.ServiceConfiguration {
            .init(service: EndsOnlyOnShutdown(name: name, service: service, logger: logger), failureTerminationBehavior: .gracefullyShutdownGroup)
        }
        // Cluster mode's coordinator runs first and stops last: it hands its shards over only once
        // the loops (and their calls in flight) have ended.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = clusterServices.map { lasting($0.name, $0.service) }
        services += [
            lasting("metrics listener", Listener(kind: "metrics", address: configuration.metricsListen, server: metricsApp, gate: listeners)),
            lasting("control listener", Listener(kind: "control", address: configuration.controlListen, server: controlApp, gate: listeners)),
            lasting("reload handler", ReloadOnHangup { _ = await reload() }),
        ]
        services += runtime.loops.map { lasting("loop \($0.name)", AfterListeners(service: $0, gate: listeners)) }
        services += extraServices.map { .init(service: AfterListeners(service: $0, gate: listeners), successTerminationBehavior: .gracefullyShutdownGroup) }
        services.append(lasting("systemd notifier", notifier))
        services.append(.init(service: ShutdownBeginning(gate: runtime.context.mutationGate, loops: runtime.loops, handOver: clusterHandOver)))
        var groupConfiguration = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = shutdownGrace
        groupConfiguration.maximumCancellationDuration = cancellationGrace
        let group = ServiceGroup(configuration: groupConfiguration)
        do {
            try await group.run()
            runtime.context.mutationGate.close()
            logger.info("stopped")
            return 0
        } catch let error as StartupError {
            runtime.context.mutationGate.close()
            return startupFailed(error, prefix: errorPrefix)
        } catch {
            runtime.context.mutationGate.close()
            logger.critical("stopped on an error", metadata: ["error": "\(error)"])
            return 1
        }
    }

    static func bindAddress(_ address: ListenAddress) -> BindAddress {
        switch address {
        case .tcp(let host, let port): return .hostname(host, port: port)
        case .unix(let path): return .unixDomainSocket(path: path)
        }
    }

    static func describe(_ address: SocketAddress?, fallback: ListenAddress) -> String {
        guard let address else { return fallback.description }
        if let port = address.port, let ip = address.ipAddress { return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)" }
        return fallback.description
    }

    /// `ecs-warden run --once`: one pass of every loop, a summary, and a status that says whether
    /// any loop failed. Takes the state directory's lock like the daemon: it writes the same store.
    public static func runOnce(configPath: String, dryRun: Bool, logger: Logger, environment: [String: String] = ProcessInfo.processInfo.environment) async -> Int32 {
        let configuration: DaemonConfiguration
        do {
            configuration = try ConfigLoader.load(path: configPath, environment: environment)
        } catch {
            FileHandle.standardError.write(Data("ecs-warden: invalid configuration:\n\(error)\n".utf8))
            return 2
        }
        let lock: StateDirectoryLock
        do {
            lock = try StateDirectoryLock.acquire(directory: configuration.stateDirectory)
        } catch {
            return startupFailed(error)
        }
        defer { lock.release() }
        if case .postgres = configuration.stateBackend {
            FileHandle.standardError.write(
                Data("ecs-warden: run --once works on a single node (state.backend: sqlite); in cluster mode the replicas share the work: use `ecs-warden ctl run LOOP`\n".utf8))
            return 2
        }
        do {
            let store = try SQLiteStateStore.open(directory: configuration.stateDirectory, retention: configuration.retention)
            let runtime = try WardenRuntime(configuration: configuration, store: store, logger: logger, environment: environment, dryRunOverride: dryRun)
            let results = await runtime.runOnce()
            await runtime.shutdown()
            var failed = false
            for (loop, outcome) in results {
                let line: String
                switch outcome {
                case .success(let report): line = "\(loop): ok — \(report.summary)"
                case .partial(let report):
                    failed = true
                    line = "\(loop): partly failed — \(report.summary); " + report.failures.map { "\($0.part): \($0.message)" }.joined(separator: "; ")
                case .failure(let message):
                    failed = true
                    line = "\(loop): FAILED — \(message)"
                }
                FileHandle.standardOutput.write(Data((line + "\n").utf8))
            }
            return failed ? 1 : 0
        } catch {
            return startupFailed(error)
        }
    }
}
