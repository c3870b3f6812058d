import Foundation
import ServiceLifecycle

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A client of the sd_notify protocol: datagrams such as `READY=1` sent to the unix socket named
/// by `$NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace). No libsystemd needed.
public struct NotifySocket: Sendable {
    /// The socket address as given in `$NOTIFY_SOCKET`.
    public let address: String

    /// The socket of the environment, or nil when not run by systemd (then every send is a no-op).
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> NotifySocket? {
        guard let address = environment["NOTIFY_SOCKET"], !address.isEmpty else { return nil }
        return NotifySocket(address: address)
    }

    public init(address: String) {
        self.address = address
    }

    /// Sends one message (`KEY=value` lines). Errors are returned, not thrown: notification must
    /// never take the daemon down.
    @discardableResult
    public func send(_ message: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        var path = Array(address.utf8)
        let abstract = path.first == UInt8(ascii: "@")
        if abstract { path[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: addr.sun_path)
        guard path.count < capacity else { return false }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (index, byte) in path.enumerated() { raw[index] = byte }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + path.count + (abstract ? 0 : 1))
        let bytes = Array(message.utf8)
        let sent = withUnsafePointer(to: &addr) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bytes.withUnsafeBytes { buffer in
                    sendto(fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL), socketAddress, length)
                }
            }
        }
        return sent == bytes.count
    }

    /// `CLOCK_MONOTONIC` in microseconds (for `RELOADING=1` + `MONOTONIC_USEC`).
    public static func monotonicMicroseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
    }
}

/// Sends READY once the daemon is up, WATCHDOG only while `isHealthy` says every loop is alive,
/// STATUS lines, and STOPPING on shutdown. A free-running watchdog would only prove the process
/// lives; this one proves the loops do.
public final class SystemdNotifier: Service, Sendable {
    private let socket: NotifySocket?
    private let watchdogInterval: Duration?
    private let isHealthy: @Sendable () async -> Bool
    private let status: @Sendable () async -> String
    private let ready: @Sendable () async throws -> Void

    /// - Parameters:
    ///   - socket: nil outside systemd: every call is a no-op.
    ///   - watchdogMicroseconds: `$WATCHDOG_USEC`; pings go out at half of it.
    ///   - waitUntilReady: returns once config, store and listeners are up; throws (e.g.
    ///     `CancellationError`) when start-up failed or was stopped, and then nothing is sent.
    ///   - isHealthy: true while every loop is alive.
    ///   - status: the one-line `STATUS=`.
    public init(
        socket: NotifySocket?, watchdogMicroseconds: UInt64?, waitUntilReady: @escaping @Sendable () async throws -> Void,
        isHealthy: @escaping @Sendable () async -> Bool, status: @escaping @Sendable () async -> String
    ) {
        self.socket = socket
        self.watchdogInterval = watchdogMicroseconds.map { .microseconds(Int64($0 / 2)) }
        self.ready = waitUntilReady
        self.isHealthy = isHealthy
        self.status = status
    }

    /// From `$NOTIFY_SOCKET` and `$WATCHDOG_USEC`.
    public convenience init(
        environment: [String: String] = ProcessInfo.processInfo.environment, waitUntilReady: @escaping @Sendable () async throws -> Void,
        isHealthy: @escaping @Sendable () async -> Bool, status: @escaping @Sendable () async -> String
    ) {
        self.init(
            socket: NotifySocket.fromEnvironment(environment), watchdogMicroseconds: environment["WATCHDOG_USEC"].flatMap(UInt64.init),
            waitUntilReady: waitUntilReady, isHealthy: isHealthy, status: status)
    }

    /// Sends a raw message (e.g. `RELOADING=1`).
    @discardableResult
    public func notify(_ message: String) -> Bool { socket?.send(message) ?? false }

    /// Announces a configuration reload: `RELOADING=1` with the monotonic time.
    public func reloading() {
        notify("RELOADING=1\nMONOTONIC_USEC=\(NotifySocket.monotonicMicroseconds())\nSTATUS=reloading configuration")
    }

    /// Announces the end of a reload.
    public func reloaded(status: String) {
        notify("READY=1\nSTATUS=\(status)")
    }

    public func run() async throws {
        // READY=1 only when start-up completed: a start that fails or is stopped first (the
        // group cancelled or shut down) sends nothing, not even STOPPING=1.
        do {
            try await cancelWhenGracefulShutdown { try await self.ready() }
        } catch {
            return
        }
        notify("READY=1\nSTATUS=\(await status())")
        let interval = watchdogInterval ?? .seconds(10)
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                let healthy = await isHealthy()
                var message = "STATUS=\(await status())"
                if healthy && watchdogInterval != nil { message = "WATCHDOG=1\n" + message }
                notify(message)
                // Ends at once on graceful shutdown: SIGTERM must not wait out a watchdog period.
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            }
        } onGracefulShutdown: {
            self.notify("STOPPING=1\nSTATUS=stopping")
        }
    }
}
