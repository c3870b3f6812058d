import Foundation
import Logging
import NIOCore
import NIOEmbedded
import Synchronization
import Testing

@testable import WardenDaemon

/// Collects log lines, as the journal would show them.
final class CollectedLog: Sendable {
    let lines = Mutex<[(level: Logger.Level, message: String)]>([])

    var logger: Logger {
        Logger(label: "test") { _ in CollectingHandler(log: self) }
    }

    func count(_ level: Logger.Level, containing text: String) -> Int {
        lines.withLock { $0.filter { $0.level == level && $0.message.contains(text) }.count }
    }
}

struct CollectingHandler: LogHandler {
    let log: CollectedLog
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
        log.lines.withLock { $0.append((level, message.description)) }
    }
}

@Suite struct ListenerLimitsTests {
    @Test func theCapLeavesTheReserveUnderTheDescriptorLimit() {
        #expect(ListenerLimits.effectiveCap(configured: 256, listeners: 2, descriptorLimit: nil) == 256)
        #expect(ListenerLimits.effectiveCap(configured: 256, listeners: 2, descriptorLimit: 16_384) == 256)
        #expect(ListenerLimits.effectiveCap(configured: 256, listeners: 2, descriptorLimit: 1024) == 256)
        // (128 - 64 reserved) / 2 listeners - 8 refusals in flight.
        #expect(ListenerLimits.effectiveCap(configured: 256, listeners: 2, descriptorLimit: 128) == 24)
        #expect(ListenerLimits.acceptLimit(cap: 24) == 32)
        #expect(ListenerLimits.effectiveCap(configured: 10, listeners: 2, descriptorLimit: 128) == 10)
        // Never below one: a listener that accepts nothing would be worse than a crowded one.
        #expect(ListenerLimits.effectiveCap(configured: 256, listeners: 2, descriptorLimit: 32) == 1)
    }

    @Test func theKeysAreReadAndRangeChecked() throws {
        let base = """
            accounts: [{name: a, access_key: {env: AK}, secret_key: {env: SK}}]
            regions: [{name: r, endpoint: "http://127.0.0.1:1"}]
            projects: [{name: p, id: "0123", account: a, region: r}]

            """
        let defaults = try ConfigLoader.parse(base, file: "t.yaml", environment: [:])
        #expect(defaults.listenerLimits == ListenerLimits(idleTimeout: 60, maxConnections: 256))
        let set = try ConfigLoader.parse(base + "listen: {idle_timeout: 2s, max_connections: 10}\n", file: "t.yaml", environment: [:])
        #expect(set.listenerLimits == ListenerLimits(idleTimeout: 2, maxConnections: 10))
        for bad in ["listen: {idle_timeout: 0s}", "listen: {idle_timeout: 2h}", "listen: {max_connections: 0}", "listen: {max_connections: 70000}"] {
            #expect(throws: ConfigErrors.self, "\(bad) was accepted") { try ConfigLoader.parse(base + bad + "\n", file: "t.yaml", environment: [:]) }
        }
    }

    @Test func reachingTheCapIsLoggedOncePerEpisode() {
        let log = CollectedLog()
        let cap = ConnectionCap(listener: "metrics", limit: 2, logger: log.logger)
        #expect(cap.tryOpen() && cap.tryOpen())
        #expect(!cap.tryOpen())
        #expect(!cap.tryOpen())
        #expect(log.count(.warning, containing: "metrics listener: 2 connections open, its cap") == 1)
        cap.closed()
        #expect(log.count(.notice, containing: "below its cap again; accepting connections (2 refused meanwhile)") == 1)
        #expect(cap.tryOpen())
        #expect(!cap.tryOpen())
        #expect(log.count(.warning, containing: "its cap") == 2)
        #expect(cap.openConnections == 2)
    }

    @Test func aRefusedConnectionGetsA503AndIsClosed() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(RefusingHandler(listener: "control", limit: 32))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let written = try #require(try channel.readOutbound(as: ByteBuffer.self))
        let text = String(buffer: written)
        #expect(text.hasPrefix("HTTP/1.1 503 Service Unavailable\r\n"))
        #expect(text.contains("\"too_many_connections\""))
        #expect(text.contains("Content-Length: \(text.split(separator: "\r\n\r\n").last?.utf8.count ?? -1)\r\n"))
        #expect(!channel.isActive, "the refused connection stays open")
    }

    /// accept() failing for want of descriptors: one error line when it begins, one notice when
    /// accepting again, at most one error line a minute under a flood; the error goes on to NIO's
    /// accept backoff.
    @Test func acceptRunningOutOfDescriptorsIsLoggedOncePerEpisode() throws {
        let log = CollectedLog()
        let loop = EmbeddedEventLoop()
        let channel = EmbeddedChannel(loop: loop)
        try channel.pipeline.syncOperations.addHandler(AcceptFailureReporter(listener: "metrics", logger: log.logger))
        /// An accept() that fails; the error goes on down the pipeline (to NIO's accept backoff).
        func acceptFails(_ code: Int32) {
            channel.pipeline.fireErrorCaught(IOError(errnoCode: code, reason: "accept"))
            #expect(throws: IOError.self) { try channel.throwIfErrorCaught() }
        }
        for _ in 0..<50 { acceptFails(EMFILE) }
        #expect(log.count(.error, containing: "metrics listener: cannot accept connections: Too many open files (errno \(EMFILE))") == 1)
        try channel.writeInbound(EmbeddedChannel() as any Channel)
        #expect(log.count(.notice, containing: "metrics listener: accepting connections again") == 1)
        // A flood: failing and accepting in turn, within the minute: no more lines.
        for _ in 0..<20 {
            acceptFails(ENFILE)
            try channel.writeInbound(EmbeddedChannel() as any Channel)
        }
        #expect(log.count(.error, containing: "cannot accept connections") == 1)
        #expect(log.count(.notice, containing: "accepting connections again") == 1)
        // A minute later, the next episode is logged, with the count of those in between.
        loop.advanceTime(by: .seconds(61))
        acceptFails(EMFILE)
        #expect(log.count(.error, containing: "cannot accept connections: Too many open files (errno \(EMFILE)) (20 more times since the last such line)") == 1)
        try channel.writeInbound(EmbeddedChannel() as any Channel)
        #expect(log.count(.notice, containing: "accepting connections again") == 2)
        // Other errors are not this episode's.
        acceptFails(ECONNABORTED)
        #expect(log.count(.error, containing: "cannot accept connections") == 2)
    }
}
