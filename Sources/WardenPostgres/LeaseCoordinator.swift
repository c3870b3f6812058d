import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization
import WardenCore

/// Cluster mode's lease settings (`cluster:` in the configuration).
public struct LeaseSettings: Sendable, Equatable {
    /// This replica's name, unique in the cluster (default: the host name).
    public var node: String
    /// How long a lease lives without renewal (default 15 s).
    public var ttl: Duration

    public init(node: String, ttl: Duration = .seconds(15)) {
        self.node = node
        self.ttl = ttl
    }

    /// Renewals happen every third of the TTL.
    public var renewInterval: Duration { ttl / 3 }
    /// A shard's local deadline: the start of the last successful renewal plus two thirds of the
    /// TTL. The third left is the margin against a slow answer and clock-rate drift.
    public var trustWindow: Duration { ttl * 2 / 3 }
    var ttlSeconds: Double { Double(ttl.components.seconds) + Double(ttl.components.attoseconds) / 1e18 }
}

/// Holds this node's shard leases in PostgreSQL: membership heartbeat and renewal in one statement
/// per interval, fair-share claiming, voluntary release, self-fencing deadlines, and the
/// `ShardOwnership` the loops and the action executor ask before they work or call.
///
/// A shard is owned from a successful claim until its local deadline (anchored at the start of the
/// last successful renewal attempt, plus `trustWindow`), a renewal that no longer returns it, or
/// its release. Work running under `whileOwned` is cancelled at once when the shard is lost.
public final class LeaseCoordinator: ShardOwnership, ClusterStatusSource, ClusterControl, Service, Sendable {
    /// The `LISTEN/NOTIFY` channel: a release, a leaving node, a control-API change.
    public static let channel = "ecs_warden_cluster"

    struct Held {
        var epoch: Int64
        var deadline: ContinuousClock.Instant
        /// Work running on the shard (`whileOwned`), told when the shard is lost; calls are waited
        /// for before a voluntary release or a handover.
        var inFlight: [UUID: Work] = [:]

        var callsInFlight: Bool { inFlight.values.contains(where: \.isCall) }
    }

    struct Work {
        var lost: AsyncStream<Void>.Continuation
        var isCall: Bool
    }

    struct State {
        var held: [ShardID: Held] = [:]
        var registered: Set<ShardID> = []
        var leaving = false
        var renewFailing = false
        var lastRenewal: ContinuousClock.Instant = .now
        var renewalWaiters: [UUID: CheckedContinuation<Void, Never>] = [:]
        /// When this process first beat (database clock), written again with each beat.
        var startedAt: Double?
        /// Whether the last beat was this process's own write: a different writer found at the
        /// next beat is another live process with the same name (after a restart, or standing by,
        /// the first beat finds the old writer and proves nothing).
        var lastBeatWritten = false
        /// Another live process uses this node's name and started first: this one starts no work,
        /// does not beat, gives its shards up, and takes part again once that process is gone.
        var standby: StandbyWatch?
        /// The process standing by under this node's name, once seen (logged once).
        var knownDuplicate: String?

        /// Leaving or standing by: work on the shards other than calls ends at once (calls are
        /// waited for, never cut short).
        mutating func cancelWorkOtherThanCalls() {
            for shard in Array(held.keys) {
                for (id, work) in held[shard]?.inFlight ?? [:] where !work.isCall {
                    work.lost.finish()
                    held[shard]?.inFlight[id] = nil
                }
            }
        }
    }

    public let settings: LeaseSettings
    let statements: LeaseStatements
    let shards: @Sendable () -> [ShardID]
    let releasable: @Sendable (ShardID) -> Bool
    let metrics: ClusterMetrics
    let logger: Logger
    let trigger = LoopTrigger()
    private let state = Mutex(State())
    private let notified: @Sendable (String) async -> Void

