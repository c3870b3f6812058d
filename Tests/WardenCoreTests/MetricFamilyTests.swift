import Prometheus
import Testing

@testable import WardenCore

/// The labelled families kept outside the swift-prometheus registry: same text as the registry
/// writes, scoped replacement, the cached text and its invalidation.
@Suite struct MetricFamilyTests {
    private static func text(_ family: some ExportedMetricFamily) -> String { String(decoding: family.expositionText(), as: UTF8.self) }

    private static func registryText(_ fill: (PrometheusCollectorRegistry) -> Void) -> String {
        let registry = PrometheusCollectorRegistry()
        fill(registry)
        return registry.emitToString()
    }

    @Test func aGaugeFamilyReadsAsTheRegistryWritesIt() {
        let help = #"Odd help: a \ backslash, "quotes" and × (kept)."#
        let labels: [[(String, String)]] = [
            [("project", "main"), ("region", "eu-west-0"), ("job_type", "batchStopServers")],
            [("project", #"we\ird "name""#), ("region", "line\nbreak"), ("job_type", "x")],
        ]
        let family = GaugeFamily(name: "ecs_warden_test_gauge", help: help, scopeDepth: 2)
        family.set(labels[0], 1)
        family.set(labels[1], 0.25)
        let expected = Self.registryText { registry in
            let descriptor = MetricNameDescriptor(metricName: "ecs_warden_test_gauge", unitName: "", helpText: help)
            registry.makeGauge(descriptor: descriptor, labels: labels[0]).set(to: 1)
            registry.makeGauge(descriptor: descriptor, labels: labels[1]).set(to: 0.25)
        }
        #expect(Self.text(family).split(separator: "\n").sorted() == expected.split(separator: "\n").sorted())
        #expect(Self.text(family).hasPrefix("# HELP ecs_warden_test_gauge Odd help: a \\\\ backslash"))
        #expect(Self.text(family).contains(#"ecs_warden_test_gauge{project="main",region="eu-west-0",job_type="batchStopServers"} 1.0"#))
        #expect(Self.text(family).contains(#"ecs_warden_test_gauge{project="we\\ird \"name\"",region="line\nbreak",job_type="x"} 0.25"#))
    }

    @Test func aCounterFamilyReadsAsTheRegistryWritesIt() {
        let family = CounterFamily(name: "ecs_warden_test_total", help: "Things counted.")
        family.increment([("operation", "ListServers"), ("code", "200")], by: 3)
        family.increment([("operation", "ListServers"), ("code", "200")])
        family.increment([("operation", "StartServers"), ("code", "429")], by: 0)
        family.increment([("operation", "StartServers"), ("code", "429")], by: -5)  // ignored, never a crash
        let expected = Self.registryText { registry in
            let descriptor = MetricNameDescriptor(metricName: "ecs_warden_test_total", unitName: "", helpText: "Things counted.")
            registry.makeCounter(descriptor: descriptor, labels: [("operation", "ListServers"), ("code", "200")]).increment(by: Int64(4))
            registry.makeCounter(descriptor: descriptor, labels: [("operation", "StartServers"), ("code", "429")]).increment(by: Int64(0))
        }
        #expect(Self.text(family).split(separator: "\n").sorted() == expected.split(separator: "\n").sorted())
        #expect(Self.text(family).contains(#"ecs_warden_test_total{operation="ListServers",code="200"} 4"#))
    }

    @Test func seriesAreSortedByTheirLabelsAndAnUnlabelledOneHasNoBraces() {
        let family = GaugeFamily(name: "g", help: "", scopeDepth: 0)
        family.set([("k", "b")], 2)
        family.set([("k", "a")], 1)
        #expect(Self.text(family) == "# TYPE g gauge\ng{k=\"a\"} 1.0\ng{k=\"b\"} 2.0\n")
        let unlabelled = GaugeFamily(name: "u", help: "Help.", scopeDepth: 0)
        unlabelled.set([], 3)
        #expect(Self.text(unlabelled) == "# HELP u Help.\n# TYPE u gauge\nu 3.0\n")
    }

    @Test func anEmptyFamilyWritesNothing() {
        let metrics = WardenMetrics()
        let family = metrics.gaugeFamily(named: "ecs_warden_test_empty", help: "Never set.")
        #expect(Self.text(family).isEmpty)
        family.set([("a", "b")], 1)
        #expect(metrics.exposition().contains("# TYPE ecs_warden_test_empty gauge"))
        family.replace(with: [])
        #expect(Self.text(family).isEmpty)
        #expect(!metrics.exposition().contains("ecs_warden_test_empty"))
    }

    @Test func aScopedReplaceRemovesOnlyItsScopesStaleSeries() {
        let family = GaugeFamily(name: "q", help: "", scopeDepth: 2)
        let a0 = [("project", "a"), ("region", "eu-west-0")]
        let a01 = [("project", "a"), ("region", "eu-west-01")]
        let b0 = [("project", "b"), ("region", "eu-west-0")]
        for scope in [a0, a01, b0] { family.replace(scope: scope, with: [(scope + [("resource", "cpu")], 1), (scope + [("resource", "ram")], 2)]) }
        #expect(family.count == 6)
        family.replace(scope: a0, with: [(a0 + [("resource", "ram")], 3)])
        let text = Self.text(family)
        #expect(!text.contains(#"q{project="a",region="eu-west-0",resource="cpu"}"#))
        #expect(text.contains(#"q{project="a",region="eu-west-0",resource="ram"} 3.0"#))
        #expect(text.contains(#"q{project="a",region="eu-west-01",resource="cpu"} 1.0"#))
        #expect(text.contains(#"q{project="b",region="eu-west-0",resource="cpu"} 1.0"#))
        #expect(family.count == 5)
    }

    /// A scope of another length than the family declares still removes exactly its series.
    @Test func aScopeOfAnotherDepthIsStillHandled() {
        let family = GaugeFamily(name: "q", help: "", scopeDepth: 2)
        for project in ["a", "ab"] {
            for region in ["r1", "r2"] { family.set([("project", project), ("region", region), ("resource", "cpu")], 1) }
        }
        family.replace(scope: [("project", "a")], with: [])  // shorter than declared
        #expect(family.count == 2)
        #expect(!Self.text(family).contains(#"project="a","#))
        family.replace(scope: [("project", "ab"), ("region", "r1"), ("resource", "cpu")], with: [])  // longer
        #expect(family.count == 1)
        #expect(Self.text(family).contains(#"q{project="ab",region="r2",resource="cpu"} 1.0"#))
        let flat = GaugeFamily(name: "f", help: "", scopeDepth: 0)  // scopes named, none declared
        flat.set([("region", "eu-west-0"), ("az", "a")], 1)
        flat.set([("region", "eu-west-01"), ("az", "a")], 1)
        flat.replace(scope: [("region", "eu-west-0")], with: [])
        #expect(Self.text(flat) == "# TYPE f gauge\nf{region=\"eu-west-01\",az=\"a\"} 1.0\n")
    }

    @Test func theCachedTextFollowsEveryChange() {
        let metrics = WardenMetrics()
        let gauge = metrics.gaugeFamily(named: "ecs_warden_test_cache", help: "Cache.", scopeDepth: 1)
        gauge.set([("region", "r")], 1)
        #expect(metrics.exposition().contains(#"ecs_warden_test_cache{region="r"} 1.0"#))
        gauge.set([("region", "r")], 2)
        #expect(metrics.exposition().contains(#"ecs_warden_test_cache{region="r"} 2.0"#))
        gauge.replace(scope: [("region", "r")], with: [([("region", "r"), ("az", "z")], 3)])
        let replaced = metrics.exposition()
        #expect(replaced.contains(#"ecs_warden_test_cache{region="r",az="z"} 3.0"#))
        #expect(!replaced.contains(#"ecs_warden_test_cache{region="r"} "#))
        metrics.recordRemediationActions(action: "reboot", result: .success, count: 1)
        #expect(metrics.exposition().contains(#"ecs_warden_remediation_actions_total{action="reboot",result="success"} 1"#))
        metrics.recordRemediationActions(action: "reboot", result: .success, count: 2)
        #expect(metrics.exposition().contains(#"ecs_warden_remediation_actions_total{action="reboot",result="success"} 3"#))
        #expect(metrics.expositionBytes() == Array(metrics.exposition().utf8))
        #expect(metrics.gaugeFamily(named: "ecs_warden_test_cache", help: "Cache.") === gauge)
    }

    /// Not timed: 1,000 scopes of 30 series each, replaced twice with a shifted set, keep exactly
    /// the series of the last snapshot.
    @Test func manyScopesReplacedTwiceKeepExactlyTheirLastSeries() {
        let family = GaugeFamily(name: "ecs_warden_quota_used", help: "Quota usage per resource.", scopeDepth: 2)
        func snapshot(_ project: Int, round: Int) -> [([(String, String)], Double)] {
            (round..<(round + 30)).map { ([("project", "p\(project)"), ("region", "eu-west-0"), ("resource", "r\($0)")], Double(round)) }
        }
        for round in 0..<2 {
            for project in 0..<1000 { family.replace(scope: [("project", "p\(project)"), ("region", "eu-west-0")], with: snapshot(project, round: round * 5)) }
        }
        #expect(family.count == 30_000)
        let lines = Self.text(family).split(separator: "\n")
        #expect(lines.count == 30_002)
        #expect(lines.dropFirst(2).allSatisfy { $0.hasSuffix(" 5.0") })
        #expect(!lines.contains(#"ecs_warden_quota_used{project="p7",region="eu-west-0",resource="r4"} 0.0"#))
        #expect(lines.contains(#"ecs_warden_quota_used{project="p7",region="eu-west-0",resource="r34"} 5.0"#))
    }
}
