import AsyncHTTPClient
import ECSAPI
import ECSSigning
import Foundation
import Testing

@testable import ECSSimulator

let simAK = "SIMTESTAK"
let simSK = "sim-test-secret"
let simProject = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"

/// Quick retries so fault tests stay fast; the rules are the production ones.
let simRetry = RetryPolicy(maxAttempts: 4, baseDelay: .milliseconds(1), maxDelay: .milliseconds(10), busyServerDelay: .milliseconds(10), totalDeadline: .seconds(20))

/// A running simulator (manual clock unless `speed` is given) and a client of its first project.
struct SimHarness {
    let region: SimulatedRegion
    let server: SimulatorServer
    let client: ECSClient
    let http: HTTPClient

    /// Creates `servers` servers in the project (from the seeded fleet generator).
    static func start(servers: Int = 0, projects: Int = 1, speed: Double = 0, retry: RetryPolicy = simRetry, pageSize: Int = 1000) async throws -> SimHarness {
        let region = SimulatedRegion(
            configuration: SimRegionConfiguration(accessKeys: [simAK: simSK], iamUsers: ["ops": "ops-password"], speed: speed, seed: 7))
        await FleetGenerator(projects: projects, serversPerProject: servers, scheduledShare: 0.5, schedules: ["office"], seed: 7)
            .populate(region, firstProjectIds: [simProject])
        let server = try await SimulatorServer.start(region: region)
        let http = ECSClient.makeHTTPClient()
        let client = ECSClient(
            configuration: ECSClientConfiguration(
                endpoint: URL(string: server.endpoint)!, projectId: simProject, region: "eu-west-0",
                authentication: .accessKey(AccessKeyCredentials(accessKey: simAK, secretKey: simSK)), retry: retry, pageSize: pageSize),
            httpClient: http)
        return SimHarness(region: region, server: server, client: client, http: http)
    }

    func stop() async {
        try? await http.shutdown()
        await server.shutdown()
    }

    /// Runs `body` and always stops the harness.
    static func with(
        servers: Int = 0, projects: Int = 1, speed: Double = 0, retry: RetryPolicy = simRetry, pageSize: Int = 1000,
        _ body: (SimHarness) async throws -> Void
    ) async throws {
        let harness = try await start(servers: servers, projects: projects, speed: speed, retry: retry, pageSize: pageSize)
        do {
            try await body(harness)
        } catch {
            await harness.stop()
            throw error
        }
        await harness.stop()
    }

    /// Operations the simulator logged, in order.
    func loggedOperations() async -> [String] { await region.requests().map(\.operation) }

    /// Polls a job (advancing the manual clock) until it ends.
    func finish(job id: String, step: Double = 5) async throws -> Job {
        for _ in 0..<50 {
            let job = try await client.job(id: id)
            if job.status.isFinished { return job }
            await region.advanceTime(by: step)
        }
        Issue.record("job \(id) did not finish")
        return try await client.job(id: id)
    }
}

func expectError(_ call: () async throws -> Void) async -> ECSError? {
    do {
        try await call()
        Issue.record("expected an ECSError")
        return nil
    } catch let error as ECSError {
        return error
    } catch {
        Issue.record("unexpected error \(error)")
        return nil
    }
}

@Suite struct ClientAgainstSimulatorReadTests {
    @Test func novaAndV1DetailsPageThroughTheWholeProject() async throws {
        try await SimHarness.with(servers: 2_350, pageSize: 1000) { sim in
            let expected = await sim.region.serverIds(projectId: simProject)
            var pages: [Int] = []
            for try await page in sim.client.serverDetails() { pages.append(page.count) }
            #expect(pages == [1000, 1000, 350])
            let nova = try await sim.client.serverDetails().collect()
            #expect(nova.map(\.id) == expected)
            #expect(nova.allSatisfy { $0.tags != nil && $0.locked != nil && $0.availabilityZone != nil })
            let v1 = try await sim.client.cloudServerDetails().collect()
            #expect(v1.map(\.id) == expected)
            #expect(v1.first?.flavor?.vcpus != nil)
            let operations = await sim.loggedOperations()
            #expect(operations.filter { $0 == "NovaListServersDetails" }.count == 6)
            #expect(operations.filter { $0 == "ListServersDetails" }.count == 3)
        }
    }

