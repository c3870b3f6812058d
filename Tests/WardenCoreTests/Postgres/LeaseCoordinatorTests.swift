import Foundation
import Logging
import PostgresNIO
import Testing
import WardenCore

@testable import WardenPostgres

/// The lease coordinator against a real PostgreSQL: fair shares, takeover under a new epoch only
/// after expiry, local deadlines, work cancelled on loss, voluntary release, leaving.
@Suite(.enabled(if: PostgresHarness.enabled), .serialized)
struct LeaseCoordinatorTests {
    static let shards = (1...10).map { ShardID.project("p\($0)") }

    static func coordinator(
        _ store: PostgresStateStore, _ node: String, ttl: Duration = .seconds(3), shards: [ShardID] = shards, metrics: WardenMetrics = WardenMetrics()
    ) -> LeaseCoordinator {
        LeaseCoordinator(
            client: store.client, settings: LeaseSettings(node: node, ttl: ttl), shards: { shards },
            metrics: ClusterMetrics(metrics: metrics, node: node), logger: PostgresHarness.logger)
    }

    /// Two processes of node "a" with every shard, the second started later; each beats twice, so
    /// the second has found the first and stands by.
    static func secondStandingBy(_ store: PostgresStateStore, ttl: Duration) async -> (first: LeaseCoordinator, second: LeaseCoordinator) {
        let first = coordinator(store, "a", ttl: ttl)
        let second = coordinator(store, "a", ttl: ttl)
        for _ in 0..<2 {
            await first.round()
            await second.round()
        }
        return (first, second)
    }

    static func holders(_ store: PostgresStateStore) async throws -> [String: (holder: String?, epoch: Int64, live: Bool)] {
        var result: [String: (String?, Int64, Bool)] = [:]
        let rows = try await store.client.query("SELECT shard, holder, epoch, (holder IS NOT NULL AND expires_at > now()) FROM shard_leases")
        for try await (shard, holder, epoch, live) in rows.decode((String, String?, Int64, Bool).self) { result[shard] = (holder, epoch, live) }
        return result
    }

