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

/// The plan endpoint runs the real planner with the journal's holds, from the last listing.
@Suite struct ControlPlanTests {
    /// Monday 2026-11-23 19:00:30 UTC, just after the stop boundary of a UTC office-hours schedule.
    static let afterStop = Date(timeIntervalSince1970: 1_795_460_430)

    @Test func planHoldsServersOfACallWithoutAnswerAndListsNothing() async throws {
        let region = SimulatedRegion(configuration: SimRegionConfiguration(accessKeys: ["PLANAK": "plan-secret"], speed: 0, seed: 5, startTime: Self.afterStop.timeIntervalSince1970))
        let ids = await FleetGenerator(projects: 1, serversPerProject: 0, seed: 5).populate(region)
        var servers: [String] = []
        for index in 0..<3 {
            servers.append(
                await region.seedServer(
                    projectId: ids[0], name: "web-\(index)", flavorId: "s3.small.2", running: true, tags: [SimTag(key: "warden-schedule", value: "office")]))
        }
        let tagged = Set(servers)
        let simulator = try await SimulatorServer.start(region: region)
        let yaml = """
            state_dir: /nonexistent
            listen: {metrics: "127.0.0.1:0", control: "127.0.0.1:0"}
            accounts: [{name: sim, access_key: {env: SIM_AK}, secret_key: {env: SIM_SK}}]
            regions: [{name: eu-west-0, endpoint: "\(simulator.endpoint)", request_timeout: 2s}]
            projects: [{name: p0, id: "\(ids[0])", account: sim, region: eu-west-0}]
            schedules:
              office:
                timezone: UTC
                periods: [{days: mon-fri, start: "08:00", stop: "19:00"}]
            """
        let environment = ["SIM_AK": "PLANAK", "SIM_SK": "plan-secret"]
        let configuration = try ConfigLoader.parse(yaml, file: "plan-test.yaml", environment: environment)
        var logger = Logger(label: "plan-test")
        logger.logLevel = .critical
        let hourBefore = Self.afterStop.addingTimeInterval(-3630)
        let clock = ManualClock(start: hourBefore)
        let runtime = try WardenRuntime(
            configuration: configuration, store: try SQLiteStateStore.inMemory(), clock: clock, logger: logger, environment: environment)
        // A pass an hour before the boundary reads the servers (and does nothing).
        let early = try await runtime.scheduler.reconcile(now: hourBefore)
        #expect(early.actions == 0)
        // At the boundary a stop call went out and got no answer (the daemon died): its intent is open.
        try await runtime.context.store.append(
            JournalEntry(
                at: Self.afterStop.addingTimeInterval(-29), kind: .intent, loop: "schedule", project: "p0", subject: "office", action: "stop",
                clientToken: "tok-plan", servers: servers, result: .pending, message: "stop 3 servers of office",
                boundary: Self.afterStop.addingTimeInterval(-30)))
        clock.set(Self.afterStop)
        let before = await region.requests().count
        let router = WardenRoutes.controlRouter(
            backend: runtime.backend(token: "plan-token", reload: { nil }, started: { true }))
        let app = Application(router: router)
        try await app.test(.router) { client in
            try await client.execute(uri: "/v1/plan?hours=2", method: .get) { response in
                #expect(response.status == .ok)
                let steps = try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [[String: Any]] ?? []
                let first = try #require(steps.first)
                // Without the journal's holds the planner would stop the three servers again now.
                #expect((first["batches"] as? [Any])?.isEmpty == true)
                let held = (first["skipped"] as? [[String: Any]] ?? []).filter { $0["reason"] as? String == "pending_intent" }
                #expect(Set(held.compactMap { $0["serverId"] as? String }) == tagged)
            }
            try await client.execute(uri: "/v1/loops/jobs/pause", method: .post, headers: [.authorization: "Bearer plan-token"]) { response in
                #expect(response.status == .conflict)
            }
            // A paused loop runs no pass, not even one asked for by hand.
            try await client.execute(uri: "/v1/loops/schedule/pause", method: .post, headers: [.authorization: "Bearer plan-token"]) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/v1/loops/schedule/run?wait=true", method: .post, headers: [.authorization: "Bearer plan-token"]) { response in
                #expect(response.status == .conflict)
            }
        }
        // The plan read the servers from the scheduler's last listing: no call to the cloud.
        #expect(await region.requests().count == before)
        await runtime.shutdown()
        await simulator.shutdown()
    }
}