    /// - Parameters:
    ///   - client: a running `PostgresClient` (its `run()` in the caller's service group).
    ///   - shards: the configuration's shards (read at every round, so a reload is followed).
    ///   - releasable: whether a surplus shard may be given up now (e.g. no schedule boundary close).
    ///   - notified: told the payload of every notification on the cluster channel (wakes the loops).
    public init(
        client: PostgresClient, settings: LeaseSettings, shards: @escaping @Sendable () -> [ShardID], metrics: ClusterMetrics, logger: Logger,
        releasable: @escaping @Sendable (ShardID) -> Bool = { _ in true }, notified: @escaping @Sendable (String) async -> Void = { _ in }
    ) {
        self.settings = settings
        self.statements = LeaseStatements(client: client, node: settings.node, instance: .current(), ttlSeconds: settings.ttlSeconds, logger: logger)
        self.shards = shards
        self.releasable = releasable
        self.metrics = metrics
        self.logger = logger
        self.notified = notified
    }

    // MARK: ShardOwnership

    public func owns(_ shard: ShardID) -> Bool {
        state.withLock { state in
            // Standing by, nothing counts as owned: no loop starts work on a shard it keeps only
            // until a call in flight ends.
            guard state.standby == nil, let held = state.held[shard] else { return false }
            return held.deadline > .now
        }
    }

    public func grant(_ shard: ShardID, needing callTime: Duration) -> ShardGrant? {
        state.withLock { state -> ShardGrant? in
            guard !state.leaving, state.standby == nil, let held = state.held[shard] else { return nil }
            let remaining = held.deadline - .now
            guard remaining > callTime else { return nil }
            return ShardGrant(fence: ShardFence(shard: shard, node: settings.node, epoch: held.epoch), remaining: remaining)
        }
    }

    public var longestCall: Duration? { settings.trustWindow - settings.renewInterval }