    @Test func filtersByStatusAndTag() async throws {
        try await SimHarness.with(servers: 120) { sim in
            let all = try await sim.client.serverDetails().collect()
            let stopped = try await sim.client.serverDetails(ServerQuery(status: "SHUTOFF")).collect()
            #expect(!stopped.isEmpty && stopped.allSatisfy { $0.status == .shutoff })
            #expect(stopped.count == all.filter { $0.status == .shutoff }.count)
            let office = try await sim.client.serverDetails(ServerQuery(tags: ["warden-schedule=office"])).collect()
            #expect(office.count == all.filter { $0.tagValue("warden-schedule") == "office" }.count)
            let v1Office = try await sim.client.cloudServerDetails(ServerQuery(tags: ["warden-schedule=office"])).collect()
            #expect(v1Office.map(\.id) == office.map(\.id))
        }
    }

    @Test func serversByTagFilterCountAndNotTags() async throws {
        try await SimHarness.with(servers: 300, pageSize: 50) { sim in
            let tagged = try await sim.client.serversByTag(tags: [TagFilter(key: "warden-schedule", values: ["office"])]).collect()
            let count = try await sim.client.countServersByTag(tags: [TagFilter(key: "warden-schedule")])
            #expect(tagged.count == count)
            #expect(count > 50)  // several pages of 50
            let untagged = try await sim.client.countServersByTag(notTags: [TagFilter(key: "warden-schedule")])
            #expect(untagged + count == 300)
            let byName = try await sim.client.serversByTag(matches: [.name("-0007")]).collect()
            #expect(byName.count == 1)
            let requests = await sim.region.requests()
            #expect(requests.allSatisfy { $0.path.hasSuffix("/servers/resource_instances/action") && $0.status == 200 })
        }
    }

    @Test func oneServerBothViewsAndNotFound() async throws {
        try await SimHarness.with(servers: 3) { sim in
            let id = await sim.region.serverIds(projectId: simProject)[1]
            let nova = try await sim.client.server(id: id)
            let v1 = try await sim.client.cloudServer(id: id)
            #expect(nova.id == id && v1.id == id)
            #expect(nova.status == v1.status)
            #expect(nova.updated == v1.updated)
            let missing = await expectError { _ = try await sim.client.cloudServer(id: "no-such-server") }
            #expect(missing?.httpStatus == 404)
            #expect(missing?.code == "Ecs.0114")
            let missingNova = await expectError { _ = try await sim.client.server(id: "no-such-server") }
            #expect(missingNova?.httpStatus == 404)
            #expect(missingNova?.isNotFound == true)
        }
    }

    @Test func limitsFlavorsAndSaleStates() async throws {
        try await SimHarness.with(servers: 10) { sim in
            let limits = try await sim.client.limits()
            #expect(limits.usage("instances")?.used == 10)
            #expect(limits.usage("instances")?.limit == 2048)
            #expect(limits.maxTotalKeyPairs == -1)
            let flavors = try await sim.client.flavors()
            #expect(flavors.count == 12)
            let flavor = try #require(flavors.first)
            try await sim.region.setSaleState(flavorId: flavor.id, az: "eu-west-0b", state: "sellout")
            let specs = try await sim.client.flavors().first { $0.id == flavor.id }?.extraSpecs
            #expect(specs?["cond:operation:az"] == "eu-west-0b(sellout)")
            #expect(try await sim.client.flavors(availabilityZone: "eu-west-0b").contains { $0.id == flavor.id } == false)
            #expect(try await sim.client.flavors(availabilityZone: "eu-west-0a").contains { $0.id == flavor.id })
        }
    }

