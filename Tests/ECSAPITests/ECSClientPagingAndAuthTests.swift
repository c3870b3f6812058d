import ECSSigning
import Foundation
import Testing

@testable import ECSAPI

/// Server JSON in the Nova 2.26 shape of the seed example, trimmed.
func novaServerJSON(id: String, status: String = "ACTIVE", taskState: String? = nil, tags: [String] = []) -> String {
    let task = taskState.map { "\"\($0)\"" } ?? "null"
    let tagList = tags.map { "\"\($0)\"" }.joined(separator: ",")
    return """
        {"id":"\(id)","name":"vm-\(id)","status":"\(status)","OS-EXT-STS:task_state":\(task),"OS-EXT-STS:vm_state":"active",\
        "OS-EXT-STS:power_state":1,"OS-EXT-AZ:availability_zone":"az1-dc1","updated":"2018-05-11T03:22:51Z",\
        "flavor":{"id":"s3.small.1","links":[]},"tags":[\(tagList)],"locked":false,"metadata":{}}
        """
}

func queryValue(_ request: TestHTTPServer.Request, _ name: String) -> String? {
    PercentEncoding.parseQuery(request.rawQuery).first { $0.name == name }?.value
}

@Suite struct ECSClientPagingTests {
    @Test func novaDetailsFollowMarkersAcrossThreePages() async throws {
        let ids = (1...5).map { "00000000-0000-0000-0000-00000000000\($0)" }
        try await withClient(pageSize: 2, handler: { request in
            let marker = queryValue(request, "marker")
            let start = marker.flatMap { m in ids.firstIndex(of: m).map { $0 + 1 } } ?? 0
            let page = Array(ids[start..<min(start + 2, ids.count)])
            let servers = page.map { novaServerJSON(id: $0, tags: ["warden-schedule=office"]) }.joined(separator: ",")
            let more = start + 2 < ids.count
            let links = more ? #","servers_links":[{"rel":"next","href":"http://x/v2.1/p/servers/detail?limit=2&marker=\#(page.last!)"}]"# : ""
            return .json(200, #"{"servers":[\#(servers)]\#(links)}"#)
        }) { client, server in
            var pages: [[Server]] = []
            for try await page in client.serverDetails() { pages.append(page) }
            #expect(pages.map(\.count) == [2, 2, 1])
            #expect(pages.flatMap { $0 }.map(\.id) == ids)
            #expect(pages[0][0].tagValue("warden-schedule") == "office")
            let requests = server.requests
            #expect(requests.count == 3)
            #expect(requests.map { queryValue($0, "marker") } == [nil, ids[1], ids[3]])
            #expect(requests.allSatisfy { queryValue($0, "limit") == "2" })
            #expect(requests.allSatisfy { $0.header("X-OpenStack-Nova-API-Version") == "2.26" })
        }
    }

    /// A hostile or broken endpoint: two pages whose `next` links point at each other. The
    /// listing stops at the first repeat and fails, instead of thousands of calls and growing memory.
    @Test func aNextLinkThatLoopsStopsAndFails() async throws {
        try await withClient(pageSize: 1, handler: { request in
            let marker = queryValue(request, "marker") ?? "b"
            let other = marker == "a" ? "b" : "a"
            let next = #""servers_links":[{"rel":"next","href":"http://x/v2.1/p/servers/detail?limit=1&marker=\#(other)"}]"#
            return .json(200, #"{"servers":[\#(novaServerJSON(id: other))],\#(next)}"#)
        }) { client, server in
            await #expect(throws: ECSError.self) { _ = try await client.serverDetails().collect() }
            #expect(server.requests.count == 3)
        }
    }

    /// A listing that never repeats a cursor but never ends either stops at the page cap.
    @Test func aListingPastThePageCapStopsAndFails() async throws {
        var pages = 0
        let endless = ECSPages<Int>(maxPages: 5) { cursor in
            let page: Int
            if case .page(let number) = cursor { page = number } else { page = 1 }
            return ([page], .page(page + 1))
        }
        do {
            for try await _ in endless { pages += 1 }
            Issue.record("an endless listing must fail")
        } catch let error as ECSError {
            #expect(error.kind == .malformedResponse)
        }
        #expect(pages == 5)
    }

    /// A 200 listing without its `servers` key is a broken answer, never "no servers".
    @Test func aListingWithoutServersFails() async throws {
        try await withClient(pageSize: 2, handler: { _ in .json(200, #"{"servers_links":[]}"#) }) { client, _ in
            await #expect(throws: ECSError.self) { _ = try await client.serverDetails().collect() }
        }
        try await withClient(pageSize: 2, handler: { _ in .json(200, #"{"servers":[]}"#) }) { client, _ in
            let servers = try await client.serverDetails().collect()
            #expect(servers.isEmpty)
        }
    }

    @Test func cloudServerDetailsPageByPageNumber() async throws {
        let total = 5
        try await withClient(pageSize: 2, handler: { request in
            let pageNumber = Int(queryValue(request, "offset") ?? "1") ?? 1
            let first = (pageNumber - 1) * 2
            let servers = (first..<min(first + 2, total)).map { novaServerJSON(id: "id-\($0)") }.joined(separator: ",")
            return .json(200, #"{"count":\#(total),"servers":[\#(servers)]}"#)
        }) { client, server in
            let all = try await client.cloudServerDetails(ServerQuery(status: "ACTIVE")).collect()
            #expect(all.map(\.id) == (0..<5).map { "id-\($0)" })
            #expect(server.requests.map { queryValue($0, "offset") } == ["1", "2", "3"])
            #expect(server.requests.allSatisfy { $0.path == "/v1/\(testProject)/cloudservers/detail" && queryValue($0, "status") == "ACTIVE" })
        }
    }

    @Test func tagFilterPagesByOffsetUntilTotalCount() async throws {
        try await withClient(pageSize: 3, handler: { request in
            let body = (try? JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any]) ?? [:]
            let offset = Int(body["offset"] as? String ?? "0") ?? 0
            let resources = (offset..<min(offset + 3, 7)).map {
                #"{"resource_id":"r-\#($0)","resource_name":"vm-\#($0)","resource_detail":null,"tags":[{"key":"warden-schedule","value":"office"}]}"#
            }
            return .json(200, #"{"resources":[\#(resources.joined(separator: ","))],"total_count":7}"#)
        }) { client, server in
            let found = try await client.serversByTag(tags: [TagFilter(key: "warden-schedule")]).collect()
            #expect(found.map(\.resourceId) == (0..<7).map { "r-\($0)" })
            let bodies = server.requests.map { $0.bodyText }
            #expect(bodies.count == 3)
            #expect(bodies[0] == #"{"action":"filter","limit":"3","offset":"0","tags":[{"key":"warden-schedule","values":[]}]}"#)
            #expect(server.requests.allSatisfy { $0.path == "/v1/\(testProject)/servers/resource_instances/action" })
        }
    }
}

@Suite struct ECSClientTokenTests {
    func iam(_ server: TestHTTPServer) -> ECSAuthentication {
        .iamPassword(IAMPasswordCredentials(iamEndpoint: server.endpoint, userName: "ops", password: "pw-secret", domainName: "acme"))
    }

    @Test func tokenIsFetchedOnceCachedAndRefreshedOnceOn401() async throws {
        let issued = Counter()
        // One server plays IAM and ECS: tok-1 is "revoked" after its first use.
        let ecsCalls = Counter()
        let server = try await TestHTTPServer.start { request in
            if request.path == "/v3/auth/tokens" {
                let n = issued.next()
                return .json(201, #"{"token":{"expires_at":"2099-02-13T06:52:13.855000Z","methods":["password"]}}"#, headers: [("X-Subject-Token", "tok-\(n)")])
            }
            let call = ecsCalls.next()
            if request.header("X-Auth-Token") == "tok-1" && call > 1 {
                return .json(401, #"{"error":{"code":"Common.0013","message":"Invalid token."}}"#)
            }
            return .json(200, #"{"absolute":{"maxTotalCores":20,"totalCoresUsed":4}}"#)
        }
        let http = ECSClient.makeHTTPClient()
        let client = ECSClient(
            configuration: ECSClientConfiguration(
                endpoint: server.endpoint, projectId: testProject,
                authentication: .iamPassword(IAMPasswordCredentials(iamEndpoint: server.endpoint, userName: "ops", password: "pw-secret", domainName: "acme")),
                retry: testRetry),
            httpClient: http)
        _ = try await client.limits()
        let limits = try await client.limits()
        #expect(limits.usage("cores")?.ratio == 0.2)
        #expect(issued.current == 2)
        let tokenRequest = try #require(server.requests.first { $0.path == "/v3/auth/tokens" })
        let body = tokenRequest.bodyText
        #expect(body.contains(#""methods":["password"]"#))
        #expect(body.contains(#""id":"\#(testProject)""#))
        #expect(server.requests.filter { $0.path != "/v3/auth/tokens" }.map { $0.header("X-Auth-Token") } == ["tok-1", "tok-1", "tok-2"])
        try await http.shutdown()
        await server.shutdown()
    }

    /// An IAM answer whose `expires_at` has already passed (a skewed clock) does not make a login
    /// per call: the token is used for at least a minute.
    @Test func anAlreadyExpiredTokenIsNotFetchedForEveryCall() async throws {
        try await withClient(
            authentication: nil,
            handler: { request in
                if request.path == "/v3/auth/tokens" {
                    return .json(201, #"{"token":{"expires_at":"2001-01-01T00:00:00.000000Z"}}"#, headers: [("X-Subject-Token", "tok")])
                }
                return .json(200, #"{"absolute":{"maxTotalCores":20,"totalCoresUsed":4}}"#)
            }
        ) { _, server in
            let http = ECSClient.makeHTTPClient()
            let client = ECSClient(
                configuration: ECSClientConfiguration(endpoint: server.endpoint, projectId: testProject, authentication: iam(server), retry: testRetry),
                httpClient: http)
            for _ in 0..<5 { _ = try await client.limits() }
            try await http.shutdown()
            #expect(server.requests.filter { $0.path == "/v3/auth/tokens" }.count == 1)
        }
    }

    @Test func persistentRejectionFailsAfterOneRefresh() async throws {
        try await withClient(
            authentication: nil,
            handler: { request in
                if request.path == "/v3/auth/tokens" {
                    return .json(201, #"{"token":{"expires_at":"2099-01-01T00:00:00.000000Z"}}"#, headers: [("X-Subject-Token", "tok")])
                }
                return .json(401, #"{"error":{"code":"Common.0013","message":"Invalid token."}}"#)
            }
        ) { _, server in
            let http = ECSClient.makeHTTPClient()
            let client = ECSClient(
                configuration: ECSClientConfiguration(endpoint: server.endpoint, projectId: testProject, authentication: iam(server), retry: testRetry),
                httpClient: http)
            let error = await expectECSError { _ = try await client.limits() }
            try await http.shutdown()
            #expect(error?.kind == .authentication)
            #expect(error?.code == "Common.0013")
            #expect(server.requests.filter { $0.path == "/v3/auth/tokens" }.count == 2)
            #expect(server.requests.filter { $0.path != "/v3/auth/tokens" }.count == 2)
            #expect(!"\(error!)".contains("pw-secret"))
        }
    }

    @Test func badPasswordIsAnAuthenticationError() async throws {
        try await withClient(handler: { request in
            request.path == "/v3/auth/tokens"
                ? .json(401, #"{"error":{"code":401,"message":"The username or password is wrong.","title":"Unauthorized"}}"#)
                : .json(200, #"{"absolute":{}}"#)
        }) { _, server in
            let http = ECSClient.makeHTTPClient()
            let client = ECSClient(
                configuration: ECSClientConfiguration(endpoint: server.endpoint, projectId: testProject, authentication: iam(server), retry: testRetry),
                httpClient: http)
            let error = await expectECSError { _ = try await client.limits() }
            try await http.shutdown()
            #expect(error?.kind == .authentication)
            #expect(error?.operation == "CreateIAMToken")
            #expect(server.requests.allSatisfy { $0.path == "/v3/auth/tokens" })
        }
    }
}

@Suite struct RateLimiterTests {
    @Test func anEmptyBucketMakesCallersWait() async throws {
        // A token every 100 s: the waiter cannot get one before it is cancelled, however slow the machine.
        let bucket = TokenBucket(RateLimit(requestsPerSecond: 0.01, burst: 3))
        for _ in 0..<3 { try await bucket.acquire() }
        #expect(await bucket.available() < 1)
        let waiter = Task { try await bucket.acquire() }
        try await Task.sleep(for: .milliseconds(100))
        waiter.cancel()
        // Cancelled while still waiting for a token: the fourth request never got one.
        await #expect(throws: CancellationError.self) { try await waiter.value }
    }

    @Test func clientsOfOneEndpointShareABucket() async {
        let registry = EndpointRateLimiters { _ in RateLimit(requestsPerSecond: 1, burst: 1) }
        let a = await registry.bucket(for: "ecs.example:443")
        let b = await registry.bucket(for: "ecs.example:443")
        let c = await registry.bucket(for: "other:443")
        #expect(a === b)
        #expect(a !== c)
    }
}
