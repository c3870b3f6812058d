import ECSSimulator
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A TCP socket listening on a loopback port, as another program holding the port would.
final class OccupiedPort {
    let port: Int
    private let fd: Int32

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, listen(fd, 8) == 0 else {
            close(fd)
            throw POSIXError(.EADDRINUSE)
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        port = Int(UInt16(bigEndian: addr.sin_port))
    }

    deinit { close(fd) }
}

/// The built daemon started as a child process, its stdout and stderr captured to files.
final class DaemonProcess {
    let process = Process()
    let stderrPath: String
    let notify: NotifyReceiver
    private(set) var launchedAt = Date()

    init(arguments: [String], environment: [String: String], directory: URL, name: String) throws {
        notify = try NotifyReceiver()
        stderrPath = directory.appendingPathComponent("\(name).stderr").path
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: wardenBinary)
        process.arguments = arguments
        var env = environment
        env["NOTIFY_SOCKET"] = notify.path
        env["PATH"] = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin"
        process.environment = env
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
    }

    func start() throws {
        launchedAt = Date()
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }

    /// Waits (bounded) for the process to end; returns the seconds since `since`, or nil if it
    /// still runs.
    func waitForExit(timeout: TimeInterval, since: Date? = nil) async -> TimeInterval? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { try? await Task.sleep(for: .milliseconds(10)) }
        guard !process.isRunning else { return nil }
        return Date().timeIntervalSince(since ?? launchedAt)
    }

    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    var readySent: Bool { notify.all.contains { $0.text.contains("READY=1") } }

    /// Ends the process if a test left it running.
    func finish() {
        if process.isRunning {
            kill(pid, SIGKILL)
            process.waitUntilExit()
        }
        notify.stop()
    }
}

/// How soon a start that cannot succeed must end, counted from the launch: below the daemon's 10-s
/// shutdown grace (`DaemonRunner.shutdownGrace`), so a failed start that waits on a service to wind
/// down fails the test; well above what launching the 170 MB debug binary costs on a loaded 2-core
/// CI machine (0.03 s quiet, 3.5 s seen with the whole suite running in parallel), which says
/// nothing about the daemon.
let failedStartExitSeconds: TimeInterval = 9

/// How soon a SIGTERM must end the daemon: below the 8 s the SIGTERM test's pass would otherwise
/// wait for its boundary (and the 10-s shutdown grace), with room for a loaded machine.
let sigtermExitSeconds: TimeInterval = 6

