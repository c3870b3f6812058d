import Foundation
import Logging
import PostgresNIO
import WardenCore

/// The SQL of cluster mode's leases. Every time value comes from the database's `now()`; no
/// replica's clock is ever written or compared.
struct LeaseStatements: Sendable {
    let client: PostgresClient
    let node: String
    /// This process: a node's name may be configured on two live processes by mistake, and the
    /// heartbeat row tells them apart by it.
    let instance: NodeInstance
    let ttlSeconds: Double
    let logger: Logger

    /// What one renewal told.
    struct Renewal: Sendable, Equatable {
        /// The shards this node still holds, with their epochs.
        var held: [ShardID: Int64]
        /// Alive nodes, this one included.
        var aliveNodes: Int
        /// Configured shards with no live lease.
        var unowned: Int
        /// The process whose heartbeat this one's replaced (this one again, unless the node was
        /// restarted or another live process uses the same name); nil for a new node.
        var previousWriter: NodeInstance?
        /// When this process first beat, by the database's clock (kept for its later beats).
        var startedAt: Double?
    }

    /// The heartbeat row's writer now, whether that heartbeat is live, and whether it left; with
    /// the cluster's figures a renewal would give (alive nodes, configured shards without a live
    /// lease), so a process standing by keeps its gauges true.
    struct HeartbeatOwner: Sendable, Equatable {
        var writer: NodeInstance?
        var live: Bool
        var left: Bool
        var aliveNodes: Int
        var unowned: Int
    }

    /// The heartbeat and the renewal of every lease this process holds, in one statement whatever
    /// the shard count. A lease that expired is not renewed (it is claimed again under a new
    /// epoch), nor one held under this node's name that this process does not hold — matched by
    /// shard and epoch: a previous process of the same node, killed and restarted within the TTL,
    /// left it (it expires and is claimed again under a new epoch, so nobody renews a lease nobody
    /// works on), or another live process with the same name claimed it.
    /// Every beat writes this process's instance, keeping the start time of its first beat
    /// (`startedAt`, nil on the first); the row's previous writer comes back with the renewal (all
    /// parts of one statement see the same snapshot, so `previous` reads the row before the beat).
    func renew(configured: [String], held: [ShardID: Int64], startedAt: Double?) async throws -> Renewal {
        let (heldShards, heldEpochs) = Self.columns(held)
        let rows = try await client.query(
            """
            WITH previous AS (
                SELECT instance, instance_label, extract(epoch FROM instance_started_at)::float8 AS started
                FROM cluster_nodes WHERE name = \(node)
            ), beat AS (
                INSERT INTO cluster_nodes (name, started_at, heartbeat_at, instance, instance_label, instance_started_at)
                VALUES (\(node), now(), now(), \(instance.id), \(instance.label), coalesce(to_timestamp(\(startedAt)), now()))
                ON CONFLICT (name) DO UPDATE SET heartbeat_at = now(), left_at = NULL, instance = EXCLUDED.instance,
                    instance_label = EXCLUDED.instance_label, instance_started_at = EXCLUDED.instance_started_at
                RETURNING extract(epoch FROM instance_started_at)::float8 AS started
            ), renewed AS (
                UPDATE shard_leases SET expires_at = now() + make_interval(secs => \(ttlSeconds))
                WHERE holder = \(node) AND expires_at > now()
                    AND (shard, epoch) IN (SELECT * FROM unnest(\(heldShards)::text[], \(heldEpochs)::int8[]))
                RETURNING shard, epoch
            )
            SELECT NULL::text, NULL::bigint,
                   (SELECT count(*) FROM cluster_nodes WHERE name <> \(node) AND left_at IS NULL
                        AND heartbeat_at > now() - make_interval(secs => \(ttlSeconds))) + (SELECT count(*) FROM beat),
                   (SELECT count(*) FROM shard_leases WHERE shard = ANY(\(configured)) AND (holder IS NULL OR expires_at <= now()))
                   + (SELECT count(*) FROM unnest(\(configured)::text[]) AS c(shard) WHERE NOT EXISTS (SELECT 1 FROM shard_leases l WHERE l.shard = c.shard)),
                   (SELECT instance FROM previous), (SELECT instance_label FROM previous), (SELECT started FROM previous),
                   (SELECT started FROM beat)
            UNION ALL
            SELECT shard, epoch, NULL, NULL, NULL, NULL, NULL, NULL FROM renewed
            """, logger: logger)
        var renewal = Renewal(held: [:], aliveNodes: 1, unowned: 0)
        for try await (shard, epoch, alive, unowned, previous, previousLabel, previousStarted, started) in rows.decode(
            (String?, Int64?, Int64?, Int64?, String?, String?, Double?, Double?).self)
        {
            if let shard, let epoch {
                renewal.held[ShardID(rawValue: shard)] = epoch
            } else {
                renewal.aliveNodes = Int(alive ?? 1)
                renewal.unowned = Int(unowned ?? 0)
                renewal.previousWriter = previous.map { NodeInstance(id: $0, label: previousLabel ?? "", startedAt: previousStarted) }
                renewal.startedAt = started
            }
        }
        return renewal
    }

