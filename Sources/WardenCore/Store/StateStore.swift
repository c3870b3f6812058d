import Foundation

/// The durable state the loops need, one protocol for every backend: `SQLiteStateStore` (embedded,
/// the default) and, in cluster mode, a shared database. Every implementation passes the same
/// contract suite (`StoreContract` in the tests).
///
/// Guarantees every implementation keeps: journal sequence numbers only grow and are never reused;
/// an intent is durable before `append` returns (a call is made only after that); stored results
/// and kinds are values of their closed sets, and a value outside them is an error on read, never
/// a guess; nothing is reset silently — a damaged or newer store is an error.
public protocol StateStore: Sendable {
    /// Where the state lives (a file path, `:memory:`, a database URL without its secret).
    var location: String { get }

    // MARK: Journal

    /// Appends an entry and returns its sequence number.
    @discardableResult
    func append(_ entry: JournalEntry) async throws -> Int64
    /// Entries with a sequence number above `since`, oldest first, at most `limit`, of `kinds` (all when nil).
    func journal(since: Int64, limit: Int, kinds: Set<JournalEntry.Kind>?) async throws -> [JournalEntry]
    /// One entry by its sequence number.
    func entry(seq: Int64) async throws -> JournalEntry?
    /// Intents without any outcome (of `loop`, or of every loop): the work to resolve at start.
    func openIntents(loop: String?) async throws -> [JournalEntry]
    /// The outcomes recorded for an intent, oldest first.
    func outcomes(of intentSeq: Int64) async throws -> [JournalEntry]
    /// The highest sequence number so far (0 when empty).
    func lastSequence() async throws -> Int64
    /// The calls of `loop` (intents and dry-run entries) written at or after `since`, oldest first,
    /// each with its state and the per-server outcomes of its job.
    func calls(loop: String, since: Date) async throws -> [RecordedCall]
    /// Records how each server's sub-job ended (idempotent per intent and server).
    func recordServerOutcomes(_ outcomes: [ServerOutcome]) async throws
    /// Appends the `accepted` outcome of a call and starts following its job, in one transaction.
    @discardableResult
    func recordAccepted(_ outcome: JournalEntry, watch job: WatchedJob) async throws -> Int64
    /// Closes a job, records its per-server outcomes and appends the intent's outcome, in one
    /// transaction (all or nothing: a job left open is closed again later).
    func recordJobEnd(
        project: String, jobId: String, status: String, jobType: String?, closedAt: Date, beganAt: Date?, serverOutcomes: [ServerOutcome], outcome: JournalEntry
    ) async throws

    // MARK: Episodes

    /// Marks the start of episodes (a server stuck, a tag error…), in one transaction; returns the
    /// keys that are new, so each episode's event is written once, also across restarts.
    func beginEpisodes(_ keys: [String], loop: String, at now: Date) async throws -> Set<String>
    /// Ends the episodes of `loop` whose key starts with one of `prefixes` and is not in `current`,
    /// in one transaction; returns the keys ended, sorted.
    func endEpisodes(loop: String, prefixes: [String], keeping current: Set<String>) async throws -> [String]
    /// Ends one episode; true when it was open.
    @discardableResult
    func endEpisode(_ key: String) async throws -> Bool

    // MARK: First seen

    /// Records the (status, task_state) pairs of a project's watched servers and returns when each
    /// pair was first seen (a new pair starts a new clock); servers not listed are forgotten.
    func firstSeen(project: String, states: [ServerStateSighting], now: Date) async throws -> [String: Date]

    // MARK: Sale states

    /// The current sale states of a region.
    func saleStates(region: String) async throws -> [SaleKey: SaleStateSince]
    /// Writes a region's observed states; returns the transitions (first observations included, and
    /// a transition to `SaleStateResolver.absent` for a flavor or AZ no longer listed).
    func recordSaleStates(region: String, states: [SaleKey: String], at now: Date) async throws -> [SaleTransition]
    /// Transitions at or after `since` (of `region`, or of all), the newest `limit`, oldest first.
    func saleTransitions(region: String?, since: Date?, limit: Int) async throws -> [SaleTransition]

    // MARK: Quota

    /// Appends one sample per resource.
    func appendQuotaSamples(project: String, samples: [QuotaSample], at now: Date) async throws
    /// The samples of each of `resources` since `since` (resource → readings, oldest first), in one read.
    func quotaHistory(project: String, resources: [String], since: Date) async throws -> [String: [QuotaReading]]
    /// The threshold levels last recorded for a project (resource → level).
    func quotaLevels(project: String) async throws -> [String: String]
    /// Records a resource's threshold level.
    func setQuotaLevel(project: String, resource: String, level: String) async throws

    // MARK: Snoozes and boundary marks

