import Foundation
import Logging
import Synchronization

/// Whether the journal can be written: the daemon is not ready while it cannot, since no
/// mutating call is made without its intent journaled first (a full file system means no stop
/// and no start, and must be loud).
///
/// An append that fails begins an episode: one error line, `ecs_warden_store_writable` 0, and
/// `/readyz` answers 503 naming the store and the error. The next append that succeeds ends it:
/// one line, the gauge back to 1. Failures inside an episode are not logged again (a pass that
/// fails on each of its calls would otherwise log each one).
public final class StoreHealth: Sendable {
    /// What the readiness check reports.
    public enum State: Sendable, Equatable {
        case writable
        /// The last append failed, with this error, first at `since` in this episode.
        case notWritable(error: String, since: Date)
    }

    private let state = Mutex<State>(.writable)
    private let metrics: WardenMetrics?
    private let logger: Logger
    private let location: String

    public init(location: String, metrics: WardenMetrics?, logger: Logger) {
        self.location = location
        self.metrics = metrics
        self.logger = logger
        metrics?.setStoreWritable(true)
    }

    /// The current state.
    public var current: State { state.withLock { $0 } }

    /// Nil while the store can be written; otherwise why it cannot (for `/readyz`).
    public var problem: String? {
        guard case .notWritable(let error, _) = current else { return nil }
        return "the state store cannot be written: \(error)"
    }

    /// An append failed: begins an episode (logged once) or updates the error of the current one.
    public func appendFailed(_ error: any Error, at now: Date = Date()) {
        // A fenced write (cluster mode: the lease moved on) is the store working as it should,
        // not a store that cannot be written.
        if error is ShardError { return }
        let message = "\(error)"
        let began = state.withLock { state -> Bool in
            if case .notWritable(_, let since) = state {
                state = .notWritable(error: message, since: since)
                return false
            }
            state = .notWritable(error: message, since: now)
            return true
        }
        guard began else { return }
        metrics?.setStoreWritable(false)
        logger.error(
            "the state store cannot be written: no mutating call is made until it can (not ready)",
            metadata: ["store": "\(location)", "error": "\(message)"])
    }

    /// An append succeeded: ends an episode (logged once).
    public func appendSucceeded() {
        let ended = state.withLock { state -> Date? in
            guard case .notWritable(_, let since) = state else { return nil }
            state = .writable
            return since
        }
        guard let since = ended else { return }
        metrics?.setStoreWritable(true)
        logger.notice(
            "the state store can be written again",
            metadata: ["store": "\(location)", "unwritable_seconds": "\(Int(Date().timeIntervalSince(since).rounded()))"])
    }
}

/// A store that reports every journal append to a `StoreHealth`, and otherwise forwards to the
/// store it wraps. The daemon wraps its store in one, so every writer of the journal (the action
/// executor's intents and outcomes, events) feeds the readiness check without knowing of it.
public struct HealthReportingStore: StateStore {
    public let base: any StateStore
    public let health: StoreHealth

    public init(base: any StateStore, health: StoreHealth) {
        self.base = base
        self.health = health
    }

    public var location: String { base.location }

    @discardableResult
    public func append(_ entry: JournalEntry) async throws -> Int64 {
        let seq: Int64
        do {
            seq = try await base.append(entry)
        } catch {
            health.appendFailed(error)
            throw error
        }
        health.appendSucceeded()
        return seq
    }

    public func journal(since: Int64, limit: Int, kinds: Set<JournalEntry.Kind>?) async throws -> [JournalEntry] {
        try await base.journal(since: since, limit: limit, kinds: kinds)
    }
    public func entry(seq: Int64) async throws -> JournalEntry? { try await base.entry(seq: seq) }
    public func openIntents(loop: String?) async throws -> [JournalEntry] { try await base.openIntents(loop: loop) }
    public func outcomes(of intentSeq: Int64) async throws -> [JournalEntry] { try await base.outcomes(of: intentSeq) }
    public func lastSequence() async throws -> Int64 { try await base.lastSequence() }
    public func calls(loop: String, since: Date) async throws -> [RecordedCall] { try await base.calls(loop: loop, since: since) }
    public func recordServerOutcomes(_ outcomes: [ServerOutcome]) async throws { try await base.recordServerOutcomes(outcomes) }

    public func beginEpisodes(_ keys: [String], loop: String, at now: Date) async throws -> Set<String> {
        try await base.beginEpisodes(keys, loop: loop, at: now)
    }
    public func endEpisodes(loop: String, prefixes: [String], keeping current: Set<String>) async throws -> [String] {
        try await base.endEpisodes(loop: loop, prefixes: prefixes, keeping: current)
    }
    @discardableResult
    public func endEpisode(_ key: String) async throws -> Bool { try await base.endEpisode(key) }

