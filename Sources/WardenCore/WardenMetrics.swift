import ECSAPI
import Foundation
import Prometheus
import Synchronization

/// Every metric ecs-warden exports, created once with help text on an injected registry.
///
/// Values are snapshots written by the loops; a scrape reads them and never calls the cloud.
/// Metric names are part of the product (operators alert on them). No per-server labels, except
/// for the bounded set of currently stuck servers.
public final class WardenMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry

    let quotaLimit: GaugeFamily
    let quotaUsed: GaugeFamily
    let quotaRatio: GaugeFamily
    let quotaETA: GaugeFamily
    let stuckJobs: GaugeFamily
    let stuckServers: GaugeFamily
    let stuckServerAge: GaugeFamily
    let unhealthyServers: GaugeFamily
    let flavorSoldOut: GaugeFamily
    let scheduleServers: GaugeFamily
    let scheduleTagErrors: GaugeFamily
    let scheduleListingErrors: GaugeFamily
    let scheduleAtRisk: GaugeFamily
    private let flavorChanges: CounterFamily
    private let scheduleActions: CounterFamily
    private let remediationActions: CounterFamily
    private let stoppedServerSeconds: CounterFamily
    private let stoppedVCPUSeconds: CounterFamily
    private let stoppedRAMSeconds: CounterFamily
    private let loopRuns: CounterFamily
    private let apiRequests: CounterFamily
    private let loopLastSuccess: GaugeFamily
    private let storeWritable: Gauge
    private let loopDurations: Mutex<[String: DurationHistogram]>
    private let apiDurations: Mutex<[String: DurationHistogram]>

    static let loopBuckets: [Duration] = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120].map { .milliseconds(Int64($0 * 1000)) }
    static let apiBuckets: [Duration] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30].map { .milliseconds(Int64($0 * 1000)) }

    /// Creates the metrics on `registry` (a fresh one by default).
    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        quotaLimit = GaugeFamily(registry, "ecs_warden_quota_limit", "Quota limit per resource (absent when unlimited).")
        quotaUsed = GaugeFamily(registry, "ecs_warden_quota_used", "Quota usage per resource.")
        quotaRatio = GaugeFamily(registry, "ecs_warden_quota_usage_ratio", "Used divided by limit per resource (0 to 1+; absent when unlimited).")
        quotaETA = GaugeFamily(
            registry, "ecs_warden_quota_exhaustion_eta_seconds", "Seconds until the resource is exhausted at the recent linear rate (absent when not growing).")
        stuckJobs = GaugeFamily(registry, "ecs_warden_stuck_jobs", "Watched jobs in INIT or RUNNING past their deadline.")
        stuckServers = GaugeFamily(registry, "ecs_warden_stuck_servers", "Servers whose status and task_state have not changed for longer than their threshold.")
        stuckServerAge = GaugeFamily(
            registry, "ecs_warden_stuck_server_age_seconds", "Seconds each currently stuck server has been in its state (bounded set).")
        unhealthyServers = GaugeFamily(
            registry, "ecs_warden_unhealthy_servers",
            "Servers whose details show a problem, by reason (status_error, status_unknown, host_down, host_maintenance, host_unknown, fault).")
        flavorSoldOut = GaugeFamily(registry, "ecs_warden_flavor_sold_out", "1 when the flavor is sold out (sellout, obt_sellout) in the AZ, else 0.")
        scheduleServers = GaugeFamily(registry, "ecs_warden_schedule_servers", "Servers carrying each schedule tag, by state.")
        scheduleTagErrors = GaugeFamily(
            registry, "ecs_warden_schedule_tag_errors", "Servers left alone because of a bad schedule-related tag, by reason.")
        scheduleListingErrors = GaugeFamily(
            registry, "ecs_warden_schedule_listing_errors", "Projects whose server listing the scheduler refused, by reason (listing_without_tags): nothing is acted on there.")
        scheduleAtRisk = GaugeFamily(
            registry, "ecs_warden_schedule_at_risk",
            "Servers due to start within the preflight lead whose start the API would refuse, by reason (flavor_sold_out, flavor_not_on_sale, flavor_gone, locked, server_error).")
        flavorChanges = CounterFamily(registry, "ecs_warden_flavor_state_changes_total", "Sale-state transitions observed per flavor and AZ.")
        scheduleActions = CounterFamily(
            registry, "ecs_warden_schedule_actions_total", "Scheduled start/stop actions per server, by result (success, failed, retrying, capacity, unknown, dry_run).")
        remediationActions = CounterFamily(
            registry, "ecs_warden_remediation_actions_total", "Stuck-server remedies per server, by action and result (success, failed, retrying, capacity, unknown, dry_run).")
        stoppedServerSeconds = CounterFamily(
            registry, "ecs_warden_schedule_stopped_server_seconds_total", "Seconds scheduled servers spent stopped by their schedule, per schedule and flavor.")
        stoppedVCPUSeconds = CounterFamily(
            registry, "ecs_warden_schedule_stopped_vcpu_seconds_total", "vCPU-seconds scheduled servers spent stopped by their schedule, per schedule and flavor.")
        stoppedRAMSeconds = CounterFamily(
            registry, "ecs_warden_schedule_stopped_ram_mb_seconds_total", "RAM (MB) × seconds scheduled servers spent stopped by their schedule, per schedule and flavor.")
        loopRuns = CounterFamily(registry, "ecs_warden_loop_runs_total", "Reconcile passes by loop and result (success, partial, error).")
        apiRequests = CounterFamily(registry, "ecs_warden_api_requests_total", "ECS API attempts by operation and outcome code.")
        loopLastSuccess = GaugeFamily(registry, "ecs_warden_loop_last_success_timestamp_seconds", "Unix time of each loop's last successful pass.")
        loopDurations = Mutex([:])
        apiDurations = Mutex([:])
        storeWritable = registry.makeGauge(
            descriptor: MetricNameDescriptor(
                metricName: "ecs_warden_store_writable", unitName: "",
                helpText: "1 while the journal can be appended to, 0 after an append failed (no mutating call is made; not ready)."))
        storeWritable.set(to: 1.0)
    }

    /// Sets `ecs_warden_store_writable` (written by `StoreHealth`).
    public func setStoreWritable(_ writable: Bool) {
        storeWritable.set(to: writable ? 1.0 : 0.0)
    }

    /// Records a finished pass.
    public func recordPass(loop: String, outcome: PassOutcome, duration: TimeInterval, finishedAt: Date) {
        loopRuns.increment([("loop", loop), ("result", outcome.resultLabel)])
        if case .failure = outcome {} else {
            loopLastSuccess.set([("loop", loop)], finishedAt.timeIntervalSince1970)
        }
        let histogram = loopDurations.withLock { cache in
            if let existing = cache[loop] { return existing }
            let made = registry.makeDurationHistogram(
                descriptor: MetricNameDescriptor(metricName: "ecs_warden_loop_duration_seconds", unitName: "", helpText: "Duration of reconcile passes."),
                labels: [("loop", loop)], buckets: Self.loopBuckets)
            cache[loop] = made
            return made
        }
        histogram.recordNanoseconds(Int64(duration * 1e9))
    }

    /// Records one API attempt (wire this to `ECSClient`'s observer).
    public func recordAPI(_ record: ECSRequestRecord) {
        apiRequests.increment([("operation", record.operation), ("code", record.outcomeLabel)])
        let histogram = apiDurations.withLock { cache in
            if let existing = cache[record.operation] { return existing }
            let made = registry.makeDurationHistogram(
                descriptor: MetricNameDescriptor(
                    metricName: "ecs_warden_api_request_duration_seconds", unitName: "", helpText: "Duration of ECS API attempts."),
                labels: [("operation", record.operation)], buckets: Self.apiBuckets)
            cache[record.operation] = made
            return made
        }
        histogram.recordNanoseconds(record.duration.components.seconds * 1_000_000_000 + record.duration.components.attoseconds / 1_000_000_000)
    }

    /// Counts a sale-state transition.
    func recordFlavorChange(region: String, az: String, flavor: String) {
        flavorChanges.increment([("region", region), ("az", az), ("flavor", flavor)])
    }

    /// Counts scheduled actions per server.
    func recordScheduleActions(schedule: String, action: String, result: ActionMetricResult, count: Int) {
        guard count > 0 else { return }
        scheduleActions.increment([("schedule", schedule), ("action", action), ("result", result.rawValue)], by: count)
    }

    /// Adds the stopped time of one window.
    func recordSavings(schedule: String, flavor: String, seconds: Double, vcpus: Int, ramMB: Int) {
        let labels = [("schedule", schedule), ("flavor", flavor)]
        let whole = Int(seconds.rounded())
        guard whole > 0 else { return }
        stoppedServerSeconds.increment(labels, by: whole)
        stoppedVCPUSeconds.increment(labels, by: whole * max(0, vcpus))
        stoppedRAMSeconds.increment(labels, by: whole * max(0, ramMB))
    }

    /// Counts stuck-server remedies per server.
    func recordRemediationActions(action: String, result: ActionMetricResult, count: Int) {
        guard count > 0 else { return }
        remediationActions.increment([("action", action), ("result", result.rawValue)], by: count)
    }

    /// The exposition text (sorted by nothing: the registry's order is not stable).
    public func exposition() -> String { registry.emitToString() }
}