    /// Stores (or replaces) a snooze.
    func snooze(_ snooze: Snooze) async throws
    /// Removes a snooze; true if there was one.
    @discardableResult
    func unsnooze(project: String, serverId: String) async throws -> Bool
    /// Snoozes still in force at `now`.
    func activeSnoozes(at now: Date) async throws -> [Snooze]
    /// The last boundary of each schedule handled in each of `projects`, in one read.
    func handledBoundaries(projects: [String]) async throws -> [ScheduleMarkKey: Date]
    /// Records the last boundary handled of each mark's schedule in its project; a mark with a
    /// `fence` (cluster mode) only while that node still holds the project's lease in that epoch.
    /// A backend that writes the marks in one transaction (SQLite) throws when it fails (nothing
    /// written); one that writes each in a transaction of its own (PostgreSQL, for its fence)
    /// returns the marks not written and why (`ShardError.fenced`, or the failure of that write),
    /// so the caller knows exactly which were.
    func setLastHandledBoundaries(_ marks: [BoundaryMark]) async throws -> [ScheduleMarkKey: any Error]

    // MARK: Watched jobs

    /// Starts following a job (idempotent).
    func watch(_ job: WatchedJob) async throws
    /// Jobs not yet closed, oldest first.
    func openJobs() async throws -> [WatchedJob]
    /// Updates a job's last seen status; closes it when `closedAt` is set.
    func updateJob(project: String, jobId: String, status: String, jobType: String?, closedAt: Date?, beganAt: Date?) async throws

    // MARK: Savings

    /// The servers of `projects` whose latest scheduled stop succeeded, with when (from the
    /// per-server outcomes of the scheduler's stop calls): project → server id → date, in one read.
    func scheduledStopSuccesses(projects: [String]) async throws -> [String: [String: Date]]
    /// The stop windows of `projects` still open, in one read.
    func openSavingsWindows(projects: [String]) async throws -> [SavingsWindow]
    /// Opens a window (a server stopped by its schedule); returns it with its id.
    @discardableResult
    func openSavingsWindow(_ window: SavingsWindow) async throws -> SavingsWindow
    /// Records, in one transaction, that windows were counted into the counters up to a date
    /// (window id → until) and closes windows at a date (window id → at; the server was seen
    /// running, or gone).
    func recordSavingsProgress(counted: [Int64: Date], closed: [Int64: Date]) async throws
    /// The latest window of each server of `projects` (open or closed): project → server id → start.
    func latestSavingsWindowStart(projects: [String]) async throws -> [String: [String: Date]]
    /// What the schedules saved between `since` and `until`, per schedule and flavor.
    func savings(since: Date, until: Date) async throws -> [SavingsTotal]

    // MARK: Retention

    /// Removes history beyond the retention policy. Open intents are never removed.
    func prune(now: Date) async throws
}

extension StateStore {
    /// Entries with a sequence number above `since` (all kinds unless told), oldest first.
    public func journal(since: Int64 = 0, limit: Int = 1000) async throws -> [JournalEntry] {
        try await journal(since: since, limit: limit, kinds: nil)
    }

    /// Entries of `kinds` with a sequence number above `since`, oldest first.
    public func journal(since: Int64 = 0, limit: Int = 1000, kinds: Set<JournalEntry.Kind>) async throws -> [JournalEntry] {
        try await journal(since: since, limit: limit, kinds: Optional(kinds))
    }

    /// Intents without any outcome, of every loop.
    public func openIntents() async throws -> [JournalEntry] {
        try await openIntents(loop: nil)
    }

    /// Records the last boundary of `schedule` handled in `project` (a single node: no fence).
    public func setLastHandledBoundary(schedule: String, project: String, boundary: Date) async throws {
        try await setLastHandledBoundary(schedule: schedule, project: project, boundary: boundary, fence: nil)
    }

    /// Records the last boundary of `schedule` handled in `project`; with a `fence` only while that
    /// node still holds the project's lease in that epoch (else throws `ShardError.fenced`).
    public func setLastHandledBoundary(schedule: String, project: String, boundary: Date, fence: ShardFence?) async throws {
        let refused = try await setLastHandledBoundaries([BoundaryMark(schedule: schedule, project: project, boundary: boundary, fence: fence)])
        if let error = refused.values.first { throw error }
    }

    /// Marks the start of an episode; true when it is new.
    public func beginEpisode(_ key: String, loop: String, at now: Date) async throws -> Bool {
        try await beginEpisodes([key], loop: loop, at: now).contains(key)
    }

    /// Ends the episodes of `loop` whose key starts with `prefix` and is not in `current`.
    public func endEpisodes(loop: String, prefix: String, keeping current: Set<String>) async throws -> [String] {
        try await endEpisodes(loop: loop, prefixes: [prefix], keeping: current)
    }

