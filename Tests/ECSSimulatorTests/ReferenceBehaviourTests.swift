import ECSAPI
import ECSSigning
import Foundation
import Testing

@testable import ECSSimulator

/// Where the simulator used to contradict the API reference (seed S1), it now follows it. Each
/// test names the seed section it checks and fails on the simulator's old behaviour.
///
/// The calls go straight to `SimulatedRegion.handle(_:)` with an IAM token, so status, headers and
/// body are seen exactly as the wire carries them.
struct RawRegion {
    let region: SimulatedRegion
    let token: String

    /// 2026-09-21T14:13:20Z.
    static let start: Double = 1_790_000_000

    static func make() async throws -> RawRegion {
        let region = SimulatedRegion(
            configuration: SimRegionConfiguration(accessKeys: [simAK: simSK], iamUsers: ["ops": "ops-password"], speed: 0, seed: 7, startTime: start))
        _ = await FleetGenerator(projects: 1, serversPerProject: 0, seed: 7).populate(region, firstProjectIds: [simProject])
        let auth: [String: Any] = [
            "auth": [
                "identity": ["methods": ["password"], "password": ["user": ["name": "ops", "password": "ops-password"]]],
                "scope": ["project": ["id": simProject]],
            ]
        ]
        let response = await region.handle(
            SimHTTPRequest(method: "POST", path: "/v3/auth/tokens", body: Array(try JSONSerialization.data(withJSONObject: auth))))
        let token = try #require(response.headers.first { $0.0 == "X-Subject-Token" }?.1)
        return RawRegion(region: region, token: token)
    }

