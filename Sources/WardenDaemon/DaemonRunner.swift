import Foundation
import Hummingbird
import NIOCore
import Logging
import ServiceLifecycle
import Synchronization
import SystemdNotify
import WardenCore
import WardenHTTP

/// Counts bound listeners; READY goes out once every listener is up.
final class ReadinessGate: Sendable {
    private let state: Mutex<(bound: Int, waiters: [CheckedContinuation<Void, Never>])>
    let expected: Int

    init(expected: Int) {
        self.expected = expected
        state = Mutex((0, []))
    }

    func listenerBound() {
        let ready = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.bound += 1
            guard state.bound >= expected else { return [] }
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in ready { waiter.resume() }
    }

    var isOpen: Bool { state.withLock { $0.bound >= expected } }

    func wait() async {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> Bool in
                if state.bound >= expected { return true }
                state.waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
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
    /// Loads the configuration and the store, then serves until SIGTERM. Returns the exit status.
    public static func run(configPath: String, dryRun: Bool, logger: Logger, environment: [String: String] = ProcessInfo.processInfo.environment) async -> Int32 {
        let configuration: DaemonConfiguration
        do {
            configuration = try ConfigLoader.load(path: configPath, environment: environment)
        } catch {
            logger.critical("invalid configuration", metadata: ["error": "\(error)"])
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
        let store: StateStore
        do {
            store = try StateStore.open(directory: configuration.stateDirectory, retention: configuration.retention)
        } catch {
            return startupFailed(error)
        }
        let runtime: WardenRuntime
        let token: String?
        do {
            runtime = try WardenRuntime(configuration: configuration, store: store, logger: logger, environment: environment, dryRunOverride: dryRun)
            token = try configuration.controlToken.map { try SecretResolver(environment: environment).resolve($0) }
        } catch {
            logger.critical("cannot start", metadata: ["error": "\(error)"])
            FileHandle.standardError.write(Data("ecs-warden: \(error)\n".utf8))
            return 1
        }
        if token == nil {
            logger.warning("no control token configured: mutating control-API calls are refused")
        }
        let code = await serve(runtime: runtime, configuration: configuration, token: token, configPath: configPath, logger: logger, environment: environment)
        await runtime.shutdown()
        return code
    }

    /// Prints why start-up failed, in one line, and returns the exit status.
    static func startupFailed(_ error: any Error, prefix: String = "ecs-warden") -> Int32 {
        let line = "\(error)".split(whereSeparator: \.isNewline).joined(separator: "; ")
        FileHandle.standardError.write(Data("\(prefix): \(line)\n".utf8))
        return 1
    }

    /// Serves a built runtime (also used by the demo).
    static func serve(
        runtime: WardenRuntime, configuration: DaemonConfiguration, token: String?, configPath: String?, logger: Logger,
        environment: [String: String], extraServices: [any Service] = [], onListening: (@Sendable (String, String) -> Void)? = nil
    ) async -> Int32 {
        // An extra service that returns ends the whole daemon gracefully (the demo's --duration).
        let gate = ReadinessGate(expected: 2)
        let notifier = SystemdNotifier(
            environment: environment, waitUntilReady: { await gate.wait() },
            isHealthy: { await runtime.supervisor.allAlive() },
            status: { await runtime.supervisor.summaryLine() })
        let reload: @Sendable () async -> String? = {
            guard let configPath else { return "this daemon was started without a configuration file" }
            notifier.reloading()
            let result = runtime.reload(path: configPath)
            notifier.reloaded(status: result == nil ? "configuration reloaded" : "reload rejected; previous configuration kept")
            return result
        }
        let backend = runtime.backend(token: token, reload: reload, started: { gate.isOpen })
        let metricsApp = Application(
            router: WardenRoutes.metricsRouter(backend: backend),
            configuration: .init(address: bindAddress(configuration.metricsListen), serverName: "ecs-warden"),
            onServerRunning: { channel in
                gate.listenerBound()
                onListening?("metrics", describe(channel.localAddress, fallback: configuration.metricsListen))
            }, logger: logger)
        let controlApp = Application(
            router: WardenRoutes.controlRouter(backend: backend),
            configuration: .init(address: bindAddress(configuration.controlListen), serverName: "ecs-warden"),
            onServerRunning: { channel in
                gate.listenerBound()
                onListening?("control", describe(channel.localAddress, fallback: configuration.controlListen))
            }, logger: logger)
        if case .unix(let path) = configuration.controlListen { try? FileManager.default.removeItem(atPath: path) }
        var services: [any Service] = [metricsApp, controlApp, notifier, ReloadOnHangup { _ = await reload() }]
        services += runtime.loops.map { $0 as any Service }
        var configurations = services.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) }
        configurations += extraServices.map {
            ServiceGroupConfiguration.ServiceConfiguration(service: $0, successTerminationBehavior: .gracefullyShutdownGroup)
        }
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(services: configurations, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
            logger.info("stopped")
            return 0
        } catch {
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
        do {
            let store = try StateStore.open(directory: configuration.stateDirectory, retention: configuration.retention)
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