    public func awaitGrant(_ shard: ShardID, needing callTime: Duration) async -> ShardGrant? {
        if let grant = grant(shard, needing: callTime) { return grant }
        guard owns(shard), callTime < settings.trustWindow else { return nil }
        // Owned, but too little time left before the next renewal: wait for it.
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.nextRenewal() }
            group.addTask { try? await Task.sleep(for: self.settings.renewInterval * 2) }
            await group.next()
            group.cancelAll()
        }
        return grant(shard, needing: callTime)
    }

    /// Returns after the next renewal round (or on cancellation).
    private func nextRenewal() async {
        let id = UUID()
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let cancelled = state.withLock { state -> Bool in
                    if Task.isCancelled { return true }
                    state.renewalWaiters[id] = continuation
                    return false
                }
                if cancelled { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.renewalWaiters.removeValue(forKey: id) }?.resume()
        }
    }

    public func whileOwned<T: Sendable>(_ shard: ShardID, isCall: Bool, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let id = UUID()
        let (lost, continuation) = AsyncStream<Void>.makeStream()
        let registered = state.withLock { state -> Bool in
            guard !state.leaving, state.standby == nil, state.held[shard].map({ $0.deadline > .now }) == true else { return false }
            state.held[shard]?.inFlight[id] = Work(lost: continuation, isCall: isCall)
            return true
        }
        guard registered else { throw ShardError.lost(shard) }
        defer {
            state.withLock { _ = $0.held[shard]?.inFlight.removeValue(forKey: id) }
            continuation.finish()
        }
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                for await _ in lost {}
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let value = first else { throw ShardError.lost(shard) }
            return value
        }
    }

    /// The shards held now, with their epochs.
    public func heldShards() -> [ShardID: Int64] {
        state.withLock { state in state.held.filter { $0.value.deadline > .now }.mapValues(\.epoch) }
    }

    // MARK: Service

    /// Runs rounds every renew interval (and at once when another node releases shards) until
    /// graceful shutdown; then waits for calls in flight and hands every shard over.
    public func run() async throws {
        try await withGracefulShutdownHandler {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await self.listen() }
                while !trigger.isShutDown && !Task.isCancelled {
                    // Rounds start every renew interval, however long the last one took.
                    let next = ContinuousClock.now + settings.renewInterval
                    await round()
                    await trigger.wait(until: Date().addingTimeInterval(Self.seconds(next - .now)), clock: SystemClock())
                }
                group.cancelAll()
            }
            await handOver()
        } onGracefulShutdown: {
            self.trigger.shutDown()
        }
    }

    /// One round: renew (and heartbeat), then claim up to the fair share or release the surplus;
    /// or, standing by for another process with this node's name, only look whether it is gone.
    func round() async {
        // Leaving: nothing is renewed or claimed any more.
        guard !state.withLock({ $0.leaving }) else { return }
        if await !standsBy() { await leaseRound() }
        expireLocally()
        metrics.owned(heldShards())
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            defer { state.renewalWaiters = [:] }
            return Array(state.renewalWaiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Whether this process stands by this round: another live process beats under its name. Its
    /// shards whose calls have ended since it stood by are released; it takes part again once the
    /// other process left or no other live process has beaten under the name for a whole TTL.
    private func standsBy() async -> Bool {
        guard var watch = state.withLock({ $0.standby }) else { return false }
        do {
            let configured = shards()
            let owner = try await withTimeout(settings.renewInterval) {
                try await self.statements.heartbeatOwner(configured: configured.map(\.rawValue))
            }
            noteRenewal(ok: true)
            metrics.alive(owner.aliveNodes, unowned: owner.unowned, total: configured.count)
            await releaseShardsWithoutCalls()
            let rejoin = watch.look(
                writer: owner.writer, live: owner.live, left: owner.left, me: statements.instance, at: .now, patience: settings.ttl)
            state.withLock { state in
                state.standby = rejoin ? nil : watch
                if rejoin { state.lastBeatWritten = false }
            }
            guard rejoin else { return true }
            metrics.nameConflict(false)
            logger.notice(
                "no other live process uses this node's name any more; this one takes part in the cluster again",
                metadata: ["node": "\(settings.node)", "other": "\(watch.other.description)"])
            return false
        } catch {
            noteRenewal(ok: false, error: error)
            return true
        }
    }

    /// Finds another live process beating under this node's name (`NodeNameCheck`). The one that
    /// started later stands by: no new work or call starts, work other than calls is cancelled,
    /// the shards without a call in flight are released at once and the others once their calls
    /// end (their leases do not move meanwhile, so nobody can take them over during a call). The
    /// other process says so once and goes on. Returns whether this process now stands by.
    private func standsByAfterBeat(_ renewal: LeaseStatements.Renewal) async -> Bool {
        let (wroteLast, startedAt) = state.withLock { state -> (Bool, Double?) in
            if state.startedAt == nil { state.startedAt = renewal.startedAt }
            defer { state.lastBeatWritten = true }
            return (state.lastBeatWritten, state.startedAt)
        }
        var me = statements.instance
        me.startedAt = startedAt
        switch NodeNameCheck.after(beatReplacing: renewal.previousWriter, wroteLast: wroteLast, me: me) {
        case .alone:
            return false
        case .sharedWithLater(let other):
            let first = state.withLock { state -> Bool in
                defer { state.knownDuplicate = other.id }
                return state.knownDuplicate != other.id
            }
            if first {
                logger.warning(
                    "another live process uses this node's name; it started later and stands by: give each replica its own cluster.node",
                    metadata: ["node": "\(settings.node)", "other": "\(other.description)"])
            }
            return false
        case .sharedWithEarlier(let other):
            let shards = state.withLock { state -> [ShardID]? in
                // Leaving already: the handover gives everything up.
                guard !state.leaving else { return nil }
                state.standby = StandbyWatch(yieldingTo: other)
                state.cancelWorkOtherThanCalls()
                return Array(state.held.keys)
            }
            guard let shards else { return true }
            metrics.nameConflict(true)
            logger.error(
                "another live process uses this node's name and started first: this one gives its shards up and stands by until it is gone; give each replica its own cluster.node",
                metadata: ["node": "\(settings.node)", "other": "\(other.description)", "shards": "\(shards.count)"])
            await releaseShardsWithoutCalls()
            return true
        }
    }

    /// Standing by: releases the shards that have no call in flight (now or since their calls ended).
    private func releaseShardsWithoutCalls() async {
        let idle = state.withLock { state in state.held.filter { !$0.value.callsInFlight }.keys.sorted() }
        guard !idle.isEmpty else { return }
        do {
            try await release(idle, reason: "released")
        } catch {
            // Released locally already (no work, no call); in the database they expire with their leases.
            logger.error(
                "could not release the shards in the database; they expire with their leases",
                metadata: ["error": "\(PostgresStoreError.wrap(error, location: "(leases)"))"])
        }
    }

    /// Renews (and beats), then claims up to the fair share or releases the surplus.
    private func leaseRound() async {
        let configured = shards()
        let names = configured.map(\.rawValue)
        let started = ContinuousClock.now
        do {
            let (held, startedAt) = state.withLock { state in (state.held.mapValues(\.epoch), state.startedAt) }
            let renewal = try await withTimeout(settings.renewInterval) {
                try await self.statements.renew(configured: names, held: held, startedAt: startedAt)
            }
            noteRenewal(ok: true)
            metrics.alive(renewal.aliveNodes, unowned: renewal.unowned, total: configured.count)
            // Before the deadlines move: a process that stands by from this beat grants nothing
            // under a deadline it will no longer renew.
            if await standsByAfterBeat(renewal) { return }
            let lost = apply(renewal, startedAt: started)
            for _ in lost { metrics.handover("lost") }
            if !lost.isEmpty {
                logger.warning("shard leases lost", metadata: ["shards": "\(lost.map(\.rawValue).joined(separator: ","))"])
            }

            let missing = Set(configured).subtracting(state.withLock { $0.registered })
            if !missing.isEmpty {
                try await statements.register(missing.map(\.rawValue).sorted())
                state.withLock { $0.registered.formUnion(missing) }
            }
            let target = LeasePlanner.target(shards: configured.count, aliveNodes: renewal.aliveNodes)
            let owned = state.withLock { Array($0.held.keys) }
            let stale = LeasePlanner.unconfigured(owned: owned, configured: Set(configured))
            if !stale.isEmpty { try await release(stale, reason: "released") }
            let count = owned.count - stale.count
            let claimable = renewal.unowned + (missing.isEmpty ? 0 : missing.count)
            let wanted = LeasePlanner.toClaim(owned: count, target: target, claimable: claimable)
            if wanted > 0 {
                let claimStarted = ContinuousClock.now
                let claimed = try await withTimeout(settings.renewInterval) { try await self.statements.claim(configured: names, limit: wanted) }
                let kept = state.withLock { state -> Bool in
                    // A handover that began meanwhile gave everything up: these go back at once.
                    guard !state.leaving else { return false }
                    for item in claimed { state.held[item.shard] = Held(epoch: item.epoch, deadline: claimStarted + settings.trustWindow) }
                    return true
                }
                if !kept {
                    let epochs = Dictionary(claimed.map { ($0.shard, $0.epoch) }, uniquingKeysWith: max)
                    try await withTimeout(settings.renewInterval) { try await self.statements.release(epochs, reason: "left", leaving: false) }
                    for _ in epochs { metrics.handover("left") }
                    return
                }
                for item in claimed {
                    metrics.handover(item.reason)
                    logger.info("shard claimed", metadata: ["shard": "\(item.shard)", "epoch": "\(item.epoch)", "reason": "\(item.reason)"])
                }
                if !claimed.isEmpty { await notified(ClusterMessage.shardsMoved.payload) }
            } else if count > target {
                let surplus = state.withLock { state in
                    LeasePlanner.toRelease(owned: Array(state.held.keys).filter { !stale.contains($0) }, target: target) { shard in
                        state.held[shard]?.callsInFlight == false && self.releasable(shard)
                    }
                }
                if !surplus.isEmpty { try await release(surplus, reason: "released") }
            }
        } catch {
            noteRenewal(ok: false, error: error)
        }
    }

    /// Applies a renewal: deadlines move for the shards returned; the others are lost (their work
    /// is cancelled). Returns the shards lost.
    func apply(_ renewal: LeaseStatements.Renewal, startedAt: ContinuousClock.Instant) -> [ShardID] {
        state.withLock { state -> [ShardID] in
            var lost: [ShardID] = []
            for (shard, held) in state.held {
                if let epoch = renewal.held[shard], epoch == held.epoch {
                    state.held[shard]?.deadline = startedAt + settings.trustWindow
                } else {
                    lost.append(shard)
                    held.inFlight.values.forEach { $0.lost.finish() }
                    state.held[shard] = nil
                }
            }
            return lost.sorted()
        }
    }

    /// Drops shards whose local deadline passed (no renewal in time): their work is cancelled.
    func expireLocally() {
        let expired = state.withLock { state -> [ShardID] in
            let now = ContinuousClock.now
            let gone = state.held.filter { $0.value.deadline <= now }
            for (shard, held) in gone {
                held.inFlight.values.forEach { $0.lost.finish() }
                state.held[shard] = nil
            }
            return gone.keys.sorted()
        }
        if !expired.isEmpty {
            for _ in expired { metrics.handover("lost") }
            logger.error(
                "shard leases expired locally without a renewal; their work stops", metadata: ["shards": "\(expired.map(\.rawValue).joined(separator: ","))"])
        }
    }

    /// Gives shards up: locally first (no new work), then in the database.
    func release(_ shards: [ShardID], reason: String) async throws {
        let epochs = state.withLock { state -> [ShardID: Int64] in
            var epochs: [ShardID: Int64] = [:]
            for shard in shards {
                guard let held = state.held.removeValue(forKey: shard) else { continue }
                held.inFlight.values.forEach { $0.lost.finish() }
                epochs[shard] = held.epoch
            }
            return epochs
        }
        try await withTimeout(settings.renewInterval) {
            try await self.statements.release(epochs, reason: reason, leaving: false)
        }
        for shard in shards {
            metrics.handover(reason)
            logger.info("shard released", metadata: ["shard": "\(shard)", "reason": "\(reason)"])
        }
    }

    /// Leaving (SIGTERM): no new call starts, work on the shards other than calls is cancelled,
    /// calls in flight end (bounded by their lease deadline), then every shard is handed over and
    /// the other nodes are woken. The daemon calls it as soon as shutdown begins, not after the
    /// loops' passes end: a long pass must not hold the shards back. Once only.
    public func handOver() async {
        let first = state.withLock { state -> Bool in
            defer { state.leaving = true }
            guard !state.leaving else { return false }
            state.cancelWorkOtherThanCalls()
            return true
        }
        guard first else { return }
        let waitUntil = ContinuousClock.now + settings.trustWindow
        while ContinuousClock.now < waitUntil, state.withLock({ state in state.held.values.contains(where: \.callsInFlight) }) {
            try? await Task.sleep(for: .milliseconds(20))
        }
        // Released by shard and epoch: a lease that expired meanwhile and was claimed again, by
        // another node or another process of this name, is left alone.
        let (held, standingBy) = state.withLock { state -> ([ShardID: Int64], Bool) in
            defer { state.held = [:] }
            return (state.held.mapValues(\.epoch), state.standby != nil)
        }
        do {
            // A process standing by leaves the node to the live process that uses its name.
            try await withTimeout(.seconds(3)) {
                try await self.statements.release(held, reason: "left", leaving: !standingBy)
            }
            for _ in held { metrics.handover("left") }
            logger.info("left the cluster; shards handed over", metadata: ["shards": "\(held.count)"])
        } catch {
            logger.error(
                "could not hand the shards over on leaving; they expire with their leases",
                metadata: ["error": "\(PostgresStoreError.wrap(error, location: "(leases)"))"])
        }
        metrics.owned([:])
    }

    /// Listens on the cluster channel and starts a round at once on a notification (another node
    /// released shards or left). Reconnects after a lost connection.
    func listen() async {
        while !Task.isCancelled && !trigger.isShutDown {
            do {
                try await statements.client.withConnection { connection in
                    try await connection.listen(on: Self.channel) { notifications in
                        for try await notification in notifications {
                            self.trigger.kick()
                            await self.notified(notification.payload)
                        }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                logger.debug("cluster listener reconnecting", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    /// False once no renewal has succeeded for `limit`: the node has lost PostgreSQL (the systemd
    /// watchdog is gated on it, so a node cut off for long is restarted).
    public func renewedRecently(within limit: Duration) -> Bool {
        state.withLock { ContinuousClock.now - $0.lastRenewal < limit }
    }

    /// Why this node is not ready: no renewal succeeded for a whole TTL (PostgreSQL lost; it acts on
    /// nothing until a renewal works again), or another live process uses its name. A node that
    /// owns nothing because the others hold every shard is ready.
    public func readinessProblem() -> String? {
        if let other = state.withLock({ $0.standby?.other }) {
            return "cluster: another live process (\(other.description)) uses cluster.node \"\(settings.node)\"; this one stands by and acts on nothing until it is gone"
        }
        return renewedRecently(within: settings.ttl) ? nil : "cluster: no lease renewal for over \(settings.ttl) (PostgreSQL unreachable?); acting on nothing"
    }

    private func noteRenewal(ok: Bool, error: (any Error)? = nil) {
        let wasFailing = state.withLock { state -> Bool in
            if ok { state.lastRenewal = .now }
            defer { state.renewFailing = !ok }
            return state.renewFailing
        }
        if !ok {
            metrics.renewFailed()
            if !wasFailing {
                logger.error(
                    "lease renewal failed; this node stops acting on its shards at their deadlines",
                    metadata: ["error": "\(error.map { "\(PostgresStoreError.wrap($0, location: "(leases)"))" } ?? "-")"])
            }
        } else if wasFailing {
            logger.notice("lease renewal works again")
        }
    }

    // MARK: ClusterStatusSource

    public func clusterStatus() async throws -> ClusterStatus {
        let status = try await statements.status(recentHandovers: 50)
        return ClusterStatus(
            mode: "cluster", node: settings.node, leaseTTLSeconds: settings.ttlSeconds, nodes: status.nodes, leases: status.leases,
            handovers: status.handovers)
    }

    // MARK: ClusterControl

    public func setLoopPaused(_ loop: String, paused: Bool) async throws {
        try await withTimeout(.seconds(5)) { try await self.statements.setLoopPaused(loop, paused: paused) }
    }

    public func runEverywhere(_ loop: String) async throws {
        try await withTimeout(.seconds(5)) { try await self.statements.notify(.run(loop)) }
    }

    public func pausedLoops() async throws -> Set<String> {
        try await withTimeout(.seconds(5)) { try await self.statements.pausedLoops() }
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}

/// Runs `body`, cancelled with `ClusterTimeout` when it has not finished within `limit` (every
/// PostgreSQL call of cluster mode: the store's operations, the lease statements).
public func withTimeout<Value: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> Value) async throws -> Value {
    try await withThrowingTaskGroup(of: Value?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else { throw ClusterTimeout(limit: limit) }
        return value
    }
}

/// A PostgreSQL call of cluster mode took longer than allowed.
public struct ClusterTimeout: Error, CustomStringConvertible {
    public var limit: Duration
    public var description: String { "no answer from PostgreSQL within \(limit)" }
}
