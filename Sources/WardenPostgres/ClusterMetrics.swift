import Prometheus
import WardenCore

/// Cluster mode's own series: nodes alive, shards (total, owned here, without an owner), the
/// epoch of each shard owned here, handovers by reason and renewal failures.
public final class ClusterMetrics: Sendable {
    /// The reasons of `ecs_warden_cluster_handovers_total`.
    public static let reasons = ["first", "expired", "released", "left", "lost"]
    let registry: PrometheusCollectorRegistry
    let node: String
    /// `ecs_warden_cluster_shard_epoch{node,shard}`: one series per shard held (up to the number of
    /// shards), replaced each lease round, so it is a family of `metrics` rather than registry gauges.
    private let shardEpochs: GaugeFamily

    /// Cluster series on `metrics`: the shard epochs as one of its families, the others on its registry.
    public init(metrics: WardenMetrics, node: String) {
        self.registry = metrics.registry
        self.node = node
        shardEpochs = metrics.gaugeFamily(
            named: "ecs_warden_cluster_shard_epoch", help: "The epoch (fencing token) of each shard this node holds.", scopeDepth: 1)
        for reason in Self.reasons { handoverCounter(reason).increment(by: Int64(0)) }
        renewFailures.increment(by: Int64(0))
        nameConflict(false)
    }

    private var renewFailures: Counter {
        registry.makeCounter(
            descriptor: MetricNameDescriptor(
                metricName: "ecs_warden_cluster_renew_failures_total", unitName: "", helpText: "Lease renewal rounds that failed (no answer, an error)."),
            labels: [("node", node)])
    }

    private func handoverCounter(_ reason: String) -> Counter {
        registry.makeCounter(
            descriptor: MetricNameDescriptor(
                metricName: "ecs_warden_cluster_handovers_total", unitName: "",
                helpText: "Shard handovers seen by this node: claimed (first, expired, released) or given up (released, left, lost)."),
            labels: [("node", node), ("reason", reason)])
    }

    private func gauge(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> Gauge {
        registry.makeGauge(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: [("node", node)] + labels)
    }

    func handover(_ reason: String) {
        guard Self.reasons.contains(reason) else { return }
        handoverCounter(reason).increment()
    }

    func renewFailed() { renewFailures.increment() }

    func alive(_ nodes: Int, unowned: Int, total: Int) {
        gauge("ecs_warden_cluster_nodes_alive", "Nodes whose heartbeat is younger than the lease TTL.").set(to: Double(nodes))
        gauge("ecs_warden_cluster_shards_unowned", "Configured shards without a live lease (nobody works on them).").set(to: Double(unowned))
        gauge("ecs_warden_cluster_shards_configured", "Shards of the configuration (projects and regions).").set(to: Double(total))
    }

    /// 1 while this process stands by because another live process uses its node name.
    func nameConflict(_ standingBy: Bool) {
        gauge(
            "ecs_warden_cluster_node_name_conflict",
            "1 while this process stands by, holding nothing, because another live process that started first uses its cluster.node name."
        ).set(to: standingBy ? 1 : 0)
    }

    func owned(_ held: [ShardID: Int64]) {
        gauge("ecs_warden_cluster_shards_owned", "Shards this node holds a lease of.").set(to: Double(held.count))
        shardEpochs.replace(scope: [("node", node)], with: held.map { shard, epoch in ([("node", node), ("shard", shard.rawValue)], Double(epoch)) })
    }
}
