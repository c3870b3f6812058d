import ECSAPI
import ECSSigning
import ECSSimulator
import Foundation
import Logging
import ServiceLifecycle
import WardenCore

/// `ecs-warden demo`: an embedded simulated region with a small fleet and a scripted scenario, and
/// the real daemon against it. Within a minute every loop acts: a quota threshold is crossed, a
/// stuck job and a stuck server are reported, tagged servers are stopped at a schedule boundary a
/// minute ahead, and a flavor goes sold out in one AZ and comes back.
public enum DemoRunner {
    /// Where the demo listens and for how long it runs (nil: until Ctrl-C).
    public struct Options: Sendable {
        public var metricsPort: Int
        public var controlPort: Int
        public var duration: TimeInterval?
        public var boundaryDelay: TimeInterval

        public init(metricsPort: Int = 9464, controlPort: Int = 9465, duration: TimeInterval? = nil, boundaryDelay: TimeInterval = 60) {
            self.metricsPort = metricsPort
            self.controlPort = controlPort
            self.duration = duration
            self.boundaryDelay = boundaryDelay
        }
    }

    static let accessKey = "DEMOACCESSKEY"

    public static func run(options: Options, logger: Logger) async -> Int32 {
        let say: @Sendable (String) -> Void = { line in FileHandle.standardOutput.write(Data("demo: \(line)\n".utf8)) }
        let secretKey = UUID().uuidString
        let region = SimulatedRegion(
            configuration: SimRegionConfiguration(
                region: "eu-west-0", accessKeys: [accessKey: secretKey],
                timings: TransitionTimings(jobInit: 1, createStep: 2, start: 5, stop: 5, rebootStep: 3, delete: 3), speed: 1, seed: 42))
        let projectIds = await FleetGenerator(projects: 2, serversPerProject: 24, scheduledShare: 0, seed: 42)
            .populate(region, firstProjectIds: ["0d1e2f3a4b5c6d7e8f90a1b2c3d4e5f6"])
        let simulator: SimulatorServer
        do {
            simulator = try await SimulatorServer.start(region: region)
        } catch {
            FileHandle.standardError.write(Data("ecs-warden demo: cannot start the simulator: \(error)\n".utf8))
            return 1
        }
        let stateDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("ecs-warden-demo-\(UUID().uuidString.prefix(8))").path
        try? FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
        let tokenPath = (stateDirectory as NSString).appendingPathComponent("control-token")
        let token = UUID().uuidString.lowercased()
        guard FileManager.default.createFile(atPath: tokenPath, contents: Data(token.utf8), attributes: [.posixPermissions: 0o600]) else {
            FileHandle.standardError.write(Data("ecs-warden demo: cannot write \(tokenPath)\n".utf8))
            await simulator.shutdown()
            return 1
        }

        // The schedule's stop boundary falls on the first whole minute at least `boundaryDelay` ahead.
        let now = Date()
        let zone = TimeZone.current
        let boundary = Date(timeIntervalSince1970: ((now.timeIntervalSince1970 + options.boundaryDelay) / 60).rounded(.up) * 60)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let stopParts = calendar.dateComponents([.hour, .minute], from: boundary)
        // A stop time only: the demo shows the stop; a start time hours ago would only be reported as missed.
        let schedule = Schedule(
            name: "demo-evening", timeZone: zone,
            periods: [SchedulePeriod(days: .everyDay, start: nil, stop: MinuteOfDay(hour: stopParts.hour ?? 0, minute: stopParts.minute ?? 0))])
        // A start time half an hour after the stop: the start preflight (30 min ahead) checks the
        // servers due to start against the sale state of their flavor from the start.
        let morning = boundary.addingTimeInterval(29 * 60)
        let startParts = calendar.dateComponents([.hour, .minute], from: morning)
        let morningSchedule = Schedule(
            name: "demo-morning", timeZone: zone,
            periods: [SchedulePeriod(days: .everyDay, start: MinuteOfDay(hour: startParts.hour ?? 0, minute: startParts.minute ?? 0), stop: nil)],
            mode: .startOnly)
        var rules = StuckRules()
        rules.defaultJobDeadline = 20
        rules.taskStateThresholds["powering-off"] = 20
        let settings = WardenSettings(schedules: [schedule.name: schedule, morningSchedule.name: morningSchedule], stuck: rules)
        let intervals: [LoopName: TimeInterval] = [.quota: 10, .stuck: 5, .schedule: 30, .jobs: 2, .flavors: 5, .maintenance: 3600]
        let loops = Dictionary(
            uniqueKeysWithValues: LoopName.allCases.map { ($0.rawValue, LoopTiming(interval: intervals[$0] ?? $0.defaultInterval, jitter: 0)) })
        guard let simulatorURL = URL(string: simulator.endpoint) else {
            FileHandle.standardError.write(Data("ecs-warden demo: the simulator endpoint \(simulator.endpoint) is not a URL\n".utf8))
            await simulator.shutdown()
            return 1
        }
        let environment = ["DEMO_AK": accessKey, "DEMO_SK": secretKey]
        let configuration = DaemonConfiguration(
            source: "(demo)", stateDirectory: stateDirectory, metricsListen: .tcp(host: "127.0.0.1", port: options.metricsPort),
            controlListen: .tcp(host: "127.0.0.1", port: options.controlPort), controlToken: .file(tokenPath),
            accounts: [
                AccountConfiguration(name: "demo", credentials: .accessKey(accessKey: .environment("DEMO_AK"), secretKey: .environment("DEMO_SK"), securityToken: nil))
            ],
            regions: [
                RegionConfiguration(
                    name: "eu-west-0", endpoint: simulatorURL, caBundle: nil, insecureSkipVerify: false,
                    rateLimit: RateLimit(requestsPerSecond: 50, burst: 100), requestTimeout: 10, pageSize: 1000)
            ],
            projects: projectIds.enumerated().map { index, id in
                ProjectConfiguration(name: index == 0 ? "shop-prod" : "shop-dev", id: id, account: "demo", region: "eu-west-0", availabilityZones: nil)
            },
            settings: settings, loops: loops, retention: RetentionPolicy(), logFormat: "text", logLevel: "info")
        let runtime: WardenRuntime
        let lock: StateDirectoryLock
        do {
            lock = try StateDirectoryLock.acquire(directory: stateDirectory)
            let store = try SQLiteStateStore.open(directory: stateDirectory)
            runtime = try WardenRuntime(configuration: configuration, store: store, logger: logger, environment: environment)
        } catch {
            await simulator.shutdown()
            return DaemonRunner.startupFailed(error, prefix: "ecs-warden demo")
        }
        say("simulated region eu-west-0 at \(simulator.endpoint) (admin: \(simulator.endpoint)/_sim/state), 2 projects × 24 servers")
        say("schedule 'demo-evening' stops its servers at \(ISO8601DateFormatter().string(from: boundary)) (\(Int(boundary.timeIntervalSince(now))) s from now)")
        let script = DemoScript(
            region: region, runtime: runtime, projectIds: projectIds, boundary: boundary, duration: options.duration, say: say)
        let code = await DaemonRunner.serve(
            runtime: runtime, configuration: configuration, token: token, configPath: nil, logger: logger, environment: [:],
            extraServices: [script],
            onListening: { kind, address in
                if kind == "metrics" {
                    say("metrics: http://\(address)/metrics")
                } else {
                    say("control API: http://\(address)/v1/status (mutating calls: Authorization: Bearer $(cat \(tokenPath)))")
                }
            }, errorPrefix: "ecs-warden demo")
        await runtime.shutdown()
        await simulator.shutdown()
        lock.release()
        try? FileManager.default.removeItem(atPath: stateDirectory)
        return code
    }
}

