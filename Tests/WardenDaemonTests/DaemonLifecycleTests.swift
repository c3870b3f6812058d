import AsyncHTTPClient
import ECSSimulator
import NIOCore
import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Receives sd_notify datagrams on a socket the test binds, as systemd would.
final class NotifyReceiver: Sendable {
    let path: String
    private let fd: Int32
    private let messages = Mutex<[(at: Date, text: String)]>([])
    private let stopped = Mutex(false)

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("notify-\(UUID().uuidString.prefix(8)).sock").path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
        }
        let result = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard result == 0 else { throw POSIXError(.EADDRINUSE) }
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let socketFD = self.fd
        Thread.detachNewThread { [self] in
            var buffer = [UInt8](repeating: 0, count: 4096)
            while !self.stopped.withLock({ $0 }) {
                let count = recv(socketFD, &buffer, buffer.count, 0)
                if count > 0 {
                    let text = String(decoding: buffer[0..<count], as: UTF8.self)
                    self.messages.withLock { $0.append((Date(), text)) }
                }
            }
        }
    }

    func stop() {
        stopped.withLock { $0 = true }
        close(fd)
        unlink(path)
    }

    var all: [(at: Date, text: String)] { messages.withLock { $0 } }

    /// Waits (bounded) for a message containing `needle` after index `from`; returns its index.
    func wait(for needle: String, after from: Int = 0, timeout: TimeInterval = 30) async -> Int? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let current = all
            if from < current.count, let index = current[from...].firstIndex(where: { $0.text.contains(needle) }) { return index }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return nil
    }
}

/// The built `ecs-warden` binary, next to the test bundle (or `$ECS_WARDEN_BINARY`, e.g. to run
/// these tests against another build).
let wardenBinary: String = {
    if let override = ProcessInfo.processInfo.environment["ECS_WARDEN_BINARY"], !override.isEmpty { return override }
    var url = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for _ in 0..<4 where !FileManager.default.fileExists(atPath: url.appendingPathComponent("ecs-warden").path) {
        url.deleteLastPathComponent()
    }
    return url.appendingPathComponent("ecs-warden").path
}()

func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return Int(UInt16(bigEndian: addr.sin_port))
}