    /// One authenticated call: status and the JSON object of the body (empty when none).
    func call(_ method: String, _ path: String, query: String = "", microversion: String? = nil, body: [String: Any]? = nil) async throws -> (
        status: Int, json: [String: Any]
    ) {
        var headers: [SignableRequest.Header] = [.init("X-Auth-Token", token), .init("Host", "sim:1")]
        if let microversion { headers.append(.init("X-OpenStack-Nova-API-Version", microversion)) }
        let bytes = try body.map { Array(try JSONSerialization.data(withJSONObject: $0)) } ?? []
        let response = await region.handle(SimHTTPRequest(method: method, path: path, rawQuery: query, headers: headers, body: bytes))
        let json = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any] ?? [:]
        return (response.status, json)
    }

    /// The ids of a listing answer.
    static func ids(_ json: [String: Any]) -> [String] {
        (json["servers"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
    }

    func seed(_ name: String, created: Double, running: Bool = true) async -> String {
        await region.seedServer(projectId: simProject, name: name, flavorId: "s3.small.2", running: running, created: created)
    }
}

@Suite struct ReferenceBehaviourTests {
    /// Seed S1 A.2: the HTTP status of every error code the simulator sends. An answer carrying an
    /// A.2 code carries that code's status; nothing else is sent in the ECS `{"error": …}` shape.
    static let a2Status: [String: Int] = [
        "Ecs.0000": 400, "Ecs.0001": 400, "Ecs.0003": 403, "Ecs.0005": 400, "Ecs.0023": 400, "Ecs.0029": 400, "Ecs.0100": 400,
        "Ecs.0114": 404, "Ecs.0118": 400, "Ecs.0319": 400, "Ecs.0603": 501, "Ecs.0605": 400, "Ecs.0614": 404, "Ecs.0905": 400,
        "Ecs.0906": 400, "Ecs.0908": 400, "Ecs.0913": 400, "Ecs.0914": 400, "Ecs.0915": 400, "Common.0024": 202, "Common.0002": 400,
        "Common.0011": 400, "Common.0013": 401, "Common.0001": 500, "Common.1503": 429,
    ]

    @Test func everyErrorCodeIsSentWithItsA2Status() {
        let errors: [SimError] = [
            .requestError, .quotaExceeded, .forbidden, .invalidParameter, .projectMismatch, .flavorMissing, .invalidState, .serverMissing,
            .batchTooLarge, .flavorSoldOut, .busy, .locked, .batchServerMissing, .tooManyTags, .tagCharset, .duplicateTagKey, .tooManyToCreate,
            .nameTooLong, .nameInvalid, .flowOverLimit, .emptyBody, .invalidJob, .invalidToken, .systemException, .apiFlowControl,
            .unavailable, .routeMissing, SimulatedRegion.noSuchAPI,
        ]
        for error in errors {
            if let status = Self.a2Status[error.code] {
                #expect(error.httpStatus == status, "\(error.code) is sent with HTTP \(error.httpStatus); seed A.2 gives \(status)")
            } else {
                #expect(error.shape != .ecs, "\(error.code) (HTTP \(error.httpStatus)) is not an A.2 code but is sent in the ECS error shape")
            }
        }
    }

    /// Seed S1 §10.1 / A.1: 404 "The server cannot find the page requested." The old answer was
    /// 404 with `Ecs.0000`, a code A.2 gives HTTP 400 ("Request error").
    @Test func anUnknownV1RouteIsA404WithoutAnA2Code() async throws {
        let sim = try await RawRegion.make()
        for (method, path) in [
            ("GET", "/v1/\(simProject)/cloudservers/no/such/api"), ("GET", "/v1/\(simProject)/no-such-family"),
            ("DELETE", "/v1/\(simProject)/cloudservers/limits"), ("GET", "/v1/\(simProject)/jobs"),
        ] {
            let (status, json) = try await sim.call(method, path)
            #expect(status == 404, "\(method) \(path)")
            #expect(json["error_code"] as? String == "APIGW.0101", "\(method) \(path): \(json)")
            #expect(json["error"] == nil, "\(method) \(path): \(json)")
        }
        // The Nova routes keep the Nova fault shape.
        let (status, json) = try await sim.call("GET", "/v2.1/\(simProject)/no-such-thing")
        #expect(status == 404 && json["itemNotFound"] != nil)
    }

    /// Seed S1 A.2: `Common.0001` is HTTP 500. The old 503 answers carried `Common.0001` too.
    @Test func common0001IsOnlySentWith500() async throws {
        let sim = try await RawRegion.make()
        var faults = SimFaults()
        faults.errorRate = 1
        faults.errorStatus = 500
        await sim.region.setFaults(faults)
        var (status, json) = try await sim.call("GET", "/v1/\(simProject)/cloudservers/limits")
        #expect(status == 500)
        #expect((json["error"] as? [String: Any])?["code"] as? String == "Common.0001")
        faults.errorStatus = 503
        await sim.region.setFaults(faults)
        (status, json) = try await sim.call("GET", "/v1/\(simProject)/cloudservers/limits")
        #expect(status == 503)
        #expect(json["error"] == nil && json["error_code"] == nil, "503 with an A.2 code: \(json)")
        #expect(json["error_msg"] is String)
        faults = SimFaults()
        faults.outage = "error"
        await sim.region.setFaults(faults)
        (status, json) = try await sim.call("GET", "/v2.1/\(simProject)/servers/detail")
        #expect(status == 503)
        #expect(json["error"] == nil && json["error_code"] == nil, "503 with an A.2 code: \(json)")
    }

    /// Seed S1 §6.2.4 T6-31 / §6.2.5 T6-36 `sort_key`: "The default sorting order is the reverse
    /// order of created_at." The old listings came oldest first (insertion order).
    @Test func listingsAreNewestFirstByCreatedAt() async throws {
        let sim = try await RawRegion.make()
        let oldest = await sim.seed("oldest", created: RawRegion.start - 300)
        let newest = await sim.seed("newest", created: RawRegion.start - 60)
        let middle = await sim.seed("middle", created: RawRegion.start - 180)  // seeded last, created in between
        let expected = [newest, middle, oldest]
        for path in ["servers/detail", "servers"] {
            let (status, json) = try await sim.call("GET", "/v2.1/\(simProject)/\(path)", microversion: "2.26")
            #expect(status == 200)
            #expect(RawRegion.ids(json) == expected, "\(path)")
        }
        // Marker paging walks the same order.
        var paged: [String] = []
        var marker: String?
        for _ in 0..<5 {
            let (_, json) = try await sim.call("GET", "/v2.1/\(simProject)/servers/detail", query: "limit=1" + (marker.map { "&marker=\($0)" } ?? ""))
            let ids = RawRegion.ids(json)
            paged += ids
            guard json["servers_links"] != nil, let last = ids.last else { break }
            marker = last
        }
        #expect(paged == expected)
        // The v1 listing (not in the seeds) follows the Nova order; so does the inspection API.
        let (_, v1) = try await sim.call("GET", "/v1/\(simProject)/cloudservers/detail")
        #expect(RawRegion.ids(v1) == expected)
        #expect(await sim.region.serverIds(projectId: simProject) == expected)
        // A server created through the API is the newest.
        let created = try await sim.region.createServers(
            projectId: simProject,
            spec: .init(
                name: "fresh", flavorId: "s3.small.2", imageRef: FleetGenerator.imageId, availabilityZone: nil, count: 1, tags: [], metadata: [:],
                description: "", keyName: nil))
        let (_, after) = try await sim.call("GET", "/v2.1/\(simProject)/servers")
        #expect(RawRegion.ids(after) == created.serverIds + expected)
    }

    /// Seed S1 §6.2.4 T6-31 / §6.2.5 T6-36 `status`: options ACTIVE, BUILD, ERROR, HARD_REBOOT,
    /// MIGRATING, REBOOT, REBUILD, RESIZE, REVERT_RESIZE, SHUTOFF, VERIFY_RESIZE; "In microversion
    /// 2.37, the system will return an empty list for the status field out of the preceding options.
    /// In microversion 2.38 and later, the system will return error 400." The old simulator accepted
    /// SHELVED, PAUSED, UNKNOWN, DELETED, … as filters at every microversion (and listed a SHELVED
    /// server for `status=SHELVED`).
    @Test func statusOutsideTheDocumentedOptionsIsEmptyThen400From238() async throws {
        let sim = try await RawRegion.make()
        let shelved = await sim.seed("shelved", created: RawRegion.start - 60)
        let stopped = await sim.seed("stopped", created: RawRegion.start - 30, running: false)
        try await sim.region.setServerState(projectId: simProject, serverId: shelved, vmState: "shelved", taskState: nil, locked: nil)
        #expect(await sim.region.inspectServer(projectId: simProject, serverId: shelved)?.status == "SHELVED")
        for status in ["SHELVED", "shelved", "UNKNOWN", "PAUSED", "DELETED", "NOT-A-STATUS"] {
            for version in ["2.38", "2.60", "latest"] {
                let (code, json) = try await sim.call("GET", "/v2.1/\(simProject)/servers/detail", query: "status=\(status)", microversion: version)
                #expect(code == 400, "status=\(status) at \(version)")
                #expect(json["badRequest"] != nil, "status=\(status) at \(version): \(json)")
            }
            for version in ["2.37", "2.26", nil] as [String?] {
                let (code, json) = try await sim.call("GET", "/v2.1/\(simProject)/servers", query: "status=\(status)", microversion: version)
                #expect(code == 200, "status=\(status) at \(version ?? "none")")
                #expect(RawRegion.ids(json).isEmpty, "status=\(status) at \(version ?? "none")")
            }
        }
        for version in ["2.37", "2.38"] {
            let (code, json) = try await sim.call("GET", "/v2.1/\(simProject)/servers/detail", query: "status=SHUTOFF", microversion: version)
            #expect(code == 200 && RawRegion.ids(json) == [stopped], "\(version)")
        }
    }

    /// Seed S1 §6.2.4 T6-31 / §6.2.5 T6-36 `changes-since`: "CCYY-MM-DDThh:mm:ss+/-hh:mm", ECSs
    /// "with statuses updated later than the timestamp". The old parser dropped the offset (and
    /// ignored what it could not read); an equal time was included.
    @Test func changesSinceHonoursTheOffsetAndIsStrictlyLater() async throws {
        let sim = try await RawRegion.make()
        // Updated at 2026-09-21T14:13:20Z.
        let server = await sim.seed("web", created: RawRegion.start)
        let cases: [(String, Bool)] = [
            ("2026-09-21T14:43:20+01:00", true),  // 13:43:20Z, 30 min before
            ("2026-09-21T13:43:20-01:00", false),  // 14:43:20Z, 30 min after
            ("2026-09-21T14:13:19Z", true),
            ("2026-09-21T14:13:20Z", false),  // not later than itself
            ("2026-09-21T15:13:20+0100", false),  // the same instant, basic offset
            ("2026-09-21T19:43:19.500+05:30", true),
            ("2026-09-21T14:13:19", true),  // no zone: UTC
        ]
        for (since, included) in cases {
            let query = "changes-since=" + since.replacingOccurrences(of: "+", with: "%2B")
            for path in ["/v2.1/\(simProject)/servers/detail", "/v1/\(simProject)/cloudservers/detail"] {
                let (status, json) = try await sim.call("GET", path, query: query)
                #expect(status == 200, "\(path)?\(query)")
                #expect(RawRegion.ids(json) == (included ? [server] : []), "\(path) changes-since=\(since)")
            }
        }
        for bad in ["yesterday", "2026-09-21", "2026-09-21T14:13:20+1", "2026-13-01T00:00:00Z"] {
            let (nova, novaJSON) = try await sim.call("GET", "/v2.1/\(simProject)/servers/detail", query: "changes-since=\(bad)")
            #expect(nova == 400 && novaJSON["badRequest"] != nil, "changes-since=\(bad)")
            let (v1, v1JSON) = try await sim.call("GET", "/v1/\(simProject)/cloudservers/detail", query: "changes-since=\(bad)")
            #expect(v1 == 400 && (v1JSON["error"] as? [String: Any])?["code"] as? String == "Ecs.0005", "changes-since=\(bad)")
        }
    }
}

/// The `clientTokenReplay` switch: `X-Client-Token` is documented for creation only (seed S3), so
/// the replay on batch actions is the simulator's assumption; switched off, the token is ignored
/// there.
@Suite struct ClientTokenReplaySwitchTests {
    @Test func withReplayOffARepeatedStopIsANewJobThatChangesNothing() async throws {
        try await SimHarness.with(servers: 0) { sim in
            let id = await sim.region.seedServer(projectId: simProject, name: "web", flavorId: "s3.small.2")
            #expect(try await sim.admin(.GET, "faults").json["clientTokenReplay"] as? Bool == true)  // the default
            #expect(try await sim.putFaults(["clientTokenReplay": false])["clientTokenReplay"] as? Bool == false)
            let first = try await sim.client.batchAction(.stop(.soft), serverIds: [id], clientToken: "tok-1")
            let again = try await sim.client.batchAction(.stop(.soft), serverIds: [id], clientToken: "tok-1")
            #expect(first.jobId != again.jobId)  // carried out as a new request, not replayed
            // The server is still stopping (task_state powering-off): the second stop is refused.
            let refused = try await sim.finish(job: again.jobId)
            #expect(refused.status == .fail)
            #expect(refused.subJobs.first?.errorCode == "Ecs.0603")
            #expect(try await sim.finish(job: first.jobId).status == .success)
            #expect(await sim.region.inspectServer(projectId: simProject, serverId: id)?.status == "SHUTOFF")
            // Once stopped, a third delivery succeeds at once without touching the server.
            let third = try await sim.client.batchAction(.stop(.soft), serverIds: [id], clientToken: "tok-1")
            #expect(try await sim.finish(job: third.jobId).status == .success)
            let stops = await sim.region.subJobRecords(projectId: simProject, serverId: id)
            #expect(stops.map(\.jobId) == [first.jobId, again.jobId, third.jobId])
            #expect(stops.map(\.status) == ["SUCCESS", "FAIL", "SUCCESS"])
            #expect(stops.map(\.startedTransition) == [true, false, false])
            #expect(try await sim.client.instanceActions(serverId: id).filter { $0.action == "stop" }.count == 1)
            // A token reused with another body is not refused either: it is just another call.
            let start = try await sim.client.batchAction(.start, serverIds: [id], clientToken: "tok-1")
            #expect(try await sim.finish(job: start.jobId).status == .success)
            #expect(await sim.region.inspectServer(projectId: simProject, serverId: id)?.status == "ACTIVE")
        }
    }

    @Test func replayOnIsTheDefaultAndCreationAlwaysReplays() async throws {
        try await SimHarness.with(servers: 0) { sim in
            let id = await sim.region.seedServer(projectId: simProject, name: "web", flavorId: "s3.small.2")
            let first = try await sim.client.batchAction(.stop(.soft), serverIds: [id], clientToken: "tok-on")
            #expect(try await sim.client.batchAction(.stop(.soft), serverIds: [id], clientToken: "tok-on").jobId == first.jobId)
            _ = try await sim.putFaults(["clientTokenReplay": false])
            let request = ServerCreateRequest(
                name: "made", imageRef: FleetGenerator.imageId, flavorRef: "s3.small.2", vpcid: FleetGenerator.vpcId, subnetId: FleetGenerator.subnetId,
                availabilityZone: "eu-west-0a")
            let created = try #require(try await sim.client.createServers(request, clientToken: "tok-create"))
            let replayed = try #require(try await sim.client.createServers(request, clientToken: "tok-create"))
            #expect(created.jobId == replayed.jobId)
            #expect(await sim.region.serverIds(projectId: simProject).count == 2)
        }
    }
}
