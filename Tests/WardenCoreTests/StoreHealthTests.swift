import Foundation
import Logging
import Synchronization
import Testing

@testable import WardenCore

/// Log lines at error and notice level, as the journal would show them.
private final class LineCounter: Sendable {
    let lines = Mutex<[(Logger.Level, String)]>([])
    var logger: Logger { Logger(label: "test") { _ in Handler(counter: self) } }

    func count(_ level: Logger.Level, _ text: String) -> Int { lines.withLock { $0.filter { $0.0 == level && $0.1.contains(text) }.count } }

    struct Handler: LogHandler {
        let counter: LineCounter
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
            counter.lines.withLock { $0.append((level, message.description)) }
        }
    }
}

@Suite struct StoreHealthTests {
    /// A store that cannot be written (the daemon's database opened read-only, as a full or
    /// read-only file system leaves it): appends fail, the health says so once per episode, the
    /// gauge is 0; the next append that succeeds ends the episode.
    @Test func anAppendThatFailsMakesTheStoreUnwritableOncePerEpisode() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("warden-health-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let writable = try SQLiteStateStore.open(directory: directory)
        let readOnly = try #require(try SQLiteStateStore.openReadOnly(directory: directory))
        let log = LineCounter()
        let metrics = WardenMetrics()
        let health = StoreHealth(location: writable.location, metrics: metrics, logger: log.logger)
        #expect(health.current == .writable)
        #expect(health.problem == nil)
        #expect(metrics.exposition().contains("ecs_warden_store_writable 1"))

        let failing = HealthReportingStore(base: readOnly, health: health)
        let entry = JournalEntry(at: Date(), kind: .event, loop: "schedule", message: "x")
        for _ in 0..<3 {
            await #expect(throws: (any Error).self) { try await failing.append(entry) }
        }
        let problem = try #require(health.problem)
        #expect(problem.hasPrefix("the state store cannot be written: "))
        #expect(problem.contains("readonly"), "the error is not named: \(problem)")
        #expect(metrics.exposition().contains("ecs_warden_store_writable 0"))
        #expect(log.count(.error, "the state store cannot be written") == 1)
        // Reads still go through.
        #expect(try await failing.lastSequence() == 0)

        let working = HealthReportingStore(base: writable, health: health)
        try await working.append(entry)
        try await working.append(entry)
        #expect(health.current == .writable)
        #expect(metrics.exposition().contains("ecs_warden_store_writable 1"))
        #expect(log.count(.notice, "the state store can be written again") == 1)

        await #expect(throws: (any Error).self) { try await failing.append(entry) }
        #expect(log.count(.error, "the state store cannot be written") == 2)
    }
}

/// Cluster mode: a journal write refused by the fence means the lease moved on, not that the store
/// cannot be written (no "not ready", no `EcsWardenStoreNotWritable`).
@Suite struct FencedWritesAreNotStoreFailuresTests {
    @Test func aFenceRefusalKeepsTheStoreWritable() {
        let health = StoreHealth(location: "postgres://db", metrics: nil, logger: Logger(label: "test"))
        health.appendFailed(ShardError.fenced(ShardFence(shard: .project("p"), node: "warden-b", epoch: 3)))
        #expect(health.current == .writable)
        #expect(health.problem == nil)
        health.appendFailed(StateStoreError.unusableDirectory(path: "/x", reason: "disk full"))
        #expect(health.current != .writable)
    }
}
