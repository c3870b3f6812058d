import Foundation
import Logging
import PostgresNIO
import Synchronization
import WardenCore
import WardenPostgres

/// Tells the cluster demo's story from the shared database: who owns what, the boundaries acted
/// on (journal intents with their node and epoch), a replica killed and its shards taken over.
struct ClusterDemoObserver: Sendable {
    let url: String
    let logger: Logger

    struct Lease: Sendable {
        var holder: String?
        var epoch: Int64
        var live: Bool
    }

    func narrate(
        replicas: Int, projectIds: [String], first: Date, second: Date, leaseTTL: TimeInterval, duration: TimeInterval?, say: @escaping @Sendable (String) -> Void,
        kill: @escaping @Sendable (String) -> Int32?
    ) async -> Int32 {
        let names = Dictionary(uniqueKeysWithValues: projectIds.enumerated().map { ("project:\($0.element)", "team-\($0.offset + 1)") })
        let interrupted = SignalLatch()
        do {
            let url = try PostgresURL(url)
            var quiet = logger
            quiet.logLevel = .error
            let client = try PostgresStateStore.makeClient(url: url, logger: quiet)
            return try await withThrowingTaskGroup(of: Void.self) { group -> Int32 in
                group.addTask { await client.run() }
                defer { group.cancelAll() }
                func leases() async throws -> [String: Lease] {
                    var result: [String: Lease] = [:]
                    let rows = try await client.query("SELECT shard, holder, epoch, (holder IS NOT NULL AND expires_at > now()) FROM shard_leases")
                    for try await (shard, holder, epoch, live) in rows.decode((String, String?, Int64, Bool).self) {
                        result[shard] = Lease(holder: holder, epoch: epoch, live: live)
                    }
                    return result
                }
                func intents(_ schedule: String) async throws -> [(project: String, node: String, epoch: Int64)] {
                    var result: [(String, String, Int64)] = []
                    let rows = try await client.query(
                        "SELECT project, coalesce(node, '-'), coalesce(epoch, 0) FROM journal WHERE kind = 'intent' AND subject = \(schedule)")
                    for try await (project, node, epoch) in rows.decode((String?, String, Int64).self) { result.append((project ?? "-", node, epoch)) }
                    return result
                }
                func wait(until date: Date) async throws -> Bool {
                    while Date() < date {
                        if interrupted.fired { return false }
                        try await Task.sleep(for: .milliseconds(200))
                    }
                    return true
                }
                // 1. Ownership.
                say("waiting for the replicas to claim the \(projectIds.count + 1) shards (\(projectIds.count) projects, 1 region)…")
                var owned: [String: Lease] = [:]
                let claimDeadline = Date().addingTimeInterval(60)
                while Date() < claimDeadline {
                    // The replicas create the tables as they start: until then, ask again.
                    guard let now = try? await leases() else {
                        try await Task.sleep(for: .milliseconds(300))
                        continue
                    }
                    owned = now
                    // Claimed, and balanced: the first replica up claims everything, then hands the
                    // surplus over as the others join.
                    let share = LeasePlanner.target(shards: projectIds.count + 1, aliveNodes: replicas)
                    let counts = Dictionary(grouping: owned.values.compactMap(\.holder), by: { $0 }).mapValues(\.count)
                    if owned.count == projectIds.count + 1 && owned.values.allSatisfy(\.live) && counts.count == replicas && counts.values.allSatisfy({ $0 <= share }) {
                        break
                    }
                    if interrupted.fired { return 1 }
                    try await Task.sleep(for: .milliseconds(200))
                }
                for (node, shards) in Dictionary(grouping: owned.filter(\.value.live), by: { $0.value.holder ?? "-" }).sorted(by: { $0.key < $1.key }) {
                    say("  \(node) owns \(shards.map { names[$0.key] ?? $0.key }.sorted().joined(separator: ", "))")
                }
                // 2. The first boundary.
                say("first-wave stops its servers at \(ISO8601DateFormatter().string(from: first)) (\(Int(first.timeIntervalSinceNow)) s from now)")
                guard try await wait(until: first.addingTimeInterval(15)) else { return 0 }
                let firstWave = try await intents("first-wave")
                for (node, calls) in Dictionary(grouping: firstWave, by: \.node).sorted(by: { $0.key < $1.key }) {
                    say("  first-wave: \(node) stopped servers in \(Set(calls.map(\.project)).sorted().joined(separator: ", ")) (epoch \(Set(calls.map(\.epoch)).sorted().map(String.init).joined(separator: ",")))")
                }
                // 3. Kill the owner of team-1 shortly before the second boundary.
                guard try await wait(until: second.addingTimeInterval(-20)) else { return 0 }
                let before = try await leases()
                let shard = "project:\(projectIds[0])"
                guard let victim = before[shard]?.holder, let pid = kill(victim) else {
                    say("cannot tell who owns team-1; not killing anyone")
                    return 1
                }
                let killedAt = Date()
                let victimShards = before.filter { $0.value.holder == victim }
                say("kill -9 \(victim) (pid \(pid)), owner of \(victimShards.keys.map { names[$0] ?? $0 }.sorted().joined(separator: ", ")), 20 s before second-wave")
                // 4. Takeover.
                var taken: [String: Lease] = [:]
                while taken.count < victimShards.count && Date() < killedAt.addingTimeInterval(leaseTTL * 3) {
                    let now = try await leases()
                    for (key, lease) in now where victimShards[key] != nil && lease.live && lease.holder != victim { taken[key] = lease }
                    try await Task.sleep(for: .milliseconds(100))
                }
                let takeover = Date().timeIntervalSince(killedAt)
                for (key, lease) in taken.sorted(by: { $0.key < $1.key }) {
                    say("  \(names[key] ?? key) taken over by \(lease.holder ?? "-") (epoch \(victimShards[key]?.epoch ?? 0) → \(lease.epoch))")
                }
                let allTaken = taken.count == victimShards.count
                say(allTaken
                    ? String(format: "all %d shards of %@ owned again %.1f s after the kill (TTL %.0f s)", taken.count, victim, takeover, leaseTTL)
                    : "only \(taken.count) of \(victimShards.count) shards of \(victim) were taken over")
                // 5. The second boundary, acted on once.
                guard try await wait(until: second.addingTimeInterval(20)) else { return 0 }
                let secondWave = try await intents("second-wave")
                let perProject = Dictionary(grouping: secondWave, by: \.project)
                let doubles = perProject.filter { $0.value.count > 1 }
                for (project, calls) in perProject.sorted(by: { $0.key < $1.key }) {
                    say("  second-wave: \(project) stopped by \(calls.map { "\($0.node) (epoch \($0.epoch))" }.joined(separator: ", "))")
                }
                let victimProjects = victimShards.keys.compactMap { names[$0] }
                say(doubles.isEmpty
                    ? "second-wave acted on once in each of \(perProject.count) projects, \(victimProjects.sorted().joined(separator: ", ")) by the new owners; no double action"
                    : "DOUBLE ACTION in \(doubles.keys.sorted().joined(separator: ", "))")
                if let duration {
                    _ = try await wait(until: Date().addingTimeInterval(max(0, duration)))
                } else {
                    say("the cluster keeps running: ecs-warden ctl cluster --url http://127.0.0.1:<control port>; Ctrl-C to stop")
                    _ = try await wait(until: .distantFuture)
                }
                return doubles.isEmpty && allTaken ? 0 : 1
            }
        } catch {
            say("cannot follow the cluster: \(String(reflecting: error))")
            return 1
        }
    }
}

/// Set by SIGINT or SIGTERM: the demo stops its story and cleans up (replicas, PostgreSQL).
final class SignalLatch {
    final class Box: Sendable {
        let value = Mutex(false)
    }

    private let sources: [any DispatchSourceSignal]
    private let box = Box()

    init() {
        let box = self.box
        sources = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { box.value.withLock { $0 = true } }
            source.resume()
            return source
        }
    }

    var fired: Bool { box.value.withLock { $0 } }
}