/// The demo's scripted events, timed from the start.
final class DemoScript: Service, Sendable {
    let region: SimulatedRegion
    let runtime: WardenRuntime
    let projectIds: [String]
    let boundary: Date
    let duration: TimeInterval?
    let say: @Sendable (String) -> Void

    init(region: SimulatedRegion, runtime: WardenRuntime, projectIds: [String], boundary: Date, duration: TimeInterval?, say: @escaping @Sendable (String) -> Void) {
        self.region = region
        self.runtime = runtime
        self.projectIds = projectIds
        self.boundary = boundary
        self.duration = duration
        self.say = say
    }

    func run() async throws {
        do {
            try await script()
        } catch is CancellationError {
            // Shut down while waiting: nothing left to do.
        }
    }

    private func script() async throws {
        let main = projectIds[0]
        let client = runtime.context.projects[0].client
        // Quota: the project sits just under the warning line; the first pass sees it cross.
        let used = await region.serverIds(projectId: main).count
        try? await region.setQuota(projectId: main, quota: SimQuota(instances: used + 4))
        say("quota of shop-prod set to \(used + 4) instances (\(used) used): expect a warning now and critical soon")
        // Schedule: eight running servers get the schedule tag, one a misspelt schedule name.
        let servers = (try? await client.serverDetails(ServerQuery(status: "ACTIVE")).collect()) ?? []
        for server in servers.prefix(8) {
            try? await client.addServerTags(serverId: server.id, tags: [ServerTag(key: "warden-schedule", value: "demo-evening")])
        }
        if let odd = servers.dropFirst(8).first {
            try? await client.addServerTags(serverId: odd.id, tags: [ServerTag(key: "warden-schedule", value: "demo-evenning")])
        }
        say("tagged 8 running servers warden-schedule=demo-evening, and one with the unknown schedule 'demo-evenning'")
        // Stuck: a reboot job that never finishes, and a server stuck in powering-off behind ACTIVE.
        var faults = SimFaults()
        faults.stickNextJobs = 1
        await region.setFaults(faults)
        let rebootTargets = Array(servers.dropFirst(10).prefix(2)).map(\.id)
        if !rebootTargets.isEmpty, let job = try? await client.batchAction(.reboot(.soft), serverIds: rebootTargets) {
            try? await runtime.stuck.registerExternalJob(project: "shop-prod", jobId: job.jobId, now: Date())
            say("started reboot job \(job.jobId) that will hang (registered for watching): expect it reported stuck after 20 s")
        }
        if let victim = servers.dropFirst(12).first {
            try? await region.setServerState(projectId: main, serverId: victim.id, vmState: "active", taskState: .some("powering-off"), locked: nil)
            say("server \(victim.name) is now stuck in task_state powering-off (status still ACTIVE)")
        }
        // Start preflight: three stopped servers of shop-dev are due to start at the demo-morning
        // boundary, half an hour away; their flavor sells out in their AZ now.
        let dev = runtime.context.projects.count > 1 ? runtime.context.projects[1].client : client
        // Not s3.small.2, which the scenes below sell out and create servers of.
        let devServers = ((try? await dev.serverDetails(ServerQuery(status: "ACTIVE")).collect()) ?? []).filter { $0.flavor?.id != "s3.small.2" }
        // The most common (flavor, AZ) of shop-dev, so that several servers share the fate.
        let groups = Dictionary(grouping: devServers) { "\($0.flavor?.id ?? "")\u{1F}\($0.availabilityZone ?? "")" }
        if let largest = groups.values.max(by: { $0.count < $1.count }), let first = largest.first, let flavor = first.flavor?.id,
            let zone = first.availabilityZone, projectIds.count > 1
        {
            let sameKind = largest.prefix(3)
            for server in sameKind {
                try? await region.setServerState(projectId: projectIds[1], serverId: server.id, vmState: "stopped", taskState: .some(nil), locked: nil)
                try? await dev.addServerTags(serverId: server.id, tags: [ServerTag(key: "warden-schedule", value: "demo-morning")])
            }
            try? await region.setSaleState(flavorId: flavor, az: zone, state: "sellout")
            say("flavor \(flavor) is now sold out in \(zone), where \(sameKind.count) stopped servers of shop-dev are due to start at the demo-morning boundary in 30 min: expect them reported at risk (ecs-warden ctl plan)")
        }
        try await sleep(10)
        try? await region.setSaleState(flavorId: "s3.small.2", az: "eu-west-0b", state: "sellout")
        say("flavor s3.small.2 is now sold out in eu-west-0b")
        try await sleep(10)
        let request = ServerCreateRequest(
            name: "burst", imageRef: FleetGenerator.imageId, flavorRef: "s3.small.2", vpcid: FleetGenerator.vpcId, subnetId: FleetGenerator.subnetId,
            availabilityZone: "eu-west-0a", count: 3)
        if (try? await client.createServers(request)) != nil { say("created 3 servers in shop-prod: the instance quota goes critical") }
        try await sleep(20)
        try? await region.setSaleState(flavorId: "s3.small.2", az: "eu-west-0b", state: nil)
        say("flavor s3.small.2 is back on sale in eu-west-0b")
        if let duration {
            try await sleep(max(0, duration - 40))
            say("demo duration reached; stopping")
            return
        }
        try await gracefulShutdown()
    }

    /// Sleeps, ending early (with `CancellationError`) when the daemon shuts down.
    private func sleep(_ seconds: TimeInterval) async throws {
        try await cancelWhenGracefulShutdown {
            try await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
        }
    }
}