    /// A resource's samples since `since`, oldest first.
    public func quotaHistory(project: String, resource: String, since: Date) async throws -> [QuotaReading] {
        try await quotaHistory(project: project, resources: [resource], since: since)[resource] ?? []
    }

    /// The last boundary of `schedule` handled in `project`.
    public func lastHandledBoundary(schedule: String, project: String) async throws -> Date? {
        try await handledBoundaries(projects: [project])[ScheduleMarkKey(schedule: schedule, project: project)]
    }

    /// The servers of `project` whose latest scheduled stop succeeded, with when.
    public func scheduledStopSuccesses(project: String) async throws -> [String: Date] {
        try await scheduledStopSuccesses(projects: [project])[project] ?? [:]
    }

    /// The stop windows of `project` still open.
    public func openSavingsWindows(project: String) async throws -> [SavingsWindow] {
        try await openSavingsWindows(projects: [project])
    }

    /// The latest window of each server of `project` (open or closed), by server id.
    public func latestSavingsWindowStart(project: String) async throws -> [String: Date] {
        try await latestSavingsWindowStart(projects: [project])[project] ?? [:]
    }

    /// Closes a window at `at` (the server was seen running, or gone).
    public func closeSavingsWindow(id: Int64, at: Date) async throws {
        try await recordSavingsProgress(counted: [:], closed: [id: at])
    }

    /// Records that a window was counted into the counters up to `until`.
    public func markSavingsCounted(id: Int64, until: Date) async throws {
        try await recordSavingsProgress(counted: [id: until], closed: [:])
    }

    /// Transitions of every region, the newest 1,000.
    public func saleTransitions() async throws -> [SaleTransition] {
        try await saleTransitions(region: nil, since: nil, limit: 1000)
    }
}

/// A boundary of a schedule handled in a project, and the lease it is written under (cluster mode).
public struct BoundaryMark: Sendable, Equatable {
    public var schedule: String
    public var project: String
    public var boundary: Date
    public var fence: ShardFence?

    public init(schedule: String, project: String, boundary: Date, fence: ShardFence?) {
        self.schedule = schedule
        self.project = project
        self.boundary = boundary
        self.fence = fence
    }

    /// The schedule and project.
    public var key: ScheduleMarkKey { ScheduleMarkKey(schedule: schedule, project: project) }
}

/// A server's (status, task_state) as one listing saw it.
public struct ServerStateSighting: Sendable, Equatable {
    public var serverId: String
    public var status: String
    public var taskState: String?

    public init(serverId: String, status: String, taskState: String?) {
        self.serverId = serverId
        self.status = status
        self.taskState = taskState
    }
}

/// A flavor's sale state in an AZ and since when.
public struct SaleStateSince: Sendable, Equatable {
    public var state: String
    public var since: Date

    public init(state: String, since: Date) {
        self.state = state
        self.since = since
    }
}

/// One quota sample to store.
public struct QuotaSample: Sendable, Equatable {
    public var resource: String
    public var used: Int
    /// Nil when unlimited.
    public var limit: Int?

    public init(resource: String, used: Int, limit: Int?) {
        self.resource = resource
        self.used = used
        self.limit = limit
    }
}

/// One stored quota reading of a resource.
public struct QuotaReading: Sendable, Equatable {
    public var at: Date
    public var used: Int

    public init(at: Date, used: Int) {
        self.at = at
        self.used = used
    }
}

/// A stretch of time a server spent stopped by its schedule.
public struct SavingsWindow: Sendable, Equatable, Codable {
    public var id: Int64
    public var project: String
    public var serverId: String
    public var schedule: String
    public var flavor: String
    public var vcpus: Int
    public var ramMB: Int
    public var openedAt: Date
    public var closedAt: Date?
    public var countedUntil: Date

    public init(
        id: Int64 = 0, project: String, serverId: String, schedule: String, flavor: String, vcpus: Int, ramMB: Int, openedAt: Date, closedAt: Date? = nil,
        countedUntil: Date
    ) {
        self.id = id
        self.project = project
        self.serverId = serverId
        self.schedule = schedule
        self.flavor = flavor
        self.vcpus = vcpus
        self.ramMB = ramMB
        self.openedAt = openedAt
        self.closedAt = closedAt
        self.countedUntil = countedUntil
    }
}

/// Stopped time of one schedule and flavor over a period.
public struct SavingsTotal: Sendable, Equatable, Codable {
    public var schedule: String
    public var flavor: String
    public var serverSeconds: Double
    public var vcpuSeconds: Double
    public var ramMBSeconds: Double

    public init(schedule: String, flavor: String, serverSeconds: Double, vcpuSeconds: Double, ramMBSeconds: Double) {
        self.schedule = schedule
        self.flavor = flavor
        self.serverSeconds = serverSeconds
        self.vcpuSeconds = vcpuSeconds
        self.ramMBSeconds = ramMBSeconds
    }
}