@Suite(.serialized) struct DaemonLifecycleTests {
    /// The whole daemon under a fake systemd: READY, WATCHDOG only while every loop is alive,
    /// RELOADING/READY on SIGHUP (an invalid reload rejected), STOPPING on SIGTERM, clean exit.
    @Test(.timeLimit(.minutes(3))) func notifyProtocolAcrossTheLifecycle() async throws {
        guard FileManager.default.isExecutableFile(atPath: wardenBinary) else {
            Issue.record("ecs-warden is not built at \(wardenBinary): run swift build first")
            return
        }
        let region = SimulatedRegion(configuration: SimRegionConfiguration(accessKeys: ["LIFEAK": "life-secret"], speed: 1, seed: 3))
        let ids = await FleetGenerator(projects: 1, serversPerProject: 10, seed: 3).populate(region)
        let simulator = try await SimulatorServer.start(region: region)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("warden-life-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let metricsPort = freePort()
        let controlPort = freePort()
        func config(extra: String = "") -> String {
            """
            state_dir: \(directory.path)/state
            listen: {metrics: "127.0.0.1:\(metricsPort)", control: "127.0.0.1:\(controlPort)"}
            accounts: [{name: sim, access_key: {env: SIM_AK}, secret_key: {env: SIM_SK}}]
            regions: [{name: eu-west-0, endpoint: "\(simulator.endpoint)", request_timeout: 60s}]
            projects: [{name: p0, id: "\(ids[0])", account: sim, region: eu-west-0}]
            loops:
              quota: {interval: 1s, deadline: 2s}
              stuck: {interval: 1s, deadline: 2s}
              schedule: {interval: 1s, deadline: 2s}
              flavors: {interval: 1s, deadline: 2s}
            \(extra)
            """
        }
        let configPath = directory.appendingPathComponent("ecs-warden.yaml").path
        try config().write(toFile: configPath, atomically: true, encoding: .utf8)
        let notify = try NotifyReceiver()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: wardenBinary)
        process.arguments = ["run", "--config", configPath, "--log-level", "warning"]
        process.environment = [
            "NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "1000000", "SIM_AK": "LIFEAK", "SIM_SK": "life-secret",
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin",
        ]
        let logPath = directory.appendingPathComponent("daemon.log").path
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = log
        process.standardError = log
        try process.run()
        defer {
            if process.isRunning { process.terminate() }
            notify.stop()
            try? FileManager.default.removeItem(at: directory)
        }

        let ready = await notify.wait(for: "READY=1")
        #expect(ready != nil, "no READY=1")
        let firstPing = await notify.wait(for: "WATCHDOG=1", after: ready ?? 0)
        #expect(firstPing != nil, "no WATCHDOG=1 while healthy")

        // Hang every loop: answers take 5 s, passes have a 2 s deadline → not alive → no WATCHDOG.
        var faults = SimFaults()
        faults.latencyMs = 5000
        await region.setFaults(faults)
        try await Task.sleep(for: .milliseconds(3500))
        let hangStart = Date()
        try await Task.sleep(for: .milliseconds(1500))
        let pingsWhileHung = notify.all.filter { $0.at >= hangStart && $0.text.contains("WATCHDOG=1") }
        #expect(pingsWhileHung.isEmpty, "WATCHDOG=1 was sent while loops were hung")
        #expect(notify.all.last { $0.at >= hangStart }?.text.contains("not alive") == true)
        await region.setFaults(SimFaults())
        let mark = notify.all.count
        #expect(await notify.wait(for: "WATCHDOG=1", after: mark, timeout: 20) != nil, "WATCHDOG=1 did not resume")

        // An invalid reload is rejected and counted; RELOADING then READY all the same.
        try "loops: {quota: {interval: banana}}\n".write(toFile: configPath, atomically: true, encoding: .utf8)
        let beforeBad = notify.all.count
        kill(process.processIdentifier, SIGHUP)
        let reloading = await notify.wait(for: "RELOADING=1", after: beforeBad)
        #expect(reloading != nil)
        if let reloading { #expect(notify.all[reloading].text.contains("MONOTONIC_USEC=")) }
        #expect(await notify.wait(for: "READY=1", after: reloading ?? beforeBad) != nil)
        let metrics = try await fetch("http://127.0.0.1:\(metricsPort)/metrics")
        #expect(metrics.contains(#"ecs_warden_config_reloads_total{result="rejected"} 1"#))
        #expect(process.isRunning)

        // A valid reload is applied.
        try config().write(toFile: configPath, atomically: true, encoding: .utf8)
        let beforeGood = notify.all.count
        kill(process.processIdentifier, SIGHUP)
        #expect(await notify.wait(for: "configuration reloaded", after: beforeGood) != nil)
        #expect(try await fetch("http://127.0.0.1:\(metricsPort)/metrics").contains(#"ecs_warden_config_reloads_total{result="applied"} 1"#))

        // SIGTERM: STOPPING=1 and a clean exit.
        let beforeStop = notify.all.count
        process.terminate()
        #expect(await notify.wait(for: "STOPPING=1", after: beforeStop) != nil)
        for _ in 0..<200 where process.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!process.isRunning)
        #expect(process.terminationStatus == 0)
        let output = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        #expect(!output.contains("life-secret"), "the secret key appeared in the logs")
        await simulator.shutdown()
    }
}

/// GETs a URL on loopback.
func fetch(_ url: String) async throws -> String {
    let client = HTTPClient(eventLoopGroupProvider: .singleton)
    do {
        let response = try await client.execute(HTTPClientRequest(url: url), timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 16 << 20)
        try await client.shutdown()
        return String(buffer: body)
    } catch {
        try? await client.shutdown()
        throw error
    }
}
