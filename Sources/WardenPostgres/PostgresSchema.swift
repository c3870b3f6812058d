import Foundation

/// Cluster mode's tables live in one PostgreSQL schema, created and migrated by
/// `PostgresStateStore` (`PostgresStateStore+Migrations.swift`); the lease coordinator reads and
/// writes `cluster_nodes`, `shard_leases` and `shard_handovers`, the control API `loop_pauses`.
///
/// Columns: `cluster_nodes(name PK, started_at, heartbeat_at, left_at, instance, instance_label,
/// instance_started_at)` (the process that wrote the last heartbeat);
/// `shard_leases(shard PK, holder NULL, epoch bigint DEFAULT 0, expires_at DEFAULT '-infinity',
/// acquired_at)`; `shard_handovers(id bigserial PK, shard, from_node, to_node, epoch, reason IN
/// first/expired/released/left/lost, at DEFAULT now())`; `loop_pauses(loop PK, paused_at, by_node)`.
/// Times are `timestamptz` from the database's clock (`now()`), never a replica's.
public enum PostgresSchema {
    /// The lease table: one row per shard.
    public static let leases = "shard_leases"
    /// Membership: one row per node, with its heartbeat.
    public static let nodes = "cluster_nodes"
    /// Every change of a shard's holder, with why.
    public static let handovers = "shard_handovers"
    /// Loops paused through the control API, for the whole cluster.
    public static let loopPauses = "loop_pauses"
    /// The migrations applied, by id.
    public static let migrations = "schema_migrations"
    /// The reasons a handover row may give (a CHECK constraint holds the column to them).
    public static let handoverReasons = ["first", "expired", "released", "left", "lost"]
}