/// Start-up and shutdown of the real binary: a failure to start is one line naming the address or
/// path and the OS reason, a fast non-zero exit and no READY=1; a second instance on one state
/// directory is refused; SIGTERM ends the daemon promptly, also while a pass waits for a schedule
/// boundary, and nothing is acted on.
@Suite(.serialized) struct StartupShutdownTests {
    let directory: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("warden-startup-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    func writeConfig(
        name: String = "ecs-warden.yaml", stateDir: String, metrics: String, control: String, endpoint: String, projectId: String = "0123456789abcdef0123456789abcdef",
        loops: String = "quota: {interval: 1h}\n  stuck: {interval: 1h}\n  schedule: {interval: 1h}\n  flavors: {interval: 1h}\n  maintenance: {interval: 1h}",
        extra: String = ""
    ) throws -> String {
        let text = """
            state_dir: \(stateDir)
            listen: {metrics: "\(metrics)", control: "\(control)"}
            accounts: [{name: sim, access_key: {env: SIM_AK}, secret_key: {env: SIM_SK}}]
            regions: [{name: eu-west-0, endpoint: "\(endpoint)", request_timeout: 10s}]
            projects: [{name: p0, id: "\(projectId)", account: sim, region: eu-west-0}]
            loops:
              \(loops)
            \(extra)
            """
        let path = directory.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    let environment = ["SIM_AK": "STARTAK", "SIM_SK": "start-secret"]

    func simulator(serversPerProject: Int = 4, scheduledShare: Double = 0, schedules: [String] = ["office-hours"]) async throws
        -> (SimulatedRegion, SimulatorServer, [String])
    {
        let region = SimulatedRegion(configuration: SimRegionConfiguration(accessKeys: ["STARTAK": "start-secret"], speed: 1, seed: 7))
        let ids = await FleetGenerator(projects: 1, serversPerProject: serversPerProject, scheduledShare: scheduledShare, schedules: schedules, seed: 7)
            .populate(region)
        return (region, try await SimulatorServer.start(region: region), ids)
    }

    /// Runs the binary with a configuration that cannot start; returns it once ended (or after 15 s,
    /// past the daemon's shutdown grace).
    func failedStart(config: String, name: String) async throws -> (daemon: DaemonProcess, seconds: TimeInterval?) {
        let daemon = try DaemonProcess(
            arguments: ["run", "--config", config, "--log-level", "error"], environment: environment, directory: directory, name: name)
        try daemon.start()
        let seconds = await daemon.waitForExit(timeout: 15)
        return (daemon, seconds)
    }

    @Test(.timeLimit(.minutes(1))) func aTakenMetricsPortEndsTheStartWithOneLineAndNoReady() async throws {
        guard FileManager.default.isExecutableFile(atPath: wardenBinary) else {
            Issue.record("ecs-warden is not built at \(wardenBinary): run swift build first")
            return
        }
        let (region, server, ids) = try await simulator()
        defer { try? FileManager.default.removeItem(at: directory) }
        let taken = try OccupiedPort()
        let config = try writeConfig(
            stateDir: directory.appendingPathComponent("state").path, metrics: "127.0.0.1:\(taken.port)", control: "127.0.0.1:0",
            endpoint: server.endpoint, projectId: ids[0])
        let (daemon, seconds) = try await failedStart(config: config, name: "taken")
        defer { daemon.finish() }
        let stderr = daemon.stderr
        #expect(seconds != nil, "still running 15 s after start with its metrics port taken; stderr: \(stderr)")
        if let seconds { #expect(seconds < failedStartExitSeconds, "took \(seconds) s to exit") }
        if seconds != nil { #expect(daemon.process.terminationStatus != 0) }
        let lines = stderr.split(whereSeparator: \.isNewline)
        #expect(lines.count == 1, "expected one line on stderr, got: \(stderr)")
        #expect(stderr.contains("127.0.0.1:\(taken.port)"), "the address is not named: \(stderr)")
        #expect(stderr.contains("metrics"))
        #expect(stderr.contains("Address already in use (errno \(EADDRINUSE))"), "the OS reason is not given: \(stderr)")
        // Give a late READY=1 a moment to arrive before checking there was none.
        try await Task.sleep(for: .milliseconds(200))
        #expect(!daemon.readySent, "READY=1 was sent although a listener failed")
        // The loops never started: not one call reached the API.
        #expect(await region.requests().isEmpty, "the loops called the API before the listeners were bound")
        await server.shutdown()
    }

    @Test(.timeLimit(.minutes(1))) func unusableControlSocketAndStateDirectoryAreNamed() async throws {
        guard FileManager.default.isExecutableFile(atPath: wardenBinary) else {
            Issue.record("ecs-warden is not built at \(wardenBinary)")
            return
        }
        defer { try? FileManager.default.removeItem(at: directory) }
        // A unix control socket in a directory that does not exist.
        let socketPath = directory.appendingPathComponent("missing/control.sock").path
        let socketConfig = try writeConfig(
            name: "socket.yaml", stateDir: directory.appendingPathComponent("state").path, metrics: "127.0.0.1:0", control: "unix:\(socketPath)",
            endpoint: "http://127.0.0.1:9")
        let (socketDaemon, socketSeconds) = try await failedStart(config: socketConfig, name: "socket")
        defer { socketDaemon.finish() }
        #expect(socketSeconds.map { $0 < failedStartExitSeconds } == true, "no prompt exit: \(socketDaemon.stderr)")
        #expect(socketDaemon.stderr.contains(socketPath) && socketDaemon.stderr.contains("(errno \(ENOENT))"), "\(socketDaemon.stderr)")
        #expect(!socketDaemon.readySent)
        // A state directory below a regular file.
        let file = directory.appendingPathComponent("a-file")
        try Data("x".utf8).write(to: file)
        let stateConfig = try writeConfig(
            name: "state.yaml", stateDir: file.appendingPathComponent("state").path, metrics: "127.0.0.1:0", control: "127.0.0.1:0",
            endpoint: "http://127.0.0.1:9")
        let (stateDaemon, stateSeconds) = try await failedStart(config: stateConfig, name: "state")
        defer { stateDaemon.finish() }
        #expect(stateSeconds.map { $0 < failedStartExitSeconds } == true, "no prompt exit: \(stateDaemon.stderr)")
        #expect(stateDaemon.process.isRunning || stateDaemon.process.terminationStatus != 0)
        #expect(stateDaemon.stderr.contains(file.appendingPathComponent("state").path), "\(stateDaemon.stderr)")
        #expect(stateDaemon.stderr.contains("Not a directory (errno \(ENOTDIR))"), "\(stateDaemon.stderr)")
        #expect(stateDaemon.stderr.split(whereSeparator: \.isNewline).count == 1, "\(stateDaemon.stderr)")
    }

    @Test(.timeLimit(.minutes(1))) func aSecondInstanceOnTheSameStateDirectoryIsRefused() async throws {
        guard FileManager.default.isExecutableFile(atPath: wardenBinary) else {
            Issue.record("ecs-warden is not built at \(wardenBinary)")
            return
        }
        let (_, server, ids) = try await simulator()
        defer { try? FileManager.default.removeItem(at: directory) }
        let stateDir = directory.appendingPathComponent("state").path
        let metricsPort = freePort()
        let first = try DaemonProcess(
            arguments: [
                "run", "--config",
                try writeConfig(
                    name: "first.yaml", stateDir: stateDir, metrics: "127.0.0.1:\(metricsPort)", control: "127.0.0.1:0", endpoint: server.endpoint,
                    projectId: ids[0]),
                "--log-level", "error",
            ], environment: environment, directory: directory, name: "first")
        defer { first.finish() }
        try first.start()
        #expect(await first.notify.wait(for: "READY=1", timeout: 30) != nil, "the first instance did not get ready: \(first.stderr)")
        // Other ports, the same state directory.
        let secondConfig = try writeConfig(
            name: "second.yaml", stateDir: stateDir, metrics: "127.0.0.1:0", control: "127.0.0.1:0", endpoint: server.endpoint, projectId: ids[0])
        let (second, seconds) = try await failedStart(config: secondConfig, name: "second")
        defer { second.finish() }
        let stderr = second.stderr
        #expect(seconds.map { $0 < failedStartExitSeconds } == true, "the second instance did not exit promptly: \(stderr)")
        if seconds != nil { #expect(second.process.terminationStatus != 0) }
        #expect(stderr.contains(stateDir), "the state directory is not named: \(stderr)")
        #expect(stderr.contains("pid \(first.pid)"), "the holder's pid is not named: \(stderr)")
        #expect(stderr.split(whereSeparator: \.isNewline).count == 1, "\(stderr)")
        #expect(!second.readySent)
        // The first keeps running and serving.
        #expect(first.process.isRunning)
        #expect(try await fetch("http://127.0.0.1:\(metricsPort)/metrics").contains("ecs_warden_build_info"))
        kill(first.pid, SIGTERM)
        #expect(await first.waitForExit(timeout: 10) != nil)
        #expect(first.process.terminationStatus == 0)
        await server.shutdown()
    }

    /// The schedule loop reads the fleet seconds before a boundary and its pass waits for it; a
    /// SIGTERM then ends the daemon at once, with status 0, and the boundary is not acted on.
    @Test(.timeLimit(.minutes(3))) func sigtermWhileAPassWaitsForABoundaryExitsPromptlyWithoutActing() async throws {
        guard FileManager.default.isExecutableFile(atPath: wardenBinary) else {
            Issue.record("ecs-warden is not built at \(wardenBinary)")
            return
        }
        let (region, server, ids) = try await simulator(serversPerProject: 6, scheduledShare: 1, schedules: ["boundary"])
        defer { try? FileManager.default.removeItem(at: directory) }
        var running = 0
        for id in await region.serverIds(projectId: ids[0]) where await region.inspectServer(projectId: ids[0], serverId: id)?.status == "ACTIVE" {
            running += 1
        }
        try #require(running > 0, "the seeded fleet has no running server to stop")
        // The stop boundary: the first whole minute at least 20 s ahead (UTC).
        let now = Date().timeIntervalSince1970
        let boundary = Date(timeIntervalSince1970: ((now + 20) / 60).rounded(.up) * 60)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? .gmt
        let parts = calendar.dateComponents([.hour, .minute], from: boundary)
        let stop = String(format: "%02d:%02d", parts.hour ?? 0, parts.minute ?? 0)
        let controlPort = freePort()
        let config = try writeConfig(
            stateDir: directory.appendingPathComponent("state").path, metrics: "127.0.0.1:0", control: "127.0.0.1:\(controlPort)",
            endpoint: server.endpoint, projectId: ids[0],
            extra: """
                schedules:
                  boundary:
                    timezone: UTC
                    periods: [{days: every day, stop: "\(stop)"}]
                """)
        let daemon = try DaemonProcess(
            arguments: ["run", "--config", config, "--log-level", "error"], environment: environment, directory: directory, name: "boundary")
        defer { daemon.finish() }
        try daemon.start()
        #expect(await daemon.notify.wait(for: "READY=1", timeout: 30) != nil, "not ready: \(daemon.stderr)")
        // The pass reads at least 10 s ahead and then waits for the boundary: SIGTERM 8 s before it.
        let signalAt = boundary.addingTimeInterval(-8)
        try await Task.sleep(for: .milliseconds(Int64(max(0, signalAt.timeIntervalSinceNow) * 1000)))
        let loops = try await fetch("http://127.0.0.1:\(controlPort)/v1/loops")
        let schedule = try #require(
            (try JSONSerialization.jsonObject(with: Data(loops.utf8)) as? [[String: Any]])?.first { $0["name"] as? String == "schedule" })
        try #require(schedule["running"] as? Bool == true, "the schedule pass is not waiting for the boundary: \(schedule)")
        let signalled = Date()
        kill(daemon.pid, SIGTERM)
        let seconds = await daemon.waitForExit(timeout: 20, since: signalled)
        #expect(seconds != nil, "still running 20 s after SIGTERM")
        if let seconds {
            #expect(seconds < sigtermExitSeconds, "took \(seconds) s to stop after SIGTERM")
            #expect(daemon.process.terminationStatus == 0, "\(daemon.stderr)")
        }
        #expect(daemon.notify.all.contains { $0.text.contains("STOPPING=1") })
        // Past the boundary, nothing was stopped.
        try await Task.sleep(for: .milliseconds(Int64(max(0, boundary.timeIntervalSinceNow + 2) * 1000)))
        let stops = await region.requests().filter { $0.operation == "BatchStopServers" }
        #expect(stops.isEmpty, "the boundary was acted on after SIGTERM: \(stops)")
        await server.shutdown()
    }
}