    /// Who beats under this node's name now, without beating (a process standing by).
    func heartbeatOwner(configured: [String]) async throws -> HeartbeatOwner {
        let rows = try await client.query(
            """
            SELECT n.instance, n.instance_label, extract(epoch FROM n.instance_started_at)::float8,
                   coalesce(n.left_at IS NULL AND n.heartbeat_at > now() - make_interval(secs => \(ttlSeconds)), false),
                   coalesce(n.left_at IS NOT NULL, false),
                   (SELECT count(*) FROM cluster_nodes WHERE left_at IS NULL AND heartbeat_at > now() - make_interval(secs => \(ttlSeconds))),
                   (SELECT count(*) FROM shard_leases WHERE shard = ANY(\(configured)) AND (holder IS NULL OR expires_at <= now()))
                   + (SELECT count(*) FROM unnest(\(configured)::text[]) AS c(shard) WHERE NOT EXISTS (SELECT 1 FROM shard_leases l WHERE l.shard = c.shard))
            FROM (SELECT 1) AS one LEFT JOIN cluster_nodes n ON n.name = \(node)
            """, logger: logger)
        var owner = HeartbeatOwner(writer: nil, live: false, left: false, aliveNodes: 0, unowned: 0)
        for try await (id, label, started, live, left, alive, unowned) in rows.decode((String?, String?, Double?, Bool, Bool, Int64, Int64).self) {
            owner = HeartbeatOwner(
                writer: id.map { NodeInstance(id: $0, label: label ?? "", startedAt: started) }, live: live, left: left, aliveNodes: Int(alive),
                unowned: Int(unowned))
        }
        return owner
    }

    /// Leases as two parallel arrays (shard, epoch), for `(shard, epoch) IN (SELECT * FROM unnest(…, …))`.
    static func columns(_ leases: [ShardID: Int64]) -> (shards: [String], epochs: [Int64]) {
        let pairs = leases.map { ($0.key.rawValue, $0.value) }
        return (pairs.map(\.0), pairs.map(\.1))
    }

    /// Makes sure every configured shard has a lease row (a new project or region).
    func register(_ shards: [String]) async throws {
        try await client.query(
            "INSERT INTO shard_leases (shard) SELECT unnest(\(shards)::text[]) ON CONFLICT (shard) DO NOTHING", logger: logger)
    }

    /// Claims up to `limit` shards that have no live lease — expired ones first, in random order,
    /// skipping rows another node is claiming — under a new epoch each; records the handovers.
    func claim(configured: [String], limit: Int) async throws -> [(shard: ShardID, epoch: Int64, reason: String)] {
        let rows = try await client.query(
            """
            WITH candidates AS (
                SELECT shard, holder, epoch FROM shard_leases
                WHERE shard = ANY(\(configured)) AND (holder IS NULL OR expires_at <= now())
                ORDER BY (holder IS NULL), random()
                LIMIT \(limit)
                FOR UPDATE SKIP LOCKED
            ), taken AS (
                UPDATE shard_leases l
                SET holder = \(node), epoch = l.epoch + 1, expires_at = now() + make_interval(secs => \(ttlSeconds)), acquired_at = now()
                FROM candidates c WHERE l.shard = c.shard
                RETURNING l.shard, l.epoch,
                    CASE WHEN c.holder IS NOT NULL THEN 'expired' WHEN c.epoch = 0 THEN 'first' ELSE 'released' END AS reason,
                    c.holder AS previous
            ), logged AS (
                INSERT INTO shard_handovers (shard, from_node, to_node, epoch, reason)
                SELECT shard, previous, \(node), epoch, reason FROM taken
            )
            SELECT shard, epoch, reason FROM taken
            """, logger: logger)
        var claimed: [(ShardID, Int64, String)] = []
        for try await (shard, epoch, reason) in rows.decode((String, Int64, String).self) {
            claimed.append((ShardID(rawValue: shard), epoch, reason))
        }
        return claimed
    }

