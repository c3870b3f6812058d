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
    /// The registry of the metrics that are not labelled families (histograms, the store gauge,
    /// cluster and reload counters); the families follow its text in `exposition()`.
    public let registry: PrometheusCollectorRegistry
    private let families = ExportedMetricFamilies()
    /// The size of the registry's last text, to reserve room for the next.
    private let registryTextSize = Mutex(0)

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
        quotaLimit = families.gauge("ecs_warden_quota_limit", "Quota limit per resource (absent when unlimited).", scopeDepth: 2)
        quotaUsed = families.gauge("ecs_warden_quota_used", "Quota usage per resource.", scopeDepth: 2)
        quotaRatio = families.gauge(
            "ecs_warden_quota_usage_ratio", "Used divided by limit per resource (0 to 1+; absent when unlimited).", scopeDepth: 2)
        quotaETA = families.gauge(
            "ecs_warden_quota_exhaustion_eta_seconds", "Seconds until the resource is exhausted at the recent linear rate (absent when not growing).",
            scopeDepth: 2)
        stuckJobs = families.gauge("ecs_warden_stuck_jobs", "Watched jobs in INIT or RUNNING past their deadline.")
        stuckServers = families.gauge(
            "ecs_warden_stuck_servers", "Servers whose status and task_state have not changed for longer than their threshold.")
        stuckServerAge = families.gauge(
            "ecs_warden_stuck_server_age_seconds", "Seconds each currently stuck server has been in its state (bounded set).")
        unhealthyServers = families.gauge(
            "ecs_warden_unhealthy_servers",
            "Servers whose details show a problem, by reason (status_error, status_unknown, host_down, host_maintenance, host_unknown, fault).")
        flavorSoldOut = families.gauge(
            "ecs_warden_flavor_sold_out", "1 when the flavor is sold out (sellout, obt_sellout) in the AZ, else 0.", scopeDepth: 1)
        scheduleServers = families.gauge("ecs_warden_schedule_servers", "Servers carrying each schedule tag, by state.")
        scheduleTagErrors = families.gauge("ecs_warden_schedule_tag_errors", "Servers left alone because of a bad schedule-related tag, by reason.")
        scheduleListingErrors = families.gauge(
            "ecs_warden_schedule_listing_errors", "Projects whose server listing the scheduler refused, by reason (listing_without_tags): nothing is acted on there.")
        scheduleAtRisk = families.gauge(
            "ecs_warden_schedule_at_risk",
            "Servers due to start within the preflight lead whose start the API would refuse, by reason (flavor_sold_out, flavor_not_on_sale, flavor_gone, locked, server_error).")
        flavorChanges = families.counter("ecs_warden_flavor_state_changes_total", "Sale-state transitions observed per flavor and AZ.")
        scheduleActions = families.counter(
            "ecs_warden_schedule_actions_total", "Scheduled start/stop actions per server, by result (success, failed, retrying, capacity, unknown, dry_run).")
        remediationActions = families.counter(
            "ecs_warden_remediation_actions_total", "Stuck-server remedies per server, by action and result (success, failed, retrying, capacity, unknown, dry_run).")
        stoppedServerSeconds = families.counter(
            "ecs_warden_schedule_stopped_server_seconds_total", "Seconds scheduled servers spent stopped by their schedule, per schedule and flavor.")
        stoppedVCPUSeconds = families.counter(
            "ecs_warden_schedule_stopped_vcpu_seconds_total", "vCPU-seconds scheduled servers spent stopped by their schedule, per schedule and flavor.")
        stoppedRAMSeconds = families.counter(
            "ecs_warden_schedule_stopped_ram_mb_seconds_total", "RAM (MB) × seconds scheduled servers spent stopped by their schedule, per schedule and flavor.")
        loopRuns = families.counter("ecs_warden_loop_runs_total", "Reconcile passes by loop and result (success, partial, error).")
        apiRequests = families.counter("ecs_warden_api_requests_total", "ECS API attempts by operation and outcome code.")
        loopLastSuccess = families.gauge("ecs_warden_loop_last_success_timestamp_seconds", "Unix time of each loop's last successful pass.")
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

    /// The gauge family `name` (made on first use), written after the registry's metrics.
    /// `scopeDepth` is the number of leading labels its `replace` scopes name (0: the whole family).
    public func gaugeFamily(named name: String, help: String, scopeDepth: Int = 0) -> GaugeFamily {
        families.gauge(name, help, scopeDepth: scopeDepth)
    }

    /// The exposition in parts, to be sent one after the other: the registry's text (in its own
    /// order), then each family's cached text (series sorted by labels; nothing for an empty family).
    public func expositionParts() -> [[UInt8]] {
        var registryText = [UInt8]()
        registryText.reserveCapacity(registryTextSize.withLock { $0 } + 1024)
        registry.emit(into: &registryText)
        registryTextSize.withLock { $0 = registryText.count }
        return [registryText] + families.expositionTexts()
    }

    /// The exposition text as UTF-8 bytes.
    public func expositionBytes() -> [UInt8] {
        let parts = expositionParts()
        var bytes = [UInt8]()
        bytes.reserveCapacity(parts.reduce(0) { $0 + $1.count })
        for part in parts { bytes.append(contentsOf: part) }
        return bytes
    }

    /// The exposition text.
    public func exposition() -> String { String(decoding: expositionBytes(), as: UTF8.self) }
}