/// A gauge name with a changing set of label sets. `replace` writes a whole snapshot: label sets
/// that are gone are unregistered, so a resolved problem stops being exported.
final class GaugeFamily: Sendable {
    typealias Labels = [(String, String)]
    private let registry: PrometheusCollectorRegistry
    private let name: String
    private let help: String
    private let gauges: Mutex<[String: Gauge]>

    init(_ registry: PrometheusCollectorRegistry, _ name: String, _ help: String) {
        self.registry = registry
        self.name = name
        self.help = help
        self.gauges = Mutex([:])
    }

    private static func key(_ labels: Labels) -> String {
        labels.map { "\($0.0)=\($0.1)" }.joined(separator: "\u{1F}")
    }

    private func gauge(_ labels: Labels) -> Gauge {
        gauges.withLock { gauges in
            let key = Self.key(labels)
            if let gauge = gauges[key] { return gauge }
            let gauge = registry.makeGauge(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels)
            gauges[key] = gauge
            return gauge
        }
    }

    /// Sets one series.
    func set(_ labels: Labels, _ value: Double) {
        gauge(labels).set(value)
    }

    /// Replaces every series whose labels start with `scope` by `values`; the others are untouched.
    func replace(scope: Labels = [], with values: [(Labels, Double)]) {
        // The separator ends the scope, so region "eu-west-0" does not also claim "eu-west-01".
        let scopeKey = Self.key(scope) + "\u{1F}"
        let keep = Set(values.map { Self.key($0.0) })
        let stale: [Gauge] = gauges.withLock { gauges in
            let gone = gauges.filter { key, _ in (scope.isEmpty || key.hasPrefix(scopeKey)) && !keep.contains(key) }
            for key in gone.keys { gauges.removeValue(forKey: key) }
            return Array(gone.values)
        }
        for gauge in stale { registry.unregisterGauge(gauge) }
        for (labels, value) in values { set(labels, value) }
    }

    /// The current value of every series (tests and the status API).
    var count: Int { gauges.withLock { $0.count } }
}

/// A counter name with label sets created on first use.
final class CounterFamily: Sendable {
    private let registry: PrometheusCollectorRegistry
    private let name: String
    private let help: String
    private let counters: Mutex<[String: Counter]>

    init(_ registry: PrometheusCollectorRegistry, _ name: String, _ help: String) {
        self.registry = registry
        self.name = name
        self.help = help
        self.counters = Mutex([:])
    }

    func increment(_ labels: [(String, String)], by amount: Int = 1) {
        let counter = counters.withLock { counters in
            let key = labels.map { "\($0.0)=\($0.1)" }.joined(separator: "\u{1F}")
            if let counter = counters[key] { return counter }
            // The name carries `_total`; the descriptor's unit stays empty so it is not doubled.
            let counter = registry.makeCounter(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels)
            counters[key] = counter
            return counter
        }
        counter.increment(by: Int64(amount))
    }
}
