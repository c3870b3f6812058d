import ECSSimulator
import Foundation
import Logging
import PostgresNIO
import WardenCore
import WardenPostgres

/// `ecs-warden demo --cluster N`: the embedded simulated region, an embedded PostgreSQL and N
/// replicas of the real daemon as child processes. The narration shows which replica owns which
/// project, lets a boundary be acted on, kills the owner of a project with SIGKILL shortly before
/// the next boundary, shows its projects taken over and that boundary acted on exactly once.
public enum ClusterDemoRunner {
    /// How many replicas, the lease TTL and how long to run after the scenario.
    public struct Options: Sendable {
        public var replicas: Int
        public var leaseTTL: TimeInterval
        public var basePort: Int
        public var duration: TimeInterval?

        public init(replicas: Int = 3, leaseTTL: TimeInterval = 6, basePort: Int = 9464, duration: TimeInterval? = nil) {
            self.replicas = replicas
            self.leaseTTL = leaseTTL
            self.basePort = basePort
            self.duration = duration
        }
    }

    static let projectCount = 8

    public static func run(options: Options, logger: Logger) async -> Int32 {
        let say: @Sendable (String) -> Void = { line in FileHandle.standardOutput.write(Data("demo: \(line)\n".utf8)) }
        let fail: @Sendable (String) -> Int32 = { line in
            FileHandle.standardError.write(Data("ecs-warden demo: \(line)\n".utf8))
            return 1
        }
        guard (2...5).contains(options.replicas) else { return fail("--cluster takes 2 to 5 replicas") }
        guard let executable = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else {
            return fail("cannot find this program's own path (/proc/self/exe) to start the replicas")
        }
        guard let port = EmbeddedPostgres.freePort() else { return fail("no free TCP port for PostgreSQL") }
        let postgres: EmbeddedPostgres
        do {
            postgres = try EmbeddedPostgres.start(port: port)
        } catch {
            return fail("\(error)")
        }
        defer { postgres.stop() }
        say("PostgreSQL (embedded, \(postgres.binaries)) on 127.0.0.1:\(port), data in \(postgres.directory)")

        let secretKey = UUID().uuidString
        let region = SimulatedRegion(
            configuration: SimRegionConfiguration(
                region: "eu-west-0", accessKeys: [DemoRunner.accessKey: secretKey],
                timings: TransitionTimings(jobInit: 1, createStep: 2, start: 3, stop: 3, rebootStep: 3, delete: 3), speed: 1, seed: 7))
        let projectIds = await FleetGenerator(
            projects: projectCount, serversPerProject: 12, scheduledShare: 0.7, schedules: ["first-wave", "second-wave"], seed: 7
        ).populate(region)
        let simulator: SimulatorServer
        do {
            simulator = try await SimulatorServer.start(region: region)
        } catch {
            return fail("cannot start the simulator: \(error)")
        }
        let directory = postgres.directory + "-replicas"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }

        // Boundaries: the first wave stops on the first whole minute at least 50 s ahead, the
        // second one two minutes later.
        let first = Date(timeIntervalSince1970: ((Date().timeIntervalSince1970 + 50) / 60).rounded(.up) * 60)
        let second = first.addingTimeInterval(120)
        let tokenPath = "\(directory)/control-token"
        guard FileManager.default.createFile(atPath: tokenPath, contents: Data(UUID().uuidString.lowercased().utf8), attributes: [.posixPermissions: 0o600]) else {
            return fail("cannot write \(tokenPath)")
        }
        say("mutating control-API calls (any replica): ecs-warden ctl --token-file \(tokenPath) --url http://127.0.0.1:<control port> pause schedule")
        let nodes = (0..<options.replicas).map { "warden-\(Character(UnicodeScalar(UInt8(97 + $0))))" }
        var replicas: [String: Process] = [:]
        for (index, node) in nodes.enumerated() {
            let configPath = "\(directory)/\(node).yaml"
            let text = ClusterDemoConfig.yaml(
                node: node, stateDirectory: "\(directory)/\(node)", metricsPort: options.basePort + 10 * index, controlPort: options.basePort + 10 * index + 1,
                simulator: simulator.endpoint, projectIds: projectIds, first: first, second: second, leaseTTL: options.leaseTTL, tokenPath: tokenPath)
            guard FileManager.default.createFile(atPath: configPath, contents: Data(text.utf8)) else { return fail("cannot write \(configPath)") }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = ["run", "--config", configPath, "--log-level", "warning"]
            process.environment = ProcessInfo.processInfo.environment.merging(
                ["ECS_WARDEN_STATE_DB_URL": postgres.url, "DEMO_AK": DemoRunner.accessKey, "DEMO_SK": secretKey], uniquingKeysWith: { _, new in new })
            do {
                try process.run()
            } catch {
                return fail("cannot start replica \(node): \(error)")
            }
            replicas[node] = process
            say("replica \(node): pid \(process.processIdentifier), metrics :\(options.basePort + 10 * index), control :\(options.basePort + 10 * index + 1)")
        }
        defer {
            for process in replicas.values where process.isRunning { kill(process.processIdentifier, SIGTERM) }
            for process in replicas.values { process.waitUntilExit() }
        }
        let pids = replicas.mapValues(\.processIdentifier)
        let observer = ClusterDemoObserver(url: postgres.url, logger: logger)
        let code = await observer.narrate(
            replicas: options.replicas, projectIds: projectIds, first: first, second: second, leaseTTL: options.leaseTTL, duration: options.duration, say: say,
            kill: { node -> Int32? in
                guard let pid = pids[node], kill(pid, 0) == 0 else { return nil }
                kill(pid, SIGKILL)
                return pid
            })
        await simulator.shutdown()
        return code
    }
}

/// The configuration file of one demo replica.
enum ClusterDemoConfig {
    static func yaml(
        node: String, stateDirectory: String, metricsPort: Int, controlPort: Int, simulator: String, projectIds: [String], first: Date, second: Date,
        leaseTTL: TimeInterval, tokenPath: String
    ) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? .current
        func clock(_ date: Date) -> String {
            let parts = calendar.dateComponents([.hour, .minute], from: date)
            return String(format: "%02d:%02d", parts.hour ?? 0, parts.minute ?? 0)
        }
        let projects = projectIds.enumerated().map { index, id in
            "  - {name: team-\(index + 1), id: \(id), account: demo, region: eu-west-0}"
        }.joined(separator: "\n")
        return """
            state_dir: \(stateDirectory)
            state:
              backend: postgres
              postgres:
                url: {env: ECS_WARDEN_STATE_DB_URL}
            cluster:
              node: \(node)
              lease_ttl: \(Int(leaseTTL))s
            listen:
              metrics: 127.0.0.1:\(metricsPort)
              control: 127.0.0.1:\(controlPort)
              control_token: {file: \(tokenPath)}
            accounts:
              - {name: demo, access_key: {env: DEMO_AK}, secret_key: {env: DEMO_SK}}
            regions:
              - name: eu-west-0
                endpoint: \(simulator)
                request_timeout: 5s
                rate_limit: {requests_per_second: 100, burst: 200}
            projects:
            \(projects)
            loops:
              quota: {interval: 30s}
              stuck: {interval: 15s}
              schedule: {interval: 20s}
              jobs: {interval: 2s}
              flavors: {interval: 60s}
            schedules:
              first-wave:
                timezone: UTC
                mode: stop-only
                periods: [{days: every day, stop: "\(clock(first))"}]
              second-wave:
                timezone: UTC
                mode: stop-only
                periods: [{days: every day, stop: "\(clock(second))"}]

            """
    }
}
