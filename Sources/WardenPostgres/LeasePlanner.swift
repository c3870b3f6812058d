import WardenCore

/// The pure decisions of lease claiming (after the AWS KCL lease taker): a fair share of
/// ceil(shards / alive nodes) per node; below it a node claims unowned or expired shards (never a
/// live lease); above it a node releases its surplus, only shards with nothing in flight and no
/// boundary close.
public enum LeasePlanner {
    /// The number of shards each node should hold.
    public static func target(shards: Int, aliveNodes: Int) -> Int {
        guard shards > 0 else { return 0 }
        let nodes = max(1, aliveNodes)
        return (shards + nodes - 1) / nodes
    }

    /// How many shards to claim now: up to the target, at most the claimable ones.
    public static func toClaim(owned: Int, target: Int, claimable: Int) -> Int {
        max(0, min(target - owned, claimable))
    }

    /// Which owned shards to give up: the surplus above the target, taken from the releasable
    /// ones in a stable order (so two passes pick the same shards).
    public static func toRelease(owned: [ShardID], target: Int, releasable: (ShardID) -> Bool) -> [ShardID] {
        let surplus = owned.count - target
        guard surplus > 0 else { return [] }
        return Array(owned.sorted().reversed().filter(releasable).prefix(surplus))
    }

    /// Shards held locally that the configuration no longer names: released at once.
    public static func unconfigured(owned: [ShardID], configured: Set<ShardID>) -> [ShardID] {
        owned.filter { !configured.contains($0) }.sorted()
    }
}