    @Test func tagsAddListAndDelete() async throws {
        try await SimHarness.with(servers: 2) { sim in
            let id = await sim.region.serverIds(projectId: simProject)[0]
            try await sim.client.addServerTags(serverId: id, tags: [ServerTag(key: "warden-snooze-until", value: "20261124T0800Z")])
            #expect(try await sim.client.serverTags(serverId: id).contains(ServerTag(key: "warden-snooze-until", value: "20261124T0800Z")))
            #expect(try await sim.client.projectTags().contains { $0.key == "warden-snooze-until" })
            try await sim.client.deleteServerTags(serverId: id, tags: [(key: "warden-snooze-until", value: nil)])
            #expect(try await sim.client.serverTags(serverId: id).allSatisfy { $0.key != "warden-snooze-until" })
            let tooMany = (0..<11).map { ServerTag(key: "k\($0)", value: "v") }
            let limitError = await expectError { try await sim.client.addServerTags(serverId: id, tags: tooMany) }
            #expect(limitError?.code == "Ecs.0905")
            let charsetError = await expectError { try await sim.client.addServerTags(serverId: id, tags: [ServerTag(key: "bad key!", value: "v")]) }
            #expect(charsetError?.code == "Ecs.0906")
        }
    }

    @Test func iamTokenAuthenticationAndRefreshAfterRevocation() async throws {
        try await SimHarness.with(servers: 1) { sim in
            let http = ECSClient.makeHTTPClient()
            let endpoint = URL(string: sim.server.endpoint)!
            let client = ECSClient(
                configuration: ECSClientConfiguration(
                    endpoint: endpoint, projectId: simProject,
                    authentication: .iamPassword(IAMPasswordCredentials(iamEndpoint: endpoint, userName: "ops", password: "ops-password", domainName: "acme")),
                    retry: simRetry),
                httpClient: http)
            #expect(try await client.limits().usage("instances")?.used == 1)
            await sim.region.revokeTokens()
            #expect(try await client.limits().usage("instances")?.used == 1)
            #expect(await sim.loggedOperations().filter { $0 == "CreateIAMToken" }.count == 2)
            let wrong = ECSClient(
                configuration: ECSClientConfiguration(
                    endpoint: endpoint, projectId: simProject,
                    authentication: .iamPassword(IAMPasswordCredentials(iamEndpoint: endpoint, userName: "ops", password: "nope", domainName: "acme")),
                    retry: simRetry),
                httpClient: http)
            let error = await expectError { _ = try await wrong.limits() }
            #expect(error?.kind == .authentication)
            try await http.shutdown()
        }
    }

    @Test func wrongSecretKeyAndForeignProjectAreRejected() async throws {
        try await SimHarness.with(servers: 1, projects: 2) { sim in
            let endpoint = URL(string: sim.server.endpoint)!
            let badKey = ECSClient(
                configuration: ECSClientConfiguration(
                    endpoint: endpoint, projectId: simProject, authentication: .accessKey(AccessKeyCredentials(accessKey: simAK, secretKey: "wrong"))),
                httpClient: sim.http)
            let error = await expectError { _ = try await badKey.limits() }
            #expect(error?.httpStatus == 401)
            #expect(error?.code == "APIGW.0301")
            #expect(error?.requestId != nil)
            let unknown = ECSClient(
                configuration: ECSClientConfiguration(
                    endpoint: endpoint, projectId: "ffffffffffffffffffffffffffffffff", authentication: .accessKey(AccessKeyCredentials(accessKey: simAK, secretKey: simSK))),
                httpClient: sim.http)
            let forbidden = await expectError { _ = try await unknown.limits() }
            #expect(forbidden?.httpStatus == 403)
            #expect(forbidden?.code == "Ecs.0003")
        }
    }

