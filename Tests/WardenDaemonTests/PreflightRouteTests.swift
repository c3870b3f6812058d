import ECSAPI
import ECSSimulator
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Testing
import WardenCore
import WardenHTTP

@testable import WardenDaemon

/// The launch preflight against the simulator, through the control API: the loops read the quota,
/// the catalogue and the sale states; the answer uses them with no call to the cloud and no token.
@Suite struct PreflightRouteTests {
    @Test func preflightAnswersFromWhatTheLoopsHold() async throws {
        let start = Date(timeIntervalSince1970: 1_795_400_000)
        let region = SimulatedRegion(configuration: SimRegionConfiguration(accessKeys: ["PFAK": "pf-secret"], speed: 0, seed: 9, startTime: start.timeIntervalSince1970))
        let ids = await FleetGenerator(projects: 1, serversPerProject: 4, seed: 9).populate(region)
        try await region.setQuota(projectId: ids[0], quota: SimQuota(instances: 6))
        try await region.setSaleState(flavorId: "s3.small.2", az: "eu-west-0a", state: "sellout")
        let simulator = try await SimulatorServer.start(region: region)
        let yaml = """
            state_dir: /nonexistent
            listen: {metrics: "127.0.0.1:0", control: "127.0.0.1:0"}
            accounts: [{name: sim, access_key: {env: SIM_AK}, secret_key: {env: SIM_SK}}]
            regions: [{name: eu-west-0, endpoint: "\(simulator.endpoint)", request_timeout: 2s}]
            projects: [{name: p0, id: "\(ids[0])", account: sim, region: eu-west-0}]
            """
        let environment = ["SIM_AK": "PFAK", "SIM_SK": "pf-secret"]
        let configuration = try ConfigLoader.parse(yaml, file: "preflight-test.yaml", environment: environment)
        var logger = Logger(label: "preflight-test")
        logger.logLevel = .critical
        let runtime = try WardenRuntime(
            configuration: configuration, store: try SQLiteStateStore.inMemory(), clock: ManualClock(start: start), logger: logger, environment: environment)
        _ = try await runtime.quota.reconcile(now: start)
        _ = try await runtime.flavors.reconcile(now: start)
        let before = await region.requests().count
        let app = Application(router: WardenRoutes.controlRouter(backend: runtime.backend(token: "pf-token", reload: { nil }, started: { true })))
        func ask(_ body: String) async throws -> LaunchPreflight.Answer {
            let data = try await app.test(.router) { client in
                try await client.execute(uri: "/v1/preflight", method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(string: body)) { response in
                    #expect(response.status == .ok)
                    return Data(buffer: response.body)
                }
            }
            return try JSONDecoder().decode(LaunchPreflight.Answer.self, from: data)
        }
        // Sold out in eu-west-0a, on sale elsewhere: no there, the other AZs offered.
        let soldOut = try await ask(#"{"project": "p0", "flavor": "s3.small.2", "az": "eu-west-0a", "count": 1}"#)
        #expect(!soldOut.launchable)
        #expect(soldOut.alternativeZones.contains("eu-west-0b"))
        // Quota short: 4 servers of 6 allowed, 3 more asked.
        let short = try await ask(#"{"project": "p0", "flavor": "s3.small.2", "az": "eu-west-0b", "count": 3}"#)
        #expect(!short.launchable)
        #expect(short.zones.first?.reasons.contains { $0.hasPrefix("quota instances: needs 3, headroom 2") } == true)
        // Within the quota and on sale: yes.
        let fine = try await ask(#"{"project": "p0", "flavor": "s3.small.2", "az": "eu-west-0b", "count": 2}"#)
        #expect(fine.launchable)
        // Read-only: not one call to the cloud.
        #expect(await region.requests().count == before)
        await runtime.shutdown()
        await simulator.shutdown()
    }
}