    /// Gives shards up (`released`: a surplus; `left`: the node is leaving), records the handovers
    /// and wakes the other nodes (`NOTIFY`), so they claim them at once. Only the leases held under
    /// the given epochs are released (never one claimed since by another process of this name).
    func release(_ shards: [ShardID: Int64], reason: String, leaving: Bool) async throws {
        let (names, epochs) = Self.columns(shards)
        try await client.query(
            """
            WITH released AS (
                UPDATE shard_leases SET holder = NULL, expires_at = now()
                WHERE holder = \(node) AND (shard, epoch) IN (SELECT * FROM unnest(\(names)::text[], \(epochs)::int8[]))
                RETURNING shard, epoch
            ), logged AS (
                INSERT INTO shard_handovers (shard, from_node, to_node, epoch, reason)
                SELECT shard, \(node), NULL, epoch, \(reason) FROM released
            ), gone AS (
                UPDATE cluster_nodes SET left_at = now() WHERE name = \(node) AND instance = \(instance.id) AND \(leaving)
            )
            SELECT pg_notify(\(LeaseCoordinator.channel), \(node))
            """, logger: logger)
    }

    /// The cluster as the database sees it (any node answers for all).
    func status(recentHandovers: Int) async throws -> (nodes: [ClusterNodeView], leases: [ShardLeaseView], handovers: [ShardHandoverView]) {
        var nodes: [ClusterNodeView] = []
        let nodeRows = try await client.query(
            """
            SELECT n.name, (n.left_at IS NULL AND n.heartbeat_at > now() - make_interval(secs => \(ttlSeconds))),
                   extract(epoch FROM n.heartbeat_at)::float8, extract(epoch FROM n.started_at)::float8,
                   (SELECT count(*) FROM shard_leases l WHERE l.holder = n.name AND l.expires_at > now())
            FROM cluster_nodes n ORDER BY n.name
            """, logger: logger)
        for try await (name, alive, heartbeat, started, owned) in nodeRows.decode((String, Bool, Double, Double, Int64).self) {
            nodes.append(
                ClusterNodeView(
                    name: name, alive: alive, heartbeatAt: Date(timeIntervalSince1970: heartbeat), startedAt: Date(timeIntervalSince1970: started),
                    shardsOwned: Int(owned)))
        }
        var leases: [ShardLeaseView] = []
        let leaseRows = try await client.query(
            """
            SELECT shard, holder, epoch, CASE WHEN expires_at = '-infinity' THEN NULL ELSE extract(epoch FROM expires_at)::float8 END,
                   (holder IS NOT NULL AND expires_at > now())
            FROM shard_leases ORDER BY shard
            """, logger: logger)
        for try await (shard, holder, epoch, expires, live) in leaseRows.decode((String, String?, Int64, Double?, Bool).self) {
            leases.append(ShardLeaseView(shard: shard, holder: holder, epoch: epoch, expiresAt: expires.map(Date.init(timeIntervalSince1970:)), live: live))
        }
        var handovers: [ShardHandoverView] = []
        let handoverRows = try await client.query(
            """
            SELECT shard, from_node, to_node, epoch, reason, extract(epoch FROM at)::float8
            FROM shard_handovers ORDER BY id DESC LIMIT \(recentHandovers)
            """, logger: logger)
        for try await (shard, from, to, epoch, reason, at) in handoverRows.decode((String, String?, String?, Int64, String, Double).self) {
            handovers.append(ShardHandoverView(shard: shard, from: from, to: to, epoch: epoch, reason: reason, at: Date(timeIntervalSince1970: at)))
        }
        return (nodes, leases, handovers)
    }
}

extension LeaseStatements {
    /// Records (or removes) a cluster-wide loop pause and tells every node, in one statement.
    func setLoopPaused(_ loop: String, paused: Bool) async throws {
        let message = paused ? ClusterMessage.pause(loop) : ClusterMessage.resume(loop)
        if paused {
            try await client.query(
                """
                WITH paused AS (
                    INSERT INTO loop_pauses (loop, paused_at, by_node) VALUES (\(loop), now(), \(node))
                    ON CONFLICT (loop) DO UPDATE SET paused_at = now(), by_node = EXCLUDED.by_node
                )
                SELECT pg_notify(\(LeaseCoordinator.channel), \(message.payload))
                """, logger: logger)
        } else {
            try await client.query(
                """
                WITH resumed AS (DELETE FROM loop_pauses WHERE loop = \(loop))
                SELECT pg_notify(\(LeaseCoordinator.channel), \(message.payload))
                """, logger: logger)
        }
    }

    /// Tells every node.
    func notify(_ message: ClusterMessage) async throws {
        try await client.query("SELECT pg_notify(\(LeaseCoordinator.channel), \(message.payload))", logger: logger)
    }

    /// The loops paused cluster-wide.
    func pausedLoops() async throws -> Set<String> {
        var loops: Set<String> = []
        for try await loop in try await client.query("SELECT loop FROM loop_pauses", logger: logger).decode(String.self) { loops.insert(loop) }
        return loops
    }
}
