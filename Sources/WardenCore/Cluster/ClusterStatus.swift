import Foundation

/// What `GET /v1/cluster` and `ecs-warden ctl cluster` show: the nodes, the leases, the recent
/// handovers. On a single node: one node owning every shard, no leases.
public struct ClusterStatus: Sendable, Equatable, Codable {
    /// `single` (SQLite, one node) or `cluster` (PostgreSQL leases).
    public var mode: String
    /// The node answering.
    public var node: String
    /// The lease TTL in seconds (cluster mode).
    public var leaseTTLSeconds: Double?
    public var nodes: [ClusterNodeView]
    public var leases: [ShardLeaseView]
    public var handovers: [ShardHandoverView]

    public init(mode: String, node: String, leaseTTLSeconds: Double?, nodes: [ClusterNodeView], leases: [ShardLeaseView], handovers: [ShardHandoverView]) {
        self.mode = mode
        self.node = node
        self.leaseTTLSeconds = leaseTTLSeconds
        self.nodes = nodes
        self.leases = leases
        self.handovers = handovers
    }

    enum CodingKeys: String, CodingKey {
        case mode, node, nodes, leases, handovers
        case leaseTTLSeconds = "lease_ttl_seconds"
    }
}

/// One member of the cluster.
public struct ClusterNodeView: Sendable, Equatable, Codable {
    public var name: String
    /// Its heartbeat is younger than the lease TTL and it has not left.
    public var alive: Bool
    public var heartbeatAt: Date?
    public var startedAt: Date?
    public var shardsOwned: Int

    public init(name: String, alive: Bool, heartbeatAt: Date?, startedAt: Date?, shardsOwned: Int) {
        self.name = name
        self.alive = alive
        self.heartbeatAt = heartbeatAt
        self.startedAt = startedAt
        self.shardsOwned = shardsOwned
    }

    enum CodingKeys: String, CodingKey {
        case name, alive
        case heartbeatAt = "heartbeat_at"
        case startedAt = "started_at"
        case shardsOwned = "shards_owned"
    }
}

/// One shard's lease.
public struct ShardLeaseView: Sendable, Equatable, Codable {
    public var shard: String
    /// Nil when released or never claimed.
    public var holder: String?
    public var epoch: Int64
    public var expiresAt: Date?
    /// False when the lease has expired or has no holder: nobody works on the shard.
    public var live: Bool

    public init(shard: String, holder: String?, epoch: Int64, expiresAt: Date?, live: Bool) {
        self.shard = shard
        self.holder = holder
        self.epoch = epoch
        self.expiresAt = expiresAt
        self.live = live
    }

    enum CodingKeys: String, CodingKey {
        case shard, holder, epoch, live
        case expiresAt = "expires_at"
    }
}

/// A change of a shard's holder.
public struct ShardHandoverView: Sendable, Equatable, Codable {
    public var shard: String
    public var from: String?
    public var to: String?
    public var epoch: Int64
    /// `first`, `expired`, `released`, `left` or `lost`.
    public var reason: String
    public var at: Date

    public init(shard: String, from: String?, to: String?, epoch: Int64, reason: String, at: Date) {
        self.shard = shard
        self.from = from
        self.to = to
        self.epoch = epoch
        self.reason = reason
        self.at = at
    }
}

/// Answers `GET /v1/cluster`.
public protocol ClusterStatusSource: Sendable {
    func clusterStatus() async throws -> ClusterStatus
}

/// A single node: one member owning every shard of its configuration.
public struct SingleNodeStatus: ClusterStatusSource {
    public let node: String
    public let shards: @Sendable () -> [ShardID]

    public init(node: String, shards: @escaping @Sendable () -> [ShardID]) {
        self.node = node
        self.shards = shards
    }

    public func clusterStatus() async throws -> ClusterStatus {
        ClusterStatus(
            mode: "single", node: node, leaseTTLSeconds: nil,
            nodes: [ClusterNodeView(name: node, alive: true, heartbeatAt: nil, startedAt: nil, shardsOwned: shards().count)], leases: [], handovers: [])
    }
}

/// Cluster mode's side of the control API's mutating calls: written to PostgreSQL and told to
/// every node (`LISTEN/NOTIFY`), so a call to any node reaches the owners.
public protocol ClusterControl: Sendable {
    /// Records a loop's pause (or its end) for the whole cluster and tells every node.
    func setLoopPaused(_ loop: String, paused: Bool) async throws
    /// Asks every node to run a pass of `loop` now (each acts on the shards it owns).
    func runEverywhere(_ loop: String) async throws
    /// The loops paused cluster-wide (applied by a node at start).
    func pausedLoops() async throws -> Set<String>
}

/// A message on the cluster channel, as the nodes read it.
public enum ClusterMessage: Sendable, Equatable {
    case pause(String)
    case resume(String)
    case run(String)
    /// Shards changed hands (a release, a node leaving, a claim): every loop passes.
    case shardsMoved

    /// The payload sent with `NOTIFY`.
    public var payload: String {
        switch self {
        case .pause(let loop): return "pause:\(loop)"
        case .resume(let loop): return "resume:\(loop)"
        case .run(let loop): return "run:\(loop)"
        case .shardsMoved: return "shards"
        }
    }

    /// Reads a payload; anything else means shards moved.
    public init(payload: String) {
        let parts = payload.split(separator: ":", maxSplits: 1).map(String.init)
        switch (parts.first, parts.count) {
        case ("pause", 2): self = .pause(parts[1])
        case ("resume", 2): self = .resume(parts[1])
        case ("run", 2): self = .run(parts[1])
        default: self = .shardsMoved
        }
    }
}
