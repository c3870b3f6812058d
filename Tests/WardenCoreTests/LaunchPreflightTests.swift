import ECSAPI
import Foundation
import Testing

@testable import WardenCore

/// The launch preflight's answers: quota short, sold out in one AZ and on sale elsewhere, a
/// scheduled start eating the headroom, alternatives of the same series and size.
@Suite struct LaunchPreflightTests {
    let now = Date(timeIntervalSince1970: 1_795_400_000)
    let zones = ["az-a", "az-b", "az-c"]

    func flavor(_ id: String, vcpus: Int, ram: Int) throws -> Flavor {
        try JSONDecoder().decode(Flavor.self, from: Data(#"{"id":"\#(id)","name":"\#(id)","vcpus":\#(vcpus),"ram":\#(ram),"os_extra_specs":{}}"#.utf8))
    }

    func quota(instances: Int, cores: Int, ram: Int) -> QuotaWatch.ProjectQuota {
        QuotaWatch.ProjectQuota(
            project: "p", region: "r", observedAt: now,
            resources: [("instances", instances), ("cores", cores), ("ram", ram)].map { name, headroom in
                QuotaWatch.ResourceQuota(resource: name, used: 0, limit: headroom, headroom: headroom, ratio: 0, level: .ok, exhaustionETASeconds: nil)
            })
    }

    func states(_ pairs: [(String, String, String)]) -> [SaleKey: SaleStateSince] {
        Dictionary(uniqueKeysWithValues: pairs.map { (SaleKey(az: $0.1, flavor: $0.0), SaleStateSince(state: $0.2, since: now)) })
    }

    @Test func soldOutInOneZoneOnSaleElsewhereWithAlternatives() throws {
        let catalogue = [try flavor("s3.large.2", vcpus: 2, ram: 4096), try flavor("s6.large.2", vcpus: 2, ram: 4096), try flavor("c6.large.2", vcpus: 2, ram: 4096)]
        let sale = states([
            ("s3.large.2", "az-a", "sellout"), ("s3.large.2", "az-b", "normal"), ("s3.large.2", "az-c", "normal"),
            ("s6.large.2", "az-a", "normal"), ("c6.large.2", "az-a", "normal"),
        ])
        let answer = LaunchPreflight.answer(
            .init(project: "p", flavor: "s3.large.2", az: "az-a", count: 2), catalogue: catalogue, zones: zones, saleStates: sale,
            quota: quota(instances: 10, cores: 100, ram: 100_000), scheduledStarts: [], now: now)
        #expect(answer.launchable == false)
        #expect(answer.zones.map(\.az) == ["az-a"])
        #expect(answer.zones[0].reasons.contains { $0.hasPrefix("sold out in az-a") })
        #expect(answer.alternativeZones == ["az-b", "az-c"])
        // Same series (s) and size: s6.large.2; c6.large.2 is another series.
        #expect(answer.alternativeFlavors == ["s6.large.2"])
        // Every AZ asked: yes where on sale.
        let everywhere = LaunchPreflight.answer(
            .init(project: "p", flavor: "s3.large.2", count: 2), catalogue: catalogue, zones: zones, saleStates: sale,
            quota: quota(instances: 10, cores: 100, ram: 100_000), scheduledStarts: [], now: now)
        #expect(everywhere.launchable)
        #expect(everywhere.zones.map(\.launchable) == [false, true, true])
    }

    @Test func quotaShortIsAReasonInEveryZone() throws {
        let catalogue = [try flavor("s3.large.2", vcpus: 2, ram: 4096)]
        let sale = states(zones.map { ("s3.large.2", $0, "normal") })
        let answer = LaunchPreflight.answer(
            .init(project: "p", flavor: "s3.large.2", count: 5), catalogue: catalogue, zones: zones, saleStates: sale,
            quota: quota(instances: 10, cores: 8, ram: 100_000), scheduledStarts: [], now: now)
        #expect(!answer.launchable)
        #expect(answer.quota.first { $0.resource == "cores" }?.ok == false)
        #expect(answer.zones.allSatisfy { $0.reasons.contains { $0.hasPrefix("quota cores: needs 10, headroom 8") } })
    }

    @Test func aScheduledStartEatsTheHeadroomWhenStoppedServersAreNotCounted() throws {
        let catalogue = [try flavor("s3.large.2", vcpus: 2, ram: 4096)]
        let sale = states(zones.map { ("s3.large.2", $0, "normal") })
        let starts = (0..<3).map { LaunchPreflight.ScheduledStart(serverId: "s\($0)", flavor: "s3.large.2", az: "az-b", at: now.addingTimeInterval(3600), vcpus: 2, ramMB: 4096) }
        func ask(counted: Bool?) -> LaunchPreflight.Answer {
            LaunchPreflight.answer(
                .init(project: "p", flavor: "s3.large.2", count: 2, stoppedServersCounted: counted), catalogue: catalogue, zones: zones, saleStates: sale,
                quota: quota(instances: 10, cores: 8, ram: 100_000), scheduledStarts: starts, now: now)
        }
        // Counted (the simulator's behaviour): the stopped servers already hold their cores.
        #expect(ask(counted: nil).launchable)
        // Not counted: the 6 cores of the three starts leave 2, and the launch needs 4.
        let tight = ask(counted: false)
        #expect(!tight.launchable)
        #expect(tight.quota.first { $0.resource == "cores" }?.reservedForScheduledStarts == 6)
        #expect(tight.zones.first { $0.az == "az-b" }?.scheduledStarts == 3)
        // Starts beyond the horizon do not count.
        let later = LaunchPreflight.answer(
            .init(project: "p", flavor: "s3.large.2", count: 2, hours: 0.5, stoppedServersCounted: false), catalogue: catalogue, zones: zones,
            saleStates: sale, quota: quota(instances: 10, cores: 8, ram: 100_000), scheduledStarts: starts, now: now)
        #expect(later.launchable)
    }

    @Test func anUnknownFlavorOrNoDataYetIsSaid() {
        let answer = LaunchPreflight.answer(
            .init(project: "p", flavor: "x9.huge", count: 1), catalogue: [], zones: zones, saleStates: [:], quota: nil, scheduledStarts: [], now: now)
        #expect(!answer.launchable)
        #expect(answer.problems.count == 2)
    }
}
