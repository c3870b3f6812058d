import Foundation

/// Why the state store could not be opened. Never answered by silently starting afresh.
public enum StateStoreError: Error, CustomStringConvertible, Equatable {
    /// The file is not a SQLite database, or SQLite reports it corrupt.
    case damaged(path: String, reason: String)
    /// The database was written by a newer ecs-warden (migrations this version does not know).
    case newerSchema(path: String, unknownMigrations: [String])
    /// The directory cannot be created or written.
    case unusableDirectory(path: String, reason: String)
    /// A stored value outside its closed set (written by hand, or by a newer version).
    case undecodable(what: String, value: String)

    public var description: String {
        switch self {
        case .damaged(let path, let reason):
            return "state database \(path) is damaged (\(reason)); move it aside to start with an empty state, or restore a backup"
        case .newerSchema(let path, let unknown):
            return "state database \(path) was written by a newer ecs-warden (unknown migrations: \(unknown.joined(separator: ", "))); upgrade ecs-warden or point it at another state directory"
        case .unusableDirectory(let path, let reason):
            return "state directory \(path) is unusable: \(reason)"
        case .undecodable(let what, let value):
            return "state database holds a \(what) this version does not know: '\(value)'"
        }
    }
}

/// How much history the store keeps.
public struct RetentionPolicy: Sendable, Equatable {
    /// Journal entries older than this are removed.
    public var journalDays: Double
    /// At most this many journal entries are kept.
    public var journalMaxEntries: Int
    /// Quota samples older than this are removed (the forecast window must fit).
    public var quotaHistoryDays: Double
    /// Sale-state transitions older than this are removed.
    public var transitionDays: Double

    /// Calls younger than this are kept whatever `journalMaxEntries` says (the longest boundary
    /// grace: holds and retries rest on them).
    public var keepCallsFor: TimeInterval

    public init(
        journalDays: Double = 90, journalMaxEntries: Int = 500_000, quotaHistoryDays: Double = 30, transitionDays: Double = 365,
        keepCallsFor: TimeInterval = 7 * 86_400
    ) {
        self.keepCallsFor = keepCallsFor
        self.journalDays = journalDays
        self.journalMaxEntries = journalMaxEntries
        self.quotaHistoryDays = quotaHistoryDays
        self.transitionDays = transitionDays
    }
}

/// One journal entry: an intent written before a mutating call, its outcome written after, or
/// an event (threshold crossed, server stuck, flavor sold out, tag error…). Sequence numbers only
/// grow, so a client can follow the journal with `since`.
public struct JournalEntry: Sendable, Equatable, Codable {
    /// `intent`, `outcome`, `event` or `dry_run`.
    public enum Kind: String, Sendable, Codable, CaseIterable { case intent, outcome, event, dryRun = "dry_run" }

    public var seq: Int64
    public var at: Date
    public var kind: Kind
    public var loop: String
    public var project: String?
    /// The schedule, resource, flavor or job the entry is about.
    public var subject: String?
    /// stop, start, hard-stop, threshold-crossed, stuck, sold-out, …
    public var action: String?
    /// info, warning or critical (events).
    public var severity: String?
    public var clientToken: String?
    public var jobId: String?
    /// Server ids concerned.
    public var servers: [String]
    /// Intents and outcomes: a value of a closed set (see `ActionResult`).
    public var result: ActionResult?
    public var message: String
    /// For an outcome: the intent it closes.
    public var intentSeq: Int64?
    /// For a scheduler intent: the schedule boundary it acts on (nil when enforcing).
    public var boundary: Date?
    /// For an intent that retries servers whose sub-jobs failed: the intent it retries.
    public var retryOf: Int64?
    /// Cluster mode: the shard, node and epoch the entry was written under (nil on a single node).
    /// The store refuses the write unless that node still holds the shard in that epoch.
    public var fence: ShardFence?

    public init(
        at: Date, kind: Kind, loop: String, project: String? = nil, subject: String? = nil, action: String? = nil, severity: String? = nil,
        clientToken: String? = nil, jobId: String? = nil, servers: [String] = [], result: ActionResult? = nil, message: String, intentSeq: Int64? = nil,
        boundary: Date? = nil, retryOf: Int64? = nil, fence: ShardFence? = nil
    ) {
        self.seq = 0
        self.fence = fence
        self.at = at
        self.kind = kind
        self.loop = loop
        self.project = project
        self.subject = subject
        self.action = action
        self.severity = severity
        self.clientToken = clientToken
        self.jobId = jobId
        self.servers = servers
        self.result = result
        self.message = message
        self.intentSeq = intentSeq
        self.boundary = boundary
        self.retryOf = retryOf
    }
}

/// A sale-state transition of a flavor in an AZ.
public struct SaleTransition: Sendable, Equatable, Codable {
    public var region: String
    public var az: String
    public var flavor: String
    /// nil for the first observation.
    public var from: String?
    public var to: String
    public var at: Date
}

/// A job the stuck-task loop follows.
public struct WatchedJob: Sendable, Equatable, Codable {
    public var project: String
    public var jobId: String
    public var jobType: String?
    /// `warden` (our own action) or `external` (registered through the control API).
    public var source: String
    public var registeredAt: Date
    /// The journal intent that created it, for our own actions.
    public var intentSeq: Int64?
    public var status: String?
    public var closedAt: Date?
    /// The job's `begin_time`, once the API told it.
    public var beganAt: Date?

    public init(
        project: String, jobId: String, jobType: String?, source: String, registeredAt: Date, intentSeq: Int64?, status: String? = nil, closedAt: Date? = nil,
        beganAt: Date? = nil
    ) {
        self.project = project
        self.jobId = jobId
        self.jobType = jobType
        self.source = source
        self.registeredAt = registeredAt
        self.intentSeq = intentSeq
        self.status = status
        self.closedAt = closedAt
        self.beganAt = beganAt
    }
}

/// A snooze stored by the daemon (set through the control API).
public struct Snooze: Sendable, Equatable, Codable {
    public var project: String
    public var serverId: String
    public var until: Date
    public var reason: String

    public init(project: String, serverId: String, until: Date, reason: String) {
        self.project = project
        self.serverId = serverId
        self.until = until
        self.reason = reason
    }
}

/// An (AZ, flavor) pair of a region.
public struct SaleKey: Sendable, Hashable, Codable {
    public var az: String
    public var flavor: String

    public init(az: String, flavor: String) {
        self.az = az
        self.flavor = flavor
    }
}
