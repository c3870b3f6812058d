import AsyncHTTPClient
import ECSSimulator
import NIOCore
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// GETs a URL on loopback: the status and the body.
func fetchStatus(_ url: String) async throws -> (status: Int, body: String) {
    let client = HTTPClient(eventLoopGroupProvider: .singleton)
    do {
        let response = try await client.execute(HTTPClientRequest(url: url), timeout: .seconds(5))
        let body = try await response.body.collect(upTo: 16 << 20)
        try await client.shutdown()
        return (Int(response.status.code), String(buffer: body))
    } catch {
        try? await client.shutdown()
        throw error
    }
}

/// Plain TCP connections to a loopback port that send nothing, as an idle or stuck client holds them.
final class IdleConnections {
    private(set) var descriptors: [Int32] = []
    /// Connections whose connect() failed (refused or timed out).
    private(set) var failedConnects = 0

    init(port: Int, count: Int) {
        for _ in 0..<count {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else {
                failedConnects += 1
                continue
            }
            var timeout = timeval(tv_sec: 3, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            addr.sin_port = in_port_t(UInt16(port).bigEndian)
            let connected = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if connected == 0 {
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
                descriptors.append(fd)
            } else {
                failedConnects += 1
                close(fd)
            }
        }
    }

    private var received: [Int32: [UInt8]] = [:]
    private var ended: Set<Int32> = []

    /// Reads what arrived without waiting: how many connections the daemon closed, and how many
    /// it answered with a 503.
    func peek() -> (closedByPeer: Int, refusedWith503: Int) {
        var buffer = [UInt8](repeating: 0, count: 4096)
        for fd in descriptors where !ended.contains(fd) {
            while true {
                let count = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
                if count > 0 {
                    received[fd, default: []] += buffer[0..<count]
                    continue
                }
                if count == 0 || (errno != EAGAIN && errno != EWOULDBLOCK) { ended.insert(fd) }
                break
            }
        }
        let refused = descriptors.filter { String(decoding: received[$0] ?? [], as: UTF8.self).hasPrefix("HTTP/1.1 503") }.count
        return (ended.count, refused)
    }

    func closeAll() {
        for fd in descriptors { close(fd) }
        descriptors = []
        ended = []
    }

    deinit { closeAll() }
}

/// The daemon in hostile surroundings: a low descriptor limit with hundreds of idle connections,
/// and a state file system that is full at a schedule boundary.
@Suite(.serialized) struct HostileSurroundingsTests {
    let directory: URL
    let environment = ["SIM_AK": "HOSTAK", "SIM_SK": "host-secret"]

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("warden-hostile-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    func simulator(serversPerProject: Int = 4, scheduledShare: Double = 0, schedules: [String] = ["office-hours"]) async throws
        -> (SimulatedRegion, SimulatorServer, [String])
    {
        let region = SimulatedRegion(configuration: SimRegionConfiguration(accessKeys: ["HOSTAK": "host-secret"], speed: 1, seed: 11))
        let ids = await FleetGenerator(projects: 1, serversPerProject: serversPerProject, scheduledShare: scheduledShare, schedules: schedules, seed: 11)
            .populate(region)
        return (region, try await SimulatorServer.start(region: region), ids)
    }

    func writeConfig(stateDir: String, metricsPort: Int, controlPort: Int, endpoint: String, projectId: String, listen: String = "", extra: String = "", scheduleInterval: String = "1h") throws -> String {
        let text = """
            state_dir: \(stateDir)
            listen: {metrics: "127.0.0.1:\(metricsPort)", control: "127.0.0.1:\(controlPort)"\(listen)}
            accounts: [{name: sim, access_key: {env: SIM_AK}, secret_key: {env: SIM_SK}}]
            regions: [{name: eu-west-0, endpoint: "\(endpoint)", request_timeout: 10s}]
            projects: [{name: p0, id: "\(projectId)", account: sim, region: eu-west-0}]
            loops:
              quota: {interval: 1h}
              stuck: {interval: 1h}
              schedule: {interval: \(scheduleInterval)}
              flavors: {interval: 1h}
              maintenance: {interval: 1h}
            \(extra)
            """
        let path = directory.appendingPathComponent("ecs-warden.yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Waits (bounded) until `condition` holds; returns whether it did.
    func eventually(timeout: TimeInterval, _ condition: () async -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return await condition()
    }

    func openDescriptors(of pid: Int32) -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
    }

    /// 300 idle connections to each listener of a daemon limited to 128 descriptors: it stays up,
    /// within its descriptors, refuses what is over each listener's cap with a 503 (one log line
    /// per listener), closes the idle ones after the idle timeout, and answers /healthz again.
    @Test(.timeLimit(.minutes(2))) func idleConnectionsUnderALowDescriptorLimit() async throws {
        guard FileManager.default.isExecutableFile(atPath: wardenBinary) else {
            Issue.record("ecs-warden is not built at \(wardenBinary)")
            return
        }
        let (_, server, ids) = try await simulator()
        defer { try? FileManager.default.removeItem(at: directory) }
        let metricsPort = freePort()
        let controlPort = freePort()
        let config = try writeConfig(
            stateDir: directory.appendingPathComponent("state").path, metricsPort: metricsPort, controlPort: controlPort, endpoint: server.endpoint,
            projectId: ids[0], listen: ", idle_timeout: 3s")
        let daemon = try DaemonProcess(
            arguments: ["-c", "ulimit -n 128 && exec \"$0\" \"$@\"", wardenBinary, "run", "--config", config, "--log-level", "notice"],
            environment: environment, directory: directory, name: "fd")
        daemon.process.executableURL = URL(fileURLWithPath: "/bin/sh")
        defer { daemon.finish() }
        try daemon.start()
        #expect(await daemon.notify.wait(for: "READY=1", timeout: 30) != nil, "not ready: \(daemon.stderr)")
        #expect(daemon.stderr.contains("the descriptor limit (128) leaves room for 24 connections per listener"), "\(daemon.stderr)")

        let metrics = IdleConnections(port: metricsPort, count: 300)
        let control = IdleConnections(port: controlPort, count: 300)
        defer {
            metrics.closeAll()
            control.closeAll()
        }
        print("idle connections opened: metrics \(metrics.descriptors.count) (\(metrics.failedConnects) failed), control \(control.descriptors.count) (\(control.failedConnects) failed)")
        // Everything over the cap (24) is refused with a 503, at most 8 at a time per listener.
        var counts = (metrics: metrics.peek(), control: control.peek())
        let refusedAll = await eventually(timeout: 10) {
            counts = (metrics.peek(), control.peek())
            return counts.metrics.refusedWith503 >= 276 && counts.control.refusedWith503 >= 276
        }
        print("refused with 503: metrics \(counts.metrics.refusedWith503), control \(counts.control.refusedWith503); daemon descriptors \(openDescriptors(of: daemon.pid))")
        #expect(refusedAll, "over-cap connections were not refused: \(counts)")
        #expect(counts.metrics.refusedWith503 == 276 && counts.control.refusedWith503 == 276, "more than the cap refused: \(counts)")
        #expect(daemon.process.isRunning, "the daemon died: \(daemon.stderr)")

        // The idle timeout (3 s) closes the 24 held on each listener.
        let allClosed = await eventually(timeout: 15) {
            counts = (metrics.peek(), control.peek())
            return counts.metrics.closedByPeer == metrics.descriptors.count && counts.control.closedByPeer == control.descriptors.count
        }
        #expect(allClosed, "idle connections were not closed by the daemon: \(counts)")
        #expect(daemon.process.isRunning, "the daemon died: \(daemon.stderr)")
        metrics.closeAll()
        control.closeAll()

        // Serving again on both listeners.
        let health = await eventually(timeout: 10) {
            let m = try? await fetchStatus("http://127.0.0.1:\(metricsPort)/healthz")
            let c = try? await fetchStatus("http://127.0.0.1:\(controlPort)/healthz")
            return m?.status == 200 && c?.status == 200
        }
        #expect(health, "/healthz does not answer 200 after the idle connections closed: \(daemon.stderr)")
        let stderr = daemon.stderr
        let capLines = stderr.split(whereSeparator: \.isNewline).filter { $0.contains("connections open, its cap") }
        #expect(capLines.count == 2, "expected one cap line per listener: \(capLines)")
        #expect(capLines.contains { $0.contains("metrics listener") } && capLines.contains { $0.contains("control listener") })
        // Refusals in flight are bounded too: accept() never ran out of descriptors.
        #expect(!stderr.contains("cannot accept connections"), "accept() ran out of descriptors: \(stderr)")
        #expect(stderr.split(whereSeparator: \.isNewline).filter { $0.contains("below its cap again") }.count == 2, "\(stderr)")
        kill(daemon.pid, SIGTERM)
        let exited = await daemon.waitForExit(timeout: 15)
        #expect(exited != nil, "still running 15 s after SIGTERM")
        if exited != nil { #expect(daemon.process.terminationStatus == 0, "\(daemon.stderr)") }
        await server.shutdown()
    }

    /// Whether a size-limited tmpfs can be mounted here (root, and a kernel that lets us).
    static let canMountTmpfs: Bool = {
        let probe = FileManager.default.temporaryDirectory.appendingPathComponent("warden-mount-probe-\(UUID().uuidString.prefix(8))").path
        try? FileManager.default.createDirectory(atPath: probe, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: probe) }
        guard run("/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", probe]) == 0 else { return false }
        return run("/bin/umount", [probe]) == 0
    }()

    @discardableResult
    static func run(_ tool: String, _ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Writes zeros into `path` until the file system is full; returns the bytes written.
    func fill(_ path: String) -> Int {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        let chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var total = 0
        while true {
            let written = chunk.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if written <= 0 { break }
            total += written
        }
        return total
    }

    /// The state directory on a full file system at a stop boundary: no stop call is made, the
    /// daemon is not ready and says why (the store, the error), `ecs_warden_store_writable` is 0,
    /// and the episode is one log line. Once space is freed: ready again, and the boundary is acted
    /// on within its grace.
    @Test(.timeLimit(.minutes(4)), .enabled(if: canMountTmpfs, "needs root to mount a size-limited tmpfs"))
    func aFullStateFileSystemMeansNoCallAndNotReady() async throws {
        guard FileManager.default.isExecutableFile(atPath: wardenBinary) else {
            Issue.record("ecs-warden is not built at \(wardenBinary)")
            return
        }
        let (region, server, ids) = try await simulator(serversPerProject: 6, scheduledShare: 1, schedules: ["boundary"])
        let stateDir = directory.appendingPathComponent("state").path
        try FileManager.default.createDirectory(atPath: stateDir, withIntermediateDirectories: true)
        try #require(Self.run("/bin/mount", ["-t", "tmpfs", "-o", "size=8m", "tmpfs", stateDir]) == 0, "cannot mount a tmpfs on \(stateDir)")
        defer {
            Self.run("/bin/umount", ["-l", stateDir])
            try? FileManager.default.removeItem(at: directory)
        }
        var running: [String] = []
        for id in await region.serverIds(projectId: ids[0]) where await region.inspectServer(projectId: ids[0], serverId: id)?.status == "ACTIVE" {
            running.append(id)
        }
        try #require(!running.isEmpty, "the seeded fleet has no running server to stop")
        // The stop boundary: the first whole minute at least 25 s ahead (UTC).
        let now = Date().timeIntervalSince1970
        let boundary = Date(timeIntervalSince1970: ((now + 25) / 60).rounded(.up) * 60)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? .gmt
        let parts = calendar.dateComponents([.hour, .minute], from: boundary)
        let stop = String(format: "%02d:%02d", parts.hour ?? 0, parts.minute ?? 0)
        let metricsPort = freePort()
        let controlPort = freePort()
        let config = try writeConfig(
            stateDir: stateDir, metricsPort: metricsPort, controlPort: controlPort, endpoint: server.endpoint, projectId: ids[0],
            extra: """
                schedules:
                  boundary:
                    timezone: UTC
                    periods: [{days: every day, stop: "\(stop)"}]
                """, scheduleInterval: "5s")
        let daemon = try DaemonProcess(
            arguments: ["run", "--config", config, "--log-level", "notice"], environment: environment, directory: directory, name: "full")
        defer { daemon.finish() }
        try daemon.start()
        #expect(await daemon.notify.wait(for: "READY=1", timeout: 30) != nil, "not ready: \(daemon.stderr)")
        let readyz = "http://127.0.0.1:\(metricsPort)/readyz"
        #expect(await eventually(timeout: 30) { (try? await fetchStatus(readyz))?.status == 200 }, "never ready: \(daemon.stderr)")

        // The CLI preview reads the daemon's store while the daemon runs.
        let preview = Process()
        preview.executableURL = URL(fileURLWithPath: wardenBinary)
        preview.arguments = ["schedule", "preview", "--config", config, "--hours", "1"]
        preview.environment = environment
        let previewOutput = Pipe()
        preview.standardOutput = previewOutput
        preview.standardError = previewOutput
        try preview.run()
        let previewText = String(decoding: previewOutput.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        preview.waitUntilExit()
        #expect(preview.terminationStatus == 0, "schedule preview failed beside the daemon: \(previewText)")
        #expect(previewText.contains("STOP  \(running.count) servers  schedule boundary"), "\(previewText)")

        // Fill the state file system before the boundary.
        let filler = (stateDir as NSString).appendingPathComponent("filler")
        let filled = fill(filler)
        print("filled the 8 MiB state file system with \(filled) bytes, \(boundary.timeIntervalSinceNow) s before the boundary")
        #expect(boundary.timeIntervalSinceNow > 5, "the boundary came while filling")

        // Past the boundary, and at least two passes that tried to act: not ready, naming the store.
        var answer: (status: Int, body: String)?
        let notReady = await eventually(timeout: max(0, boundary.timeIntervalSinceNow) + 30) {
            answer = try? await fetchStatus(readyz)
            return answer?.status == 503 && answer?.body.contains("the state store cannot be written") == true
        }
        #expect(notReady, "/readyz did not report the store: \(String(describing: answer)); \(daemon.stderr)")
        #expect(answer?.body.contains("full") == true, "the error is not named: \(String(describing: answer))")
        #expect(Date() >= boundary)
        let partialPasses = #/ecs_warden_loop_runs_total\{loop="schedule",result="partial"\} (\d+)/#
        var metrics = ""
        let twoAttempts = await eventually(timeout: 30) {
            metrics = (try? await fetch("http://127.0.0.1:\(metricsPort)/metrics")) ?? ""
            return (metrics.firstMatch(of: partialPasses).flatMap { Int($0.1) } ?? 0) >= 2
        }
        #expect(twoAttempts, "fewer than two passes tried to act: \(metrics)")
        #expect(metrics.contains("ecs_warden_store_writable 0"), "\(metrics)")
        let stops = await region.requests().filter { $0.operation == "BatchStopServers" }
        #expect(stops.isEmpty, "a stop call went out although its intent could not be journaled: \(stops)")
        let unwritableLines = daemon.stderr.split(whereSeparator: \.isNewline).filter { $0.contains("the state store cannot be written") }
        #expect(unwritableLines.count == 1, "expected one line for the episode: \(unwritableLines)")
        print("while full: \(metrics.firstMatch(of: partialPasses).map { String($0.1) } ?? "?") passes without acting, \(stops.count) stop calls, /readyz \(answer?.status ?? 0): \(answer?.body ?? "")")

        // Space again: ready, the gauge at 1, and the boundary acted on within its grace.
        try FileManager.default.removeItem(atPath: filler)
        let freed = Date()
        var stopped: [String] = []
        let acted = await eventually(timeout: 60) {
            stopped = await region.requests().filter { $0.operation == "BatchStopServers" }.map(\.operation)
            return !stopped.isEmpty
        }
        #expect(acted, "the boundary was not acted on after space was freed: \(daemon.stderr)")
        print("stop call \(Date().timeIntervalSince(freed)) s after space was freed, \(Date().timeIntervalSince(boundary)) s after the boundary (grace 3600 s)")
        #expect(Date().timeIntervalSince(boundary) < 3600)
        #expect(await eventually(timeout: 30) { (try? await fetchStatus(readyz))?.status == 200 }, "not ready again: \(daemon.stderr)")
        #expect(try await fetch("http://127.0.0.1:\(metricsPort)/metrics").contains("ecs_warden_store_writable 1"))
        let stderr = daemon.stderr
        #expect(stderr.split(whereSeparator: \.isNewline).filter { $0.contains("the state store can be written again") }.count == 1, "\(stderr)")
        let stillStopping = await eventually(timeout: 30) {
            var all = true
            for id in running where await region.inspectServer(projectId: ids[0], serverId: id)?.status != "SHUTOFF" { all = false }
            return all
        }
        #expect(stillStopping, "not every running server of the schedule was stopped")
        #expect(await region.requests().filter { $0.operation == "BatchStopServers" }.count == 1, "stopped more than once")
        kill(daemon.pid, SIGTERM)
        #expect(await daemon.waitForExit(timeout: 15) != nil)
        await server.shutdown()
    }
}
