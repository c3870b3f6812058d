import ECSSigning
import Foundation
import Testing

@testable import ECSAPI
@testable import ECSSimulator

/// The fast listing decoder and the full one agree on the simulator's rendering of generated
/// fleets: every page of every microversion the gates change, with servers moved through every
/// vm_state × task_state pair of the reference's table A-4, locked, on failing hosts, in ERROR
/// with a fault.
@Suite struct ServerListingAgreementTests {
    /// The page the simulator answers to `servers/detail?limit=&marker=` at `microversion`.
    func renderedPage(_ region: SimulatedRegion, limit: Int, marker: String?, microversion: String) async throws -> [UInt8] {
        var query = "limit=\(limit)"
        if let marker { query += "&marker=\(marker)" }
        let request = SimHTTPRequest(
            method: "GET", path: "/v2.1/\(simProject)/servers/detail", rawQuery: query, headers: [.init("X-OpenStack-Nova-API-Version", microversion)])
        let context = APIContext(request: request, segments: ["v2.1", simProject, "servers", "detail"], projectId: simProject, base: "http://127.0.0.1:1", requestId: "r")
        let response = try await region.listNovaServers(context, version: Microversion(headerValue: microversion), detail: true)
        #expect(response.status == 200)
        return response.body
    }

    /// (vm_state, task_state) pairs of table A-4 plus one outside it (status UNKNOWN).
    static let statePairs: [(String, String?)] = [
        ("building", "scheduling"), ("building", nil), ("active", "rebooting"), ("active", "reboot_started_hard"), ("active", "rebuilding"),
        ("active", "migrating"), ("active", "powering-off"), ("active", "deleting"), ("active", nil), ("stopped", "resize_prep"),
        ("stopped", "rebuild_spawning"), ("stopped", "powering-on"), ("stopped", nil), ("resized", "resize_reverting"), ("resized", nil),
        ("error", "rebuilding"), ("error", nil), ("shelved", "shelving"), ("shelved", nil), ("shelved_offloaded", "unshelving"),
        ("stopped", "migrating"),
    ]

    @Test func everyPageOfAGeneratedFleetAgrees() async throws {
        let region = SimulatedRegion(configuration: SimRegionConfiguration(accessKeys: [simAK: simSK], speed: 0, seed: 11))
        await FleetGenerator(projects: 1, serversPerProject: 600, scheduledShare: 0.4, schedules: ["office", "lab", "weeknights"], seed: 11)
            .populate(region, firstProjectIds: [simProject])
        let ids = try #require(await region.projects[simProject]?.order)
        for (index, id) in ids.enumerated() where index % 3 == 0 {
            let (vmState, taskState) = Self.statePairs[(index / 3) % Self.statePairs.count]
            try await region.setServerState(
                projectId: simProject, serverId: id, vmState: vmState, taskState: .some(taskState), locked: index % 2 == 0,
                hostStatus: ["UP", "DOWN", "MAINTENANCE", "UNKNOWN", ""][index % 5])
        }
        var statuses = Set<String>()
        for microversion in ["2.1", "2.26", "2.60"] {
            var marker: String?
            var pages = 0
            repeat {
                let bytes = try await renderedPage(region, limit: 250, marker: marker, microversion: microversion)
                let full = try JSONDecoder().decode(ServerDetailPage.self, from: Data(bytes))
                let fast = try ServerListingDecoder.decodePage(bytes)
                #expect(fast.hasNextLink == full.hasNextLink)
                #expect(fast.servers.count == full.servers.count)
                var sharing = CompactServer.Sharing()
                for (fastServer, fullServer) in zip(fast.servers, full.servers) {
                    let expected = ServerListingView(fullServer)
                    #expect(ServerListingView(fastServer) == expected)
                    // And kept in compact form between passes, it comes back the same.
                    #expect(ServerListingView(CompactServer(fastServer, sharing: &sharing).server) == expected)
                    if ServerListingView(fastServer) != expected { return }
                }
                statuses.formUnion(fast.servers.map(\.status.rawValue))
                marker = full.hasNextLink ? full.servers.last?.id : nil
                pages += 1
            } while marker != nil
            #expect(pages == 3)
        }
        #expect(statuses.isSuperset(of: ["ACTIVE", "SHUTOFF", "BUILD", "REBOOT", "HARD_REBOOT", "REBUILD", "MIGRATING", "RESIZE", "REVERT_RESIZE", "VERIFY_RESIZE", "ERROR", "SHELVED", "SHELVED_OFFLOADED", "UNKNOWN"]), "\(statuses.sorted())")
    }

    @Test func theClientsFastListingMatchesItsFullListingOverHTTP() async throws {
        try await SimHarness.with(servers: 2500) { harness in
            let full = try await harness.client.serverDetails().collect()
            let fast = try await harness.client.serverListing().collect()
            #expect(fast.count == 2500)
            #expect(fast.map(ServerListingView.init) == full.map(ServerListingView.init))
            // The minimum: three pages of 1,000 each way.
            #expect(await harness.loggedOperations().filter { $0 == "NovaListServersDetails" }.count == 6)
        }
    }
}
