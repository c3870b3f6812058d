import ECSAPI
import Foundation

/// "Can N servers of flavor F be launched in project P now?" — answered from what the loops
/// already hold (the last quota reading, the flavor catalogue and sale states, the scheduler's
/// reading of the servers due to start), with no call to the cloud. Pure.
public enum LaunchPreflight {
    /// The question.
    public struct Request: Sendable, Equatable, Codable {
        public var project: String
        public var flavor: String
        /// One AZ, or every AZ of the region when nil.
        public var az: String?
        public var count: Int
        /// Scheduled starts within this many hours are taken into account.
        public var hours: Double?
        /// Whether the cloud counts stopped servers in its quota usage. The API reference does not
        /// say (the simulator does count them); when false, the cores, RAM and instances of the
        /// scheduled starts within `hours` are taken from the headroom.
        public var stoppedServersCounted: Bool?

        public init(project: String, flavor: String, az: String? = nil, count: Int, hours: Double? = nil, stoppedServersCounted: Bool? = nil) {
            self.project = project
            self.flavor = flavor
            self.az = az
            self.count = count
            self.hours = hours
            self.stoppedServersCounted = stoppedServersCounted
        }
    }

    /// A server due to start at a schedule boundary.
    public struct ScheduledStart: Sendable, Equatable, Codable {
        public var serverId: String
        public var flavor: String
        public var az: String
        public var at: Date
        public var vcpus: Int?
        public var ramMB: Int?

        public init(serverId: String, flavor: String, az: String, at: Date, vcpus: Int?, ramMB: Int?) {
            self.serverId = serverId
            self.flavor = flavor
            self.az = az
            self.at = at
            self.vcpus = vcpus
            self.ramMB = ramMB
        }
    }

    /// One quota resource against what the launch needs.
    public struct QuotaCheck: Sendable, Equatable, Codable {
        public var resource: String
        public var needed: Int
        /// Nil when unlimited or unknown.
        public var headroom: Int?
        /// Taken by scheduled starts within the horizon (when stopped servers are not counted).
        public var reservedForScheduledStarts: Int
        public var ok: Bool
    }

    /// The answer for one AZ.
    public struct ZoneAnswer: Sendable, Equatable, Codable {
        public var az: String
        public var launchable: Bool
        public var saleState: String?
        public var reasons: [String]
        /// Servers of this flavor due to start in this AZ within the horizon (they compete for the
        /// same capacity).
        public var scheduledStarts: Int
    }

    /// The whole answer.
    public struct Answer: Sendable, Equatable, Codable {
        public var request: Request
        public var vcpus: Int?
        public var ramMB: Int?
        public var quota: [QuotaCheck]
        public var zones: [ZoneAnswer]
        /// Yes in at least one AZ asked about.
        public var launchable: Bool
        /// AZs of the region where the flavor is on sale (when the asked AZ cannot take it).
        public var alternativeZones: [String]
        /// Flavors of the same series and size on sale in the asked AZ (or any AZ asked).
        public var alternativeFlavors: [String]
        /// Why nothing could be said, when the loops hold no data yet.
        public var problems: [String]
    }

    public static func answer(
        _ request: Request, catalogue: [Flavor], zones: [String], saleStates: [SaleKey: SaleStateSince], quota: QuotaWatch.ProjectQuota?,
        scheduledStarts: [ScheduledStart], now: Date
    ) -> Answer {
        var problems: [String] = []
        let flavor = catalogue.first { $0.id == request.flavor }
        if flavor == nil { problems.append("flavor \(request.flavor) is not in the region's catalogue") }
        if quota == nil { problems.append("no quota reading of \(request.project) yet") }
        let horizon = now.addingTimeInterval((request.hours ?? 8) * 3600)
        let upcoming = scheduledStarts.filter { $0.at > now && $0.at <= horizon }
        let counted = request.stoppedServersCounted ?? true
        func check(_ resource: String, perServer: Int?, reserved: Int) -> QuotaCheck {
            let needed = (perServer ?? 0) * request.count
            let usage = quota?.resources.first { $0.resource == resource }
            let headroom = usage?.headroom
            let reservedNow = counted ? 0 : reserved
            let ok = headroom.map { $0 - reservedNow >= needed } ?? (usage != nil)
            return QuotaCheck(resource: resource, needed: needed, headroom: headroom, reservedForScheduledStarts: reservedNow, ok: ok)
        }
        let quotaChecks = [
            check("instances", perServer: 1, reserved: upcoming.count),
            check("cores", perServer: flavor?.vcpus, reserved: upcoming.reduce(0) { $0 + ($1.vcpus ?? 0) }),
            check("ram", perServer: flavor?.ram, reserved: upcoming.reduce(0) { $0 + ($1.ramMB ?? 0) }),
        ]
        let quotaReasons = quotaChecks.filter { !$0.ok }.map { check in
            "quota \(check.resource): needs \(check.needed), headroom \(check.headroom.map(String.init) ?? "unknown")"
                + (check.reservedForScheduledStarts > 0 ? " less \(check.reservedForScheduledStarts) for scheduled starts" : "")
        }
        let asked = request.az.map { [$0] } ?? zones
        var answers: [ZoneAnswer] = []
        for zone in asked {
            var reasons = quotaReasons
            let state = saleStates[SaleKey(az: zone, flavor: request.flavor)]
            if !zones.contains(zone) { reasons.append("\(zone) is not an AZ of the region") }
            if let state {
                if SaleStateResolver.isSoldOut(state.state) {
                    reasons.append("sold out in \(zone) since \(ISO8601DateFormatter().string(from: state.since))")
                } else if !SaleStateResolver.isLaunchable(state.state) {
                    reasons.append("\(state.state) in \(zone)")
                }
            } else if flavor != nil {
                reasons.append("no sale state known in \(zone)")
            }
            if flavor == nil { reasons.append("unknown flavor") }
            let competing = upcoming.filter { $0.flavor == request.flavor && $0.az == zone }.count
            answers.append(
                ZoneAnswer(az: zone, launchable: reasons.isEmpty, saleState: state?.state, reasons: reasons, scheduledStarts: competing))
        }
        let onSale = zones.filter { zone in
            saleStates[SaleKey(az: zone, flavor: request.flavor)].map { SaleStateResolver.isLaunchable($0.state) } ?? false
        }
        var alternatives: [String] = []
        if let flavor, let series = request.flavor.first {
            for other in catalogue where other.id != flavor.id && other.id.first == series && other.vcpus == flavor.vcpus && other.ram == flavor.ram {
                let sold = asked.contains { zone in saleStates[SaleKey(az: zone, flavor: other.id)].map { SaleStateResolver.isLaunchable($0.state) } ?? false }
                if sold { alternatives.append(other.id) }
            }
        }
        return Answer(
            request: request, vcpus: flavor?.vcpus, ramMB: flavor?.ram, quota: quotaChecks, zones: answers, launchable: answers.contains(where: \.launchable),
            alternativeZones: onSale.filter { !asked.contains($0) }, alternativeFlavors: alternatives.sorted(),
            problems: problems)
    }
}