    @Test func instanceActionsRecordOperations() async throws {
        try await SimHarness.with(servers: 1) { sim in
            let id = await sim.region.serverIds(projectId: simProject)[0]
            let before = try await sim.client.server(id: id)
            let action: BatchServerAction = before.status == .active ? .stop(.soft) : .start
            let accepted = try await sim.client.batchAction(action, serverIds: [id])
            let running = try await sim.client.instanceActions(serverId: id)
            #expect(running.map(\.action) == [action == .start ? "start" : "stop", "create"])
            let open = try await sim.client.instanceAction(serverId: id, requestId: running[0].requestId)
            #expect(open.events?.first?.finishTime == nil)
            _ = try await sim.finish(job: accepted.jobId)
            let done = try await sim.client.instanceAction(serverId: id, requestId: running[0].requestId)
            #expect(done.events?.first?.result == "Success")
            #expect(done.events?.first?.finishTime != nil)
        }
    }
}

@Suite struct ClientAgainstSimulatorActionTests {
    @Test func batchStopAndStartFollowedToSuccess() async throws {
        try await SimHarness.with(servers: 40) { sim in
            let active = try await sim.client.serverDetails(ServerQuery(status: "ACTIVE")).collect().prefix(5).map(\.id)
            let accepted = try await sim.client.batchAction(.stop(.soft), serverIds: Array(active))
            let first = try await sim.client.job(id: accepted.jobId)
            #expect(first.status == .initializing)
            let during = try await sim.client.server(id: active[0])
            #expect(during.status == .active)
            #expect(during.taskState == "powering-off")
            let job = try await sim.finish(job: accepted.jobId)
            #expect(job.status == .success)
            #expect(Set(job.subJobs.compactMap { $0.entities?.serverId }) == Set(active))
            #expect(job.subJobs.allSatisfy { $0.status == .success && $0.endDate != nil })
            for id in active { #expect(try await sim.client.server(id: id).status == .shutoff) }
            let restart = try await sim.client.batchAction(.start, serverIds: Array(active))
            #expect(try await sim.finish(job: restart.jobId).status == .success)
            for id in active { #expect(try await sim.client.server(id: id).status == .active) }
        }
    }

    @Test func rebootWalksThroughRebootStatus() async throws {
        try await SimHarness.with(servers: 20) { sim in
            let id = try #require(try await sim.client.serverDetails(ServerQuery(status: "ACTIVE")).collect().first?.id)
            let accepted = try await sim.client.batchAction(.reboot(.hard), serverIds: [id])
            #expect(try await sim.client.server(id: id).status == .hardReboot)
            #expect(try await sim.finish(job: accepted.jobId).status == .success)
            #expect(try await sim.client.server(id: id).status == .active)
        }
    }

    @Test func wrongStateAndBusyServersFailTheirSubJobs() async throws {
        try await SimHarness.with(servers: 30) { sim in
            let servers = try await sim.client.serverDetails().collect()
            let stopped = try #require(servers.first { $0.status == .shutoff }?.id)
            let active = try #require(servers.first { $0.status == .active }?.id)
            try await sim.region.setServerState(projectId: simProject, serverId: stopped, vmState: "error", taskState: .some(nil), locked: nil)
            try await sim.region.setServerState(projectId: simProject, serverId: active, vmState: nil, taskState: nil, locked: true)
            let accepted = try await sim.client.batchAction(.stop(.soft), serverIds: [stopped, active])
            let job = try await sim.finish(job: accepted.jobId)
            #expect(job.status == .fail)
            let codes = Dictionary(uniqueKeysWithValues: job.subJobs.map { ($0.entities?.serverId ?? "", $0.errorCode ?? "") })
            #expect(codes[stopped] == "Ecs.0100")
            #expect(codes[active] == "Ecs.0605")
            let unknown = await expectError { _ = try await sim.client.batchAction(.start, serverIds: ["missing"]) }
            #expect(unknown?.httpStatus == 404)
            #expect(unknown?.code == "Ecs.0614")
        }
    }

    @Test func stuckAndFailingJobs() async throws {
        try await SimHarness.with(servers: 30) { sim in
            let active = try await sim.client.serverDetails(ServerQuery(status: "ACTIVE")).collect().prefix(2).map(\.id)
            var faults = SimFaults()
            faults.stickNextJobs = 1
            await sim.region.setFaults(faults)
            let stuck = try await sim.client.batchAction(.stop(.soft), serverIds: [active[0]])
            await sim.region.advanceTime(by: 3600)
            #expect(try await sim.client.job(id: stuck.jobId).status == .running)
            let server = try await sim.client.server(id: active[0])
            #expect(server.status == .active && server.taskState == "powering-off")
            await sim.region.releaseStuckJobs()
            #expect(try await sim.finish(job: stuck.jobId).status == .success)

            faults = SimFaults()
            faults.failNextJobs = 1
            await sim.region.setFaults(faults)
            let failing = try await sim.client.batchAction(.stop(.soft), serverIds: [active[1]])
            let job = try await sim.finish(job: failing.jobId)
            #expect(job.status == .fail)
            #expect(job.errorCode == "Ecs.0100")
            #expect(job.failedSubJobs.first?.failReason != nil)
            #expect(try await sim.client.server(id: active[1]).status == .active)
        }
    }

    @Test func createDryRunQuotaSoldOutAndDelete() async throws {
        try await SimHarness.with(servers: 4) { sim in
            let flavor = try #require(try await sim.client.flavors().first { $0.vcpus == 1 })
            let request = ServerCreateRequest(
                name: "demo", imageRef: FleetGenerator.imageId, flavorRef: flavor.id, vpcid: FleetGenerator.vpcId, subnetId: FleetGenerator.subnetId,
                availabilityZone: "eu-west-0a", count: 2, serverTags: [ServerTag(key: "warden-schedule", value: "office")])
            #expect(try await sim.client.createServers(request, dryRun: true) == nil)
            #expect(try await sim.client.limits().usage("instances")?.used == 4)
            let before = try await sim.client.limits()
            let accepted = try #require(try await sim.client.createServers(request))
            #expect(accepted.serverIds?.count == 2)
            let building = try await sim.client.server(id: accepted.serverIds![0])
            #expect(building.status == .build)
            #expect(building.name == "demo-0000")
            #expect(try await sim.finish(job: accepted.jobId).status == .success)
            let after = try await sim.client.limits()
            #expect(after.usage("instances")!.used == before.usage("instances")!.used + 2)
            #expect(after.usage("cores")!.used == before.usage("cores")!.used + 2 * (flavor.vcpus ?? 0))
            #expect(after.usage("ram")!.used == before.usage("ram")!.used + 2 * (flavor.ram ?? 0))
            #expect(try await sim.client.server(id: accepted.serverIds![1]).tagValue("warden-schedule") == "office")

            try await sim.region.setQuota(projectId: simProject, quota: SimQuota(instances: 6))
            let quota = await expectError { try await sim.client.createServers(request) }
            #expect(quota?.code == "Ecs.0001")
            try await sim.region.setQuota(projectId: simProject, quota: SimQuota())
            try await sim.region.setSaleState(flavorId: flavor.id, az: "eu-west-0a", state: "sellout")
            let soldOut = await expectError { try await sim.client.createServers(request) }
            #expect(soldOut?.code == "Ecs.0319")
            try await sim.region.setSaleState(flavorId: flavor.id, az: "eu-west-0a", state: "abandon")
            let abandoned = await expectError { try await sim.client.createServers(request) }
            #expect(abandoned?.code == "Ecs.0029")

            let deletion = try await sim.client.deleteServers(ids: accepted.serverIds!)
            #expect(try await sim.finish(job: deletion.jobId).status == .success)
            #expect(try await sim.client.limits().usage("instances")?.used == 4)
            #expect(await expectError { _ = try await sim.client.server(id: accepted.serverIds![0]) }?.isNotFound == true)
        }
    }

    @Test func clientTokenMakesARetriedBatchIdempotent() async throws {
        try await SimHarness.with(servers: 20) { sim in
            let id = try #require(try await sim.client.serverDetails(ServerQuery(status: "ACTIVE")).collect().first?.id)
            let first = try await sim.client.batchAction(.stop(.soft), serverIds: [id], clientToken: "token-42")
            let replay = try await sim.client.batchAction(.stop(.soft), serverIds: [id], clientToken: "token-42")
            #expect(first.jobId == replay.jobId)
            let conflict = await expectError { _ = try await sim.client.batchAction(.start, serverIds: [id], clientToken: "token-42") }
            #expect(conflict?.code == "Ecs.0005")
        }
    }
}

@Suite struct ClientAgainstSimulatorFaultTests {
    @Test func throttlingIsRetriedInBothModes() async throws {
        // Waits long enough for a 4/s bucket to refill: the production backoff shape, scaled.
        let patient = RetryPolicy(maxAttempts: 20, baseDelay: .milliseconds(100), maxDelay: .milliseconds(400))
        for mode in ["429", "202"] {
            try await SimHarness.with(servers: 1, retry: patient) { sim in
                var faults = SimFaults()
                faults.throttleRequestsPerSecond = 4
                faults.throttleBurst = 1
                faults.throttleMode = mode
                await sim.region.setFaults(faults)
                // At once, so the bucket (burst 1) is exceeded however slowly this machine runs
                // (one after the other, a loaded machine could let it refill between calls).
                let client = sim.client
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<5 { group.addTask { _ = try await client.limits() } }
                    try await group.waitForAll()
                }
                let statuses = await sim.region.requests().map(\.status)
                #expect(statuses.filter { $0 == 200 }.count == 5)
                #expect(statuses.contains(mode == "429" ? 429 : 202), "mode \(mode): \(statuses)")
            }
        }
    }

    @Test func serverErrorsAndDroppedConnectionsAreSurvived() async throws {
        try await SimHarness.with(servers: 5, retry: RetryPolicy(maxAttempts: 30, baseDelay: .milliseconds(1), maxDelay: .milliseconds(2))) { sim in
            var faults = SimFaults()
            faults.errorRate = 0.3
            faults.dropRate = 0.2
            await sim.region.setFaults(faults)
            for _ in 0..<10 {
                let servers = try await sim.client.serverDetails().collect()
                #expect(servers.count == 5)
            }
            let statuses = await sim.region.requests().map(\.status)
            #expect(statuses.contains(503))
            #expect(statuses.contains(0))  // dropped
        }
    }

    @Test func outageEndsInARetryableErrorAndLatencyIsAdded() async throws {
        try await SimHarness.with(servers: 1, retry: RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(1), maxDelay: .milliseconds(2))) { sim in
            var faults = SimFaults()
            faults.outage = "error"
            await sim.region.setFaults(faults)
            let error = await expectError { _ = try await sim.client.limits() }
            #expect(error?.httpStatus == 503)
            #expect(error?.isRetryable == true)
            #expect(error?.attempts == 3)
            faults.outage = "drop"
            await sim.region.setFaults(faults)
            #expect(await expectError { _ = try await sim.client.limits() }?.kind == .transport)
            faults = SimFaults()
            faults.latencyMs = 150
            await sim.region.setFaults(faults)
            let started = ContinuousClock.now
            _ = try await sim.client.limits()
            #expect(ContinuousClock.now - started >= .milliseconds(150))
        }
    }
}

@Suite struct ClientCallCountTests {
    /// A fleet that fills its last page exactly needs no extra, empty page: the API's next link says
    /// when more follows.
    @Test func fullLastPageNeedsNoExtraCall() async throws {
        try await SimHarness.with(servers: 2000) { sim in
            let servers = try await sim.client.serverDetails().collect()
            #expect(servers.count == 2000)
            #expect(await sim.loggedOperations().filter { $0 == "NovaListServersDetails" }.count == 2)
        }
    }
}
