import Foundation
import PostgresNIO
import Testing
import WardenCore
import WardenPostgres

/// The store rejects a deposed owner's journal writes (cluster.md, failure test 1): a write is
/// accepted only while its node holds the shard in its epoch, by the database's clock.
@Suite(.enabled(if: PostgresHarness.enabled, "set ECS_WARDEN_TEST_POSTGRES_URL (Tests/Postgres/pg-temp.sh) to run"))
struct PostgresFencingTests {
    static let shard = ShardID.project("p")
    static let t0 = StoreContract.t0

    /// Node `holder` holds `shard` in `epoch` for `seconds` more (negative: expired that long ago).
    static func lease(_ store: PostgresStateStore, holder: String, epoch: Int64, seconds: Int = 60) async throws {
        try await PostgresHarness.holdLease(store, ShardFence(shard: shard, node: holder, epoch: epoch), seconds: seconds)
    }

    static func intent(_ fence: ShardFence?, message: String = "stop") -> JournalEntry {
        JournalEntry(
            at: t0, kind: .intent, loop: "schedule", project: "p", subject: "office", action: "stop", servers: ["a"], result: .pending, message: message,
            fence: fence)
    }

    static func expectFenced(_ fence: ShardFence, _ write: () async throws -> Void) async {
        await #expect(throws: ShardError.fenced(fence)) { try await write() }
    }

    @Test func staleEpochOtherHolderAndExpiredLeaseAreRejected() async throws {
        try await PostgresHarness.withStore { store in
            try await Self.lease(store, holder: "a", epoch: 2)
            let stale = ShardFence(shard: Self.shard, node: "a", epoch: 1)
            let other = ShardFence(shard: Self.shard, node: "b", epoch: 2)
            let unknownShard = ShardFence(shard: .project("q"), node: "a", epoch: 2)
            for fence in [stale, other, unknownShard] {
                await Self.expectFenced(fence) { _ = try await store.append(Self.intent(fence)) }
            }
            #expect(try await store.lastSequence() == 0)
            #expect(try await store.journal(since: 0, limit: 10).isEmpty)

            let current = ShardFence(shard: Self.shard, node: "a", epoch: 2)
            let seq = try await store.append(Self.intent(current))
            #expect(try await store.entry(seq: seq)?.fence == current)

            // The same fence once the lease has expired (by the database's clock): refused.
            try await Self.lease(store, holder: "a", epoch: 2, seconds: -1)
            await Self.expectFenced(current) { _ = try await store.append(Self.intent(current, message: "late")) }
            #expect(try await store.journal(since: 0, limit: 10).map(\.seq) == [seq])
            // Unfenced entries (events, a single node) are written whatever the leases say.
            let event = try await store.append(JournalEntry(at: Self.t0, kind: .event, loop: "quota", message: "crossed"))
            #expect(try await store.entry(seq: event)?.fence == nil)
        }
    }

    @Test func fencedAcceptanceAndJobEndWriteNothing() async throws {
        try await PostgresHarness.withStore { store in
            try await Self.lease(store, holder: "a", epoch: 2)
            let current = ShardFence(shard: Self.shard, node: "a", epoch: 2)
            let intent = try await store.append(Self.intent(current))
            let job = WatchedJob(project: "p", jobId: "j1", jobType: nil, source: "warden", registeredAt: Self.t0, intentSeq: intent)
            let stale = ShardFence(shard: Self.shard, node: "a", epoch: 1)
            func outcome(_ result: ActionResult, _ fence: ShardFence) -> JournalEntry {
                JournalEntry(at: Self.t0, kind: .outcome, loop: "schedule", project: "p", jobId: "j1", result: result, message: "m", intentSeq: intent, fence: fence)
            }

            await Self.expectFenced(stale) { _ = try await store.recordAccepted(outcome(.accepted, stale), watch: job) }
            #expect(try await store.openJobs().isEmpty)
            #expect(try await store.outcomes(of: intent).isEmpty)

            _ = try await store.recordAccepted(outcome(.accepted, current), watch: job)
            #expect(try await store.openJobs() == [job])

            let serverOutcome = ServerOutcome(intentSeq: intent, serverId: "a", result: .success, at: Self.t0)
            await Self.expectFenced(stale) {
                try await store.recordJobEnd(
                    project: "p", jobId: "j1", status: "SUCCESS", jobType: "batchStopServers", closedAt: Self.t0, beganAt: nil,
                    serverOutcomes: [serverOutcome], outcome: outcome(.success, stale))
            }
            // All or nothing: the job is still open, no server outcome, one outcome only.
            #expect(try await store.openJobs().map(\.jobId) == ["j1"])
            #expect(try await store.calls(loop: "schedule", since: Self.t0).first?.serverOutcomes.isEmpty == true)
            #expect(try await store.outcomes(of: intent).map(\.result) == [.accepted])

            try await store.recordJobEnd(
                project: "p", jobId: "j1", status: "SUCCESS", jobType: "batchStopServers", closedAt: Self.t0, beganAt: nil,
                serverOutcomes: [serverOutcome], outcome: outcome(.success, current))
            #expect(try await store.openJobs().isEmpty)
            #expect(try await store.outcomes(of: intent).map(\.result) == [.accepted, .success])
            #expect(try await store.outcomes(of: intent).map(\.fence) == [current, current])
        }
    }

    /// A takeover in progress (the lease row updated, not yet committed) makes a fenced write wait
    /// for its outcome, then refuses it: the check reads the row's latest version under a share
    /// lock, never the stale committed one.
    @Test func aWriteRacingATakeoverWaitsAndIsRefused() async throws {
        try await PostgresHarness.withStore { store in
            try await Self.lease(store, holder: "a", epoch: 2)
            let deposed = ShardFence(shard: Self.shard, node: "a", epoch: 2)
            try await withThrowingTaskGroup(of: Void.self) { group in
                let (updated, updatedContinuation) = AsyncStream.makeStream(of: Void.self)
                group.addTask {
                    try await store.client.withTransaction(logger: PostgresHarness.logger) { connection in
                        _ = try await connection.query(
                            "UPDATE shard_leases SET holder = 'b', epoch = epoch + 1 WHERE shard = \(Self.shard.rawValue)", logger: PostgresHarness.logger
                        ).collect()
                        updatedContinuation.yield()
                        updatedContinuation.finish()
                        try await Task.sleep(for: .milliseconds(400))
                    }
                }
                for await _ in updated { break }
                await Self.expectFenced(deposed) { _ = try await store.append(Self.intent(deposed)) }
                try await group.waitForAll()
            }
            #expect(try await store.lastSequence() == 0)
        }
    }
}
