import ECSAPI
import Foundation

/// Servers due to start at a schedule's next boundary whose start the API would refuse, known
/// ahead of the boundary: the flavor sold out (or no longer sold) in the server's AZ — the start
/// would fail with `Ecs.0319` "Insufficient resources for this flavor" — a locked server
/// (`Ecs.0605`), a server in `ERROR`. Pure.
public enum StartPreflight {
    /// One server at risk.
    public struct AtRisk: Sendable, Equatable, Codable {
        public var project: String
        public var schedule: String
        public var serverId: String
        public var name: String
        /// `flavor_sold_out`, `flavor_not_on_sale`, `flavor_gone`, `locked`, `server_error`: a
        /// closed set (the metric's `reason` label).
        public var reason: String
        public var detail: String
        /// The start boundary at risk.
        public var boundary: Date
    }

    /// The reasons, a closed set.
    public static let reasons = ["flavor_sold_out", "flavor_not_on_sale", "flavor_gone", "locked", "server_error"]

    /// The servers of `projects` due to start at a boundary within `lead` of `now` whose start is
    /// at risk, given the sale states of each region (`regionOf` maps a project to its region).
    public static func atRisk(
        projects: [ProjectServers], schedules: [String: Schedule], tags: ScheduleTagKeys, regionOf: [String: String],
        saleStates: [String: [SaleKey: SaleStateSince]], lead: TimeInterval, now: Date
    ) -> [AtRisk] {
        var nextStart: [String: Date] = [:]
        for (name, schedule) in schedules where AutoStopPlanner.allowed(.start, schedule) {
            if let next = ScheduleEvaluator(schedule: schedule).nextBoundary(after: now), next.action == .start,
                next.date.timeIntervalSince(now) <= lead
            {
                nextStart[name] = next.date
            }
        }
        guard !nextStart.isEmpty else { return [] }
        var found: [AtRisk] = []
        for project in projects.sorted(by: { $0.project < $1.project }) {
            let states = regionOf[project.project].flatMap { saleStates[$0] } ?? [:]
            for server in project.servers.sorted(by: { $0.id < $1.id }) {
                guard let schedule = server.tagValue(tags.schedule), let boundary = nextStart[schedule], server.status != .active,
                    server.tagValue(tags.ignore) == nil
                else { continue }
                if let snooze = server.tagValue(tags.snoozeUntil), AutoStopPlanner.parseSnooze(snooze).map({ $0 >= boundary }) ?? true { continue }
                func add(_ reason: String, _ detail: String) {
                    found.append(
                        AtRisk(project: project.project, schedule: schedule, serverId: server.id, name: server.name, reason: reason, detail: detail, boundary: boundary))
                }
                if server.status.rawValue == "ERROR" { add("server_error", "the server is in ERROR") }
                if server.locked == true { add("locked", "the server is locked (a start is refused with Ecs.0605)") }
                guard let flavor = server.flavor?.id, let zone = server.availabilityZone, !states.isEmpty else { continue }
                if let state = states[SaleKey(az: zone, flavor: flavor)] {
                    if SaleStateResolver.isSoldOut(state.state) {
                        add("flavor_sold_out", "flavor \(flavor) is sold out in \(zone) since \(ISO8601DateFormatter().string(from: state.since))")
                    } else if !SaleStateResolver.isLaunchable(state.state) {
                        add("flavor_not_on_sale", "flavor \(flavor) is \(state.state) in \(zone)")
                    }
                } else {
                    add("flavor_gone", "flavor \(flavor) is not listed in \(zone)")
                }
            }
        }
        return found
    }
}
