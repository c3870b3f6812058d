import Foundation

/// Cluster mode's tables live in one PostgreSQL schema, created and migrated by
/// `PostgresStateStore`; the lease coordinator reads and writes `cluster_nodes`, `shard_leases`
/// and `shard_handovers`.
public enum PostgresSchema {
    /// The lease table: one row per shard.
    public static let leases = "shard_leases"
    /// Membership: one row per node, with its heartbeat.
    public static let nodes = "cluster_nodes"
    /// Every change of a shard's holder, with why.
    public static let handovers = "shard_handovers"
}