    /// Polls `condition` until it holds or `limit` passes (waiting for a lease to expire is waiting
    /// for time itself).
    static func eventually(within limit: Duration, _ condition: () async throws -> Bool) async throws -> Bool {
        let end = ContinuousClock.now + limit
        while ContinuousClock.now < end {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return try await condition()
    }

    /// Runs 30 s of work (not a call) on `shard` under `coordinator` while `meanwhile` runs; returns
    /// how the work ended ("finished", or the `ShardError` that stopped it).
    static func longWork(
        on shard: ShardID, of coordinator: LeaseCoordinator, meanwhile: @escaping @Sendable () async throws -> Void
    ) async throws -> String? {
        try await withThrowingTaskGroup(of: String?.self) { group -> String? in
            group.addTask {
                do {
                    try await coordinator.whileOwned(shard) { try await Task.sleep(for: .seconds(30)) }
                    return "finished"
                } catch let error as ShardError {
                    return "\(error)"
                }
            }
            group.addTask {
                try await meanwhile()
                return nil
            }
            var answer: String?
            for try await value in group where value != nil { answer = value }
            return answer
        }
    }

    @Test func threeNodesTakeFairSharesAndNeverTheSameShard() async throws {
        try await PostgresHarness.withStore { store in
            let nodes = ["a", "b", "c"].map { Self.coordinator(store, $0) }
            // Membership first (a heartbeat each), then claiming rounds.
            for _ in 0..<3 { for node in nodes { await node.round() } }
            let owned = nodes.map { $0.heldShards().count }
            #expect(owned.reduce(0, +) == 10, "every shard owned: \(owned)")
            #expect(owned.allSatisfy { $0 <= LeasePlanner.target(shards: 10, aliveNodes: 3) }, "\(owned)")
            let all = nodes.flatMap { Array($0.heldShards().keys) }
            #expect(Set(all).count == all.count, "a shard held by two nodes")
            let rows = try await Self.holders(store)
            for node in nodes {
                for (shard, epoch) in node.heldShards() {
                    #expect(rows[shard.rawValue]?.holder == node.settings.node)
                    #expect(rows[shard.rawValue]?.epoch == epoch)
                }
            }
        }
    }

    @Test func aCrashedNodesShardsAreTakenOverOnlyAfterExpiryUnderANewEpoch() async throws {
        try await PostgresHarness.withStore { store in
            let a = Self.coordinator(store, "a", ttl: .seconds(2))
            let b = Self.coordinator(store, "b", ttl: .seconds(2))
            await a.round()
            #expect(a.heldShards().count == 10)
            let before = a.heldShards()
            // b joins while a's leases are live: it takes nothing by force (a releases its surplus
            // only in its own rounds, which a "crashed" a no longer runs).
            await b.round()
            #expect(b.heldShards().isEmpty, "a live lease was stolen: \(b.heldShards())")
            // a stops renewing (crash). Its local deadline passes first, then the lease expires.
            #expect(try await Self.eventually(within: .seconds(15)) { a.owns(Self.shards[0]) == false })
            #expect(a.grant(Self.shards[0], needing: .zero) == nil)
            #expect(try await Self.eventually(within: .seconds(15)) {
                await b.round()
                return b.heldShards().count == 10
            })
            for (shard, epoch) in b.heldShards() { #expect(epoch == (before[shard] ?? 0) + 1, "\(shard): epoch \(epoch)") }
            // a's fenced write under its old epoch is refused by the store.
            let stale = ShardFence(shard: Self.shards[0], node: "a", epoch: before[Self.shards[0]] ?? 0)
            await #expect(throws: ShardError.fenced(stale)) {
                try await store.append(JournalEntry(at: Date(), kind: .intent, loop: "schedule", project: "p1", message: "stop", fence: stale))
            }
            let reasons = try await store.client.query("SELECT reason FROM shard_handovers WHERE to_node = 'b'").collect().count
            #expect(reasons == 10)
            // Nor can a deposed node mark a boundary handled for the new owner.
            await #expect(throws: ShardError.fenced(stale)) {
                try await store.setLastHandledBoundary(schedule: "office", project: "p1", boundary: Date(), fence: stale)
            }
            #expect(try await store.lastHandledBoundary(schedule: "office", project: "p1") == nil)
            let current = try #require(b.grant(Self.shards[0], needing: .zero)?.fence)
            let boundary = Date(timeIntervalSince1970: 1_800_000_000)
            try await store.setLastHandledBoundary(schedule: "office", project: "p1", boundary: boundary, fence: current)
            #expect(try await store.lastHandledBoundary(schedule: "office", project: "p1") == boundary)
        }
    }

    /// Renewal and release match a lease by shard and epoch: an expired lease is not revived, and a
    /// lease under another epoch is neither renewed nor released.
    @Test func renewalNeverRevivesAnExpiredLease() async throws {
        try await PostgresHarness.withStore { store in
            let a = Self.coordinator(store, "a", ttl: .seconds(3), shards: [Self.shards[0]])
            await a.round()
            #expect(a.heldShards().count == 1)
            // Nor a live one under another epoch (claimed by another process of the same name),
            // nor is it released.
            let other = a.heldShards().mapValues { $0 + 1 }
            let foreign = try await a.statements.renew(configured: [Self.shards[0].rawValue], held: other, startedAt: nil)
            #expect(foreign.held.isEmpty, "a lease under another epoch was renewed: \(foreign.held)")
            try await a.statements.release(other, reason: "released", leaving: false)
            #expect(try await Self.holders(store)[Self.shards[0].rawValue]?.holder == "a", "a lease under another epoch was released")
            _ = try await store.client.query("UPDATE shard_leases SET expires_at = now() - interval '1 second'").collect()
            let renewal = try await a.statements.renew(configured: [Self.shards[0].rawValue], held: a.heldShards(), startedAt: nil)
            #expect(renewal.held.isEmpty, "an expired lease was renewed: \(renewal.held)")
        }
    }

    @Test func workOnALostShardIsCancelledAtOnce() async throws {
        try await PostgresHarness.withStore { store in
            let a = Self.coordinator(store, "a", ttl: .seconds(3), shards: [Self.shards[0]])
            await a.round()
            let shard = Self.shards[0]
            let started = ContinuousClock.now
            let outcome = try await Self.longWork(on: shard, of: a) {
                // Another node takes the shard over (as after an expiry): a's next renewal misses it.
                _ = try await store.client.query("UPDATE shard_leases SET holder = 'b', epoch = epoch + 1").collect()
                await a.round()
            }
            #expect(outcome == "\(ShardError.lost(shard))")
            // The work would run 30 s: cancelled, not left to finish.
            #expect(ContinuousClock.now - started < .seconds(15))
            #expect(!a.owns(shard))
            #expect(a.grant(shard, needing: .zero) == nil)
        }
    }

    @Test func aJoiningNodeGetsItsShareFromVoluntaryReleases() async throws {
        try await PostgresHarness.withStore { store in
            let a = Self.coordinator(store, "a")
            let b = Self.coordinator(store, "b")
            await a.round()
            #expect(a.heldShards().count == 10)
            await b.round()  // b's heartbeat: a sees two nodes at its next round
            await a.round()  // a releases its surplus
            await b.round()  // b claims the released shards
            #expect(a.heldShards().count == 5)
            #expect(b.heldShards().count == 5)
            let moved = try await store.client.query("SELECT count(*) FROM shard_handovers WHERE reason = 'released' AND to_node = 'b'")
                .collect().count
            #expect(moved <= LeasePlanner.target(shards: 10, aliveNodes: 2))
        }
    }

    @Test func aLeavingNodeHandsEverythingOver() async throws {
        try await PostgresHarness.withStore { store in
            let a = Self.coordinator(store, "a")
            let b = Self.coordinator(store, "b")
            await a.round()
            await b.round()
            await a.handOver()
            #expect(a.heldShards().isEmpty)
            await b.round()
            #expect(b.heldShards().count == 10)
            let left = try await store.client.query("SELECT count(*) FROM shard_handovers WHERE reason = 'left' AND from_node = 'a'")
            for try await count in left.decode(Int64.self) { #expect(count == 5 || count == 10) }
        }
    }

    @Test func grantsNeedMoreLeaseTimeThanTheCall() async throws {
        try await PostgresHarness.withStore { store in
            let a = Self.coordinator(store, "a", ttl: .seconds(3), shards: [Self.shards[0]])
            await a.round()
            let grant = try #require(a.grant(Self.shards[0], needing: .milliseconds(100)))
            #expect(grant.fence?.node == "a")
            #expect((grant.remaining ?? .zero) <= .seconds(2))
            #expect(a.grant(Self.shards[0], needing: .seconds(3)) == nil, "a call longer than the lease left was allowed")
        }
    }

    @Test func aHandOverCancelsPassWorkAtOnceAndWaitsForCallsOnly() async throws {
        try await PostgresHarness.withStore { store in
            // A 30-s lease: a handover that waited for the pass work would wait out the 20-s trust
            // window, far beyond the bound below even on a loaded machine.
            let a = Self.coordinator(store, "a", ttl: .seconds(30), shards: [Self.shards[0]])
            await a.round()
            let shard = Self.shards[0]
            // A long pass (not a call): it must not hold the handover back.
            let outcome = try await Self.longWork(on: shard, of: a) {
                let started = ContinuousClock.now
                await a.handOver()
                #expect(ContinuousClock.now - started < .seconds(10), "the handover waited for pass work")
            }
            #expect(outcome == "\(ShardError.lost(shard))")
            let rows = try await Self.holders(store)
            #expect(rows[shard.rawValue]?.holder == nil, "not released: \(String(describing: rows[shard.rawValue]))")
        }
    }

    @Test func aRestartedNodeDoesNotRenewTheLeasesItsPreviousProcessLeft() async throws {
        try await PostgresHarness.withStore { (store: PostgresStateStore) async throws in
            let first = Self.coordinator(store, "a", ttl: .seconds(2), shards: Array(Self.shards.prefix(3)))
            await first.round()
            let before = first.heldShards()
            #expect(before.count == 3)
            // kill -9, and the same node restarted at once: a new process, nothing held locally.
            let second = Self.coordinator(store, "a", ttl: .seconds(2), shards: Array(Self.shards.prefix(3)))
            await second.round()
            #expect(second.heldShards().isEmpty, "live leases of the dead process were taken without a new epoch")
            // They expire (nobody renews them) and are claimed again under new epochs.
            #expect(try await Self.eventually(within: .seconds(15)) {
                await second.round()
                return second.heldShards().count == 3
            })
            for (shard, epoch) in second.heldShards() { #expect(epoch == (before[shard] ?? 0) + 1) }
        }
    }

    /// Two live processes configured with one node name: once the second has beaten twice, the
    /// one that started later gives its shards up and stands by — holding nothing, not ready,
    /// saying why — and the other keeps its shards. When the first is gone (killed: its heartbeat
    /// ages past the TTL), the one standing by takes part again and claims every shard.
    @Test func aSecondLiveProcessWithTheSameNodeNameStandsBy() async throws {
        try await PostgresHarness.withStore { (store: PostgresStateStore) async throws in
            let first = Self.coordinator(store, "a", ttl: .seconds(3), shards: Array(Self.shards.prefix(5)))
            await first.round()
            #expect(first.heldShards().count == 5)
            let secondMetrics = WardenMetrics()
            let second = Self.coordinator(store, "a", ttl: .seconds(3), metrics: secondMetrics)
            await second.round()
            // Its first beat proves nothing (a restarted node's first beat finds its dead process's
            // write too): it claims the five free shards.
            #expect(second.heldShards().count == 5)
            await first.round()
            #expect(first.heldShards().count == 5)
            #expect(first.readinessProblem() == nil)
            await second.round()
            #expect(second.heldShards().isEmpty, "the later process kept \(second.heldShards())")
            let problem = try #require(second.readinessProblem(), "the process standing by says it is ready")
            #expect(problem.contains("another live process") && problem.contains("pid \(ProcessInfo.processInfo.processIdentifier)"), "\(problem)")
            let rows = try await Self.holders(store)
            for shard in Self.shards.dropFirst(5) { #expect(rows[shard.rawValue]?.holder == nil, "\(shard) not released") }
            for shard in Self.shards.prefix(5) { #expect(rows[shard.rawValue]?.holder == "a" && rows[shard.rawValue]?.live == true) }
            // It does not beat any more: the first goes on undisturbed.
            for _ in 0..<2 {
                await second.round()
                await first.round()
            }
            #expect(first.heldShards().count == 5)
            #expect(second.heldShards().isEmpty)
            // Its gauges stay true while it stands by: the five it gave up have no owner (the
            // first is not configured with them), and it says why it holds nothing.
            var exposition = secondMetrics.exposition()
            #expect(exposition.contains(#"ecs_warden_cluster_node_name_conflict{node="a"} 1.0"#))
            #expect(exposition.contains(#"ecs_warden_cluster_shards_unowned{node="a"} 5.0"#), "\(exposition)")
            #expect(exposition.contains(#"ecs_warden_cluster_nodes_alive{node="a"} 1.0"#))
            // The first is killed (no more rounds): the second takes part again and claims all ten.
            #expect(try await Self.eventually(within: .seconds(15)) {
                await second.round()
                return second.heldShards().count == 10
            })
            #expect(second.readinessProblem() == nil)
            exposition = secondMetrics.exposition()
            #expect(exposition.contains(#"ecs_warden_cluster_node_name_conflict{node="a"} 0.0"#))
        }
    }

    /// A process standing by that stops does not mark the node as left: the node's live process
    /// keeps counting as alive.
    @Test func aProcessStandingByLeavesWithoutMarkingItsNodeLeft() async throws {
        try await PostgresHarness.withStore { (store: PostgresStateStore) async throws in
            let (first, second) = await Self.secondStandingBy(store, ttl: .seconds(3))
            #expect(second.readinessProblem() != nil)
            await second.handOver()
            let left = try await store.client.query("SELECT left_at IS NOT NULL FROM cluster_nodes WHERE name = 'a'").collect()
            #expect(try left.first?.decode(Bool.self) == false, "the node was marked left by the process standing by")
            #expect(first.heldShards().count == 10)
        }
    }

    /// Standing by never cuts a call short: a shard with a call in flight stays held (its lease is
    /// not released, so nobody can take it over) until the call ends, then it is released; work
    /// other than calls is cancelled at once, and no new call is granted.
    @Test func standingByWaitsForCallsInFlightBeforeReleasingTheirShards() async throws {
        try await PostgresHarness.withStore { (store: PostgresStateStore) async throws in
            let first = Self.coordinator(store, "a", ttl: .seconds(30), shards: Array(Self.shards.prefix(5)))
            await first.round()
            let second = Self.coordinator(store, "a", ttl: .seconds(30))
            await second.round()
            let callShard = Self.shards[5]
            let passShard = Self.shards[6]
            #expect(second.owns(callShard) && second.owns(passShard))
            let (gate, open) = AsyncStream<Void>.makeStream()
            let (started, starting) = AsyncStream<String>.makeStream()
            let call = Task {
                try await second.whileOwned(callShard, isCall: true) {
                    starting.yield("call")
                    for await _ in gate {}
                    return "call ended"
                }
            }
            let pass = Task {
                try await second.whileOwned(passShard, isCall: false) {
                    starting.yield("pass")
                    try await Task.sleep(for: .seconds(30))
                    return "pass ended"
                }
            }
            var running: Set<String> = []
            for await name in started {
                running.insert(name)
                if running.count == 2 { break }
            }
            await first.round()
            await second.round()
            #expect(second.readinessProblem() != nil, "not standing by")
            #expect(Set(second.heldShards().keys) == [callShard], "\(second.heldShards())")
            await #expect(throws: ShardError.self) { try await pass.value }
            #expect(second.grant(callShard, needing: .zero) == nil, "a new call was granted while standing by")
            #expect(!second.owns(callShard), "a loop would still start work on the shard kept for its call")
            var rows = try await Self.holders(store)
            #expect(rows[callShard.rawValue]?.holder == "a" && rows[callShard.rawValue]?.live == true, "the shard of a call in flight was released")
            #expect(rows[passShard.rawValue]?.holder == nil)
            open.finish()
            #expect(try await call.value == "call ended")
            await second.round()
            #expect(second.heldShards().isEmpty)
            rows = try await Self.holders(store)
            #expect(rows[callShard.rawValue]?.holder == nil, "not released once its call ended")
        }
    }

    /// The process that started first leaves (SIGTERM): the one standing by takes part again at its
    /// next round, without waiting for the heartbeat to age.
    @Test func whenTheFirstLeavesTheOneStandingByTakesPartAtOnce() async throws {
        try await PostgresHarness.withStore { (store: PostgresStateStore) async throws in
            let (first, second) = await Self.secondStandingBy(store, ttl: .seconds(30))
            #expect(second.readinessProblem() != nil)
            await first.round()
            await first.handOver()
            await second.round()
            #expect(second.readinessProblem() == nil, "still standing by after the first left")
            await second.round()
            #expect(second.heldShards().count == 10)
        }
    }
}