    public func firstSeen(project: String, states: [ServerStateSighting], now: Date) async throws -> [String: Date] {
        try await base.firstSeen(project: project, states: states, now: now)
    }

    public func saleStates(region: String) async throws -> [SaleKey: SaleStateSince] { try await base.saleStates(region: region) }
    public func recordSaleStates(region: String, states: [SaleKey: String], at now: Date) async throws -> [SaleTransition] {
        try await base.recordSaleStates(region: region, states: states, at: now)
    }
    public func saleTransitions(region: String?, since: Date?, limit: Int) async throws -> [SaleTransition] {
        try await base.saleTransitions(region: region, since: since, limit: limit)
    }

    public func appendQuotaSamples(project: String, samples: [QuotaSample], at now: Date) async throws {
        try await base.appendQuotaSamples(project: project, samples: samples, at: now)
    }
    public func quotaHistory(project: String, resources: [String], since: Date) async throws -> [String: [QuotaReading]] {
        try await base.quotaHistory(project: project, resources: resources, since: since)
    }
    public func quotaLevels(project: String) async throws -> [String: String] { try await base.quotaLevels(project: project) }
    public func setQuotaLevel(project: String, resource: String, level: String) async throws {
        try await base.setQuotaLevel(project: project, resource: resource, level: level)
    }

    public func snooze(_ snooze: Snooze) async throws { try await base.snooze(snooze) }
    @discardableResult
    public func unsnooze(project: String, serverId: String) async throws -> Bool { try await base.unsnooze(project: project, serverId: serverId) }
    public func activeSnoozes(at now: Date) async throws -> [Snooze] { try await base.activeSnoozes(at: now) }
    public func handledBoundaries(projects: [String]) async throws -> [ScheduleMarkKey: Date] {
        try await base.handledBoundaries(projects: projects)
    }
    public func setLastHandledBoundaries(_ marks: [BoundaryMark]) async throws -> [ScheduleMarkKey: any Error] {
        try await base.setLastHandledBoundaries(marks)
    }

    public func watch(_ job: WatchedJob) async throws { try await base.watch(job) }
    public func openJobs() async throws -> [WatchedJob] { try await base.openJobs() }
    public func updateJob(project: String, jobId: String, status: String, jobType: String?, closedAt: Date?, beganAt: Date?) async throws {
        try await base.updateJob(project: project, jobId: jobId, status: status, jobType: jobType, closedAt: closedAt, beganAt: beganAt)
    }

    public func prune(now: Date) async throws { try await base.prune(now: now) }

    public func recordAccepted(_ outcome: JournalEntry, watch job: WatchedJob) async throws -> Int64 {
        do {
            let seq = try await base.recordAccepted(outcome, watch: job)
            health.appendSucceeded()
            return seq
        } catch {
            health.appendFailed(error)
            throw error
        }
    }

    public func recordJobEnd(
        project: String, jobId: String, status: String, jobType: String?, closedAt: Date, beganAt: Date?, serverOutcomes: [ServerOutcome], outcome: JournalEntry
    ) async throws {
        do {
            try await base.recordJobEnd(
                project: project, jobId: jobId, status: status, jobType: jobType, closedAt: closedAt, beganAt: beganAt, serverOutcomes: serverOutcomes,
                outcome: outcome)
            health.appendSucceeded()
        } catch {
            health.appendFailed(error)
            throw error
        }
    }

    public func scheduledStopSuccesses(projects: [String]) async throws -> [String: [String: Date]] {
        try await base.scheduledStopSuccesses(projects: projects)
    }
    public func openSavingsWindows(projects: [String]) async throws -> [SavingsWindow] { try await base.openSavingsWindows(projects: projects) }
    public func openSavingsWindow(_ window: SavingsWindow) async throws -> SavingsWindow { try await base.openSavingsWindow(window) }
    public func recordSavingsProgress(counted: [Int64: Date], closed: [Int64: Date]) async throws {
        try await base.recordSavingsProgress(counted: counted, closed: closed)
    }
    public func latestSavingsWindowStart(projects: [String]) async throws -> [String: [String: Date]] {
        try await base.latestSavingsWindowStart(projects: projects)
    }
    public func savings(since: Date, until: Date) async throws -> [SavingsTotal] { try await base.savings(since: since, until: until) }
}
