import Testing
import WardenCore

@testable import WardenPostgres

/// Cluster mode's shard epochs are a family of the daemon's metrics (no PostgreSQL needed).
@Suite struct ClusterMetricsTests {
    @Test func theShardEpochsFollowTheLeasesHeld() {
        let metrics = WardenMetrics()
        let cluster = ClusterMetrics(metrics: metrics, node: "n1")
        cluster.owned([.project("p1"): 3, .region("eu-west-0"): 7])
        var text = metrics.exposition()
        #expect(text.contains("# HELP ecs_warden_cluster_shard_epoch The epoch (fencing token) of each shard this node holds.\n# TYPE ecs_warden_cluster_shard_epoch gauge\n"))
        #expect(text.contains(#"ecs_warden_cluster_shard_epoch{node="n1",shard="project:p1"} 3.0"#))
        #expect(text.contains(#"ecs_warden_cluster_shard_epoch{node="n1",shard="region:eu-west-0"} 7.0"#))
        #expect(text.contains("ecs_warden_cluster_shards_owned{node=\"n1\"} 2.0"))
        cluster.owned([.project("p1"): 4])
        text = metrics.exposition()
        #expect(text.contains(#"ecs_warden_cluster_shard_epoch{node="n1",shard="project:p1"} 4.0"#))
        #expect(!text.contains(#"shard="region:eu-west-0""#))
        cluster.owned([:])
        #expect(!metrics.exposition().contains("ecs_warden_cluster_shard_epoch"))
    }
}
