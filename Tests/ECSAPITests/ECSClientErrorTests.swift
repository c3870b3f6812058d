import AsyncHTTPClient
import ECSSigning
import Foundation
import Testing

@testable import ECSAPI

/// Fast retries for tests: the same rules, millisecond waits.
let testRetry = RetryPolicy(
    maxAttempts: 3, baseDelay: .milliseconds(1), maxDelay: .milliseconds(5), busyServerDelay: .milliseconds(20),
    totalDeadline: .seconds(10))

let testCredentials = AccessKeyCredentials(accessKey: "AK-TEST", secretKey: "SK-test-secret")
let testProject = "0123456789abcdef0123456789abcdef"

/// Runs `body` with a client pointed at a fresh test server; the server checks every signature.
func withClient(
    retry: RetryPolicy = testRetry,
    requestTimeout: Duration = .seconds(5),
    pageSize: Int = 1000,
    authentication: ECSAuthentication? = nil,
    handler: @escaping @Sendable (TestHTTPServer.Request) async -> TestHTTPServer.Action,
    _ body: (ECSClient, TestHTTPServer) async throws -> Void
) async throws {
    let verifier = SignatureVerifier { $0 == testCredentials.accessKey ? testCredentials.secretKey : nil }
    let server = try await TestHTTPServer.start { request in
        if request.header("Authorization") != nil {
            let headers = request.headers.map { SignableRequest.Header($0.name, $0.value) }
            do {
                try verifier.verify(
                    method: request.method, path: request.path, rawQuery: request.rawQuery, headers: headers, body: request.body, now: Date())
            } catch let rejection {
                return .json(401, #"{"error":{"code":"APIGW.0301","message":"\#(rejection)"}}"#)
            }
        }
        return await handler(request)
    }
    let http = ECSClient.makeHTTPClient(connectTimeout: .seconds(2))
    let configuration = ECSClientConfiguration(
        endpoint: server.endpoint, projectId: testProject, region: "test-1",
        authentication: authentication ?? .accessKey(testCredentials), retry: retry, requestTimeout: requestTimeout, pageSize: pageSize)
    let client = ECSClient(configuration: configuration, httpClient: http)
    do {
        try await body(client, server)
    } catch {
        try? await http.shutdown()
        await server.shutdown()
        throw error
    }
    try await http.shutdown()
    await server.shutdown()
}

/// The error a call throws, or a test failure if it succeeds.
func expectECSError(_ call: () async throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) async -> ECSError? {
    do {
        try await call()
        Issue.record("expected an ECSError, the call succeeded", sourceLocation: sourceLocation)
        return nil
    } catch let error as ECSError {
        return error
    } catch {
        Issue.record("expected an ECSError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

@Suite struct ECSClientErrorTests {
    @Test func badRequestWithEcsCodeIsNotRetried() async throws {
        try await withClient(handler: { _ in
            .json(400, #"{"error":{"code":"Ecs.0005","message":"request body is illegal."}}"#, headers: [("X-Request-Id", "req-400")])
        }) { client, server in
            let error = await expectECSError { _ = try await client.limits() }
            #expect(error?.kind == .api)
            #expect(error?.httpStatus == 400)
            #expect(error?.code == "Ecs.0005")
            #expect(error?.message == "request body is illegal.")
            #expect(error?.requestId == "req-400")
            #expect(error?.isRetryable == false)
            #expect(error?.attempts == 1)
            #expect(server.requests.count == 1)
        }
    }

    @Test func unauthorizedIsAnAuthenticationErrorAndNotRetried() async throws {
        try await withClient(handler: { _ in .json(401, #"{"error_code":"APIGW.0301","error_msg":"Incorrect IAM authentication information"}"#) }) {
            client, server in
            let error = await expectECSError { _ = try await client.limits() }
            #expect(error?.kind == .authentication)
            #expect(error?.code == "APIGW.0301")
            #expect(error?.isRetryable == false)
            #expect(server.requests.count == 1)
        }
    }

    @Test func wrongSecretKeyIsRejectedByTheVerifier() async throws {
        try await withClient(
            authentication: .accessKey(AccessKeyCredentials(accessKey: testCredentials.accessKey, secretKey: "wrong")),
            handler: { _ in .json(200, #"{"absolute":{}}"#) }
        ) { client, server in
            let error = await expectECSError { _ = try await client.limits() }
            #expect(error?.httpStatus == 401)
            #expect(error?.message.contains("signature") == true)
            #expect(server.requests.count == 1)
        }
    }

    @Test func forbiddenAndNotFoundCarryTheirCodes() async throws {
        try await withClient(handler: { request in
            request.path.contains("/jobs/")
                ? .json(404, #"{"error":{"code":"Ecs.0114","message":"The ECS does not exist."}}"#)
                : .json(403, #"{"error":{"code":"Pdp.0001","message":"Policy does not allow ecs:cloudServerQuotas:get to be performed."}}"#)
        }) { client, server in
            let forbidden = await expectECSError { _ = try await client.limits() }
            #expect(forbidden?.httpStatus == 403)
            #expect(forbidden?.code == "Pdp.0001")
            #expect(forbidden?.isRetryable == false)
            let missing = await expectECSError { _ = try await client.job(id: "nope") }
            #expect(missing?.isNotFound == true)
            #expect(server.requests.count == 2)
        }
    }

    @Test func tooManyRequestsIsRetriedAndRetryAfterHonoured() async throws {
        let calls = Counter()
        try await withClient(handler: { _ in
            calls.next() == 1
                ? .json(429, #"{"error":{"code":"Common.1503","message":"Api flow control Error"}}"#, headers: [("Retry-After", "0.2")])
                : .json(200, #"{"absolute":{"maxTotalInstances":10,"totalInstancesUsed":3}}"#)
        }) { client, server in
            let started = ContinuousClock.now
            let limits = try await client.limits()
            #expect(ContinuousClock.now - started >= .milliseconds(200))
            #expect(limits.usage("instances")?.used == 3)
            #expect(server.requests.count == 2)
        }
    }

    @Test func persistentThrottlingGivesUpAfterMaxAttempts() async throws {
        try await withClient(handler: { _ in .json(429, #"{"error":{"code":"Common.1503","message":"Api flow control Error"}}"#) }) {
            client, server in
            let error = await expectECSError { _ = try await client.limits() }
            #expect(error?.kind == .throttled)
            #expect(error?.isRetryable == true)
            #expect(error?.attempts == 3)
            #expect(server.requests.count == 3)
        }
    }

    @Test func throttlingHiddenInA202IsRetriedWithTheSameClientToken() async throws {
        let calls = Counter()
        try await withClient(handler: { _ in
            calls.next() == 1
                ? .json(202, #"{"error":{"code":"Common.0024","message":"exceeds flow over limit"}}"#)
                : .json(200, #"{"job_id":"ff808082889bd9690189061140c235fe"}"#)
        }) { client, server in
            let accepted = try await client.batchAction(.stop(.soft), serverIds: ["s-1", "s-2"], clientToken: "token-1")
            #expect(accepted.jobId == "ff808082889bd9690189061140c235fe")
            let requests = server.requests
            #expect(requests.count == 2)
            #expect(requests.allSatisfy { $0.header("X-Client-Token") == "token-1" })
            #expect(requests[0].bodyText == #"{"os-stop":{"servers":[{"id":"s-1"},{"id":"s-2"}],"type":"SOFT"}}"#)
        }
    }

    @Test func serverErrorsAreRetried() async throws {
        for status in [500, 503] {
            let calls = Counter()
            try await withClient(handler: { _ in
                calls.next() < 3 ? .json(status, #"{"error":{"code":"Common.0001","message":"A system exception occurred."}}"#) : .json(200, #"{"flavors":[]}"#)
            }) { client, server in
                let flavors = try await client.flavors()
                #expect(flavors.isEmpty)
                #expect(server.requests.count == 3)
            }
        }
    }

    @Test func commandsBeingExecutedWaitsForTheBusyFloor() async throws {
        let calls = Counter()
        try await withClient(handler: { _ in
            calls.next() == 1
                ? .json(501, #"{"error":{"code":"Ecs.0603","message":"The commands are being executed. Try again later."}}"#)
                : .json(200, #"{"job_id":"0123456789abcdef0123456789abcdef"}"#)
        }) { client, server in
            let started = ContinuousClock.now
            _ = try await client.batchAction(.start, serverIds: ["s-1"])
            #expect(ContinuousClock.now - started >= testRetry.busyServerDelay)
            #expect(server.requests.count == 2)
        }
    }

    @Test func notImplementedWithoutBusyCodeIsNotRetried() async throws {
        try await withClient(handler: { _ in .json(501, #"{"error":{"code":"Ecs.0000","message":"Request error."}}"#) }) { client, server in
            let error = await expectECSError { _ = try await client.limits() }
            #expect(error?.isRetryable == false)
            #expect(server.requests.count == 1)
        }
    }

    @Test func resetConnectionIsRetried() async throws {
        let calls = Counter()
        try await withClient(handler: { _ in
            calls.next() == 1 ? .reset : .json(200, #"{"flavors":[{"id":"s3.small.1","name":"s3.small.1","vcpus":"1","ram":1024}]}"#)
        }) { client, server in
            let flavors = try await client.flavors()
            #expect(flavors.map(\.id) == ["s3.small.1"])
            #expect(server.requests.count == 2)
        }
    }

    @Test func persistentResetsEndAsTransportError() async throws {
        try await withClient(handler: { _ in .reset }) { client, server in
            let error = await expectECSError { _ = try await client.flavors() }
            #expect(error?.kind == .transport)
            #expect(error?.isRetryable == true)
            #expect(error?.attempts == 3)
            #expect(server.requests.count == 3)
        }
    }

    @Test func noAnswerTimesOutAndRetriesWithTheSameToken() async throws {
        try await withClient(requestTimeout: .milliseconds(800), handler: { _ in .hang }) { client, server in
            let error = await expectECSError { _ = try await client.batchAction(.stop(.hard), serverIds: ["s-1"], clientToken: "tok-hang") }
            #expect(error?.kind == .timeout)
            #expect(error?.attempts == 3)
            // On a loaded machine the last attempt can time out before its request is read.
            let requests = server.requests
            #expect(requests.count >= 2)
            #expect(Set(requests.compactMap { $0.header("X-Client-Token") }) == ["tok-hang"])
        }
    }

    /// The head comes at once, the body one byte every 100 ms for ever: the request timeout still
    /// ends each attempt (it used to stop applying once the head had arrived).
    @Test func aDrippingBodyTimesOut() async throws {
        try await withClient(requestTimeout: .milliseconds(700), handler: { _ in .drip(interval: .milliseconds(100)) }) { client, server in
            let started = ContinuousClock.now
            let error = await expectECSError { _ = try await client.limits() }
            #expect(error?.kind == .timeout)
            #expect(error?.attempts == 3)
            #expect(ContinuousClock.now - started < .seconds(20))
            #expect(server.requests.count == 3)
        }
    }

    @Test func totalDeadlineBoundsTheCall() async throws {
        let retry = RetryPolicy(maxAttempts: 50, baseDelay: .milliseconds(50), maxDelay: .milliseconds(50), totalDeadline: .milliseconds(400))
        try await withClient(retry: retry, handler: { _ in .json(503, #"{"error":{"code":"Common.0001","message":"busy"}}"#) }) { client, server in
            let started = ContinuousClock.now
            let error = await expectECSError { _ = try await client.limits() }
            // Without the deadline all 50 attempts are made (the count below, which a loaded
            // machine does not change); the time is only a bound against a hang (4.6 s was seen
            // beside six busy loops on two cores).
            #expect(ContinuousClock.now - started < .seconds(20))
            // The last attempt may be cut by the deadline itself (a timeout) or end in the 503.
            #expect(error?.isRetryable == true)
            #expect(error?.httpStatus == 503 || error?.kind == .timeout)
            #expect(server.requests.count < 50)
        }
    }

    @Test func postWithoutClientTokenIsNeverRetriedAfterAnAmbiguousFailure() async throws {
        try await withClient(handler: { _ in .json(500, #"{"error":{"code":"Common.0001","message":"boom"}}"#) }) { client, server in
            let error = await expectECSError {
                _ = try await client.send(APIRequest(operation: "Raw", method: .POST, path: "/v1/\(testProject)/cloudservers/action", body: Array("{}".utf8)))
            }
            #expect(error?.httpStatus == 500)
            #expect(server.requests.count == 1)
        }
    }

    @Test func oversizedBatchIsRefusedBeforeSending() async throws {
        try await withClient(handler: { _ in .json(200, #"{"job_id":"x"}"#) }) { client, server in
            let ids = (0..<1001).map { "s-\($0)" }
            let error = await expectECSError { _ = try await client.batchAction(.stop(.soft), serverIds: ids) }
            #expect(error?.kind == .invalidRequest)
            #expect(server.requests.isEmpty)
        }
    }

    @Test func successWithoutJobIdIsMalformed() async throws {
        try await withClient(handler: { _ in .json(200, #"{"something":"else"}"#) }) { client, _ in
            let error = await expectECSError { _ = try await client.batchAction(.start, serverIds: ["s-1"]) }
            #expect(error?.kind == .malformedResponse)
            #expect(error?.isRetryable == false)
        }
    }

    @Test func everyRequestIsSignedWithProjectAndUserAgent() async throws {
        try await withClient(handler: { _ in .json(200, #"{"absolute":{}}"#) }) { client, server in
            _ = try await client.limits()
            let request = try #require(server.requests.first)
            #expect(request.path == "/v1/\(testProject)/cloudservers/limits")
            #expect(request.header("X-Project-Id") == testProject)
            #expect(request.header("Authorization")?.contains("SignedHeaders=content-type;host;user-agent;x-project-id;x-sdk-date,") == true)
            #expect(request.header("X-Sdk-Date").flatMap(SDKDate.parse) != nil)
        }
    }
}

@Suite struct ErrorBodyTests {
    @Test func decodesEveryShapeOfTheSeeds() {
        let v1 = ErrorBody.decode(Array(#"{"error":{"message":"request body is illegal.","code":"Ecs.0005"}}"#.utf8))
        #expect(v1 == ErrorBody(code: "Ecs.0005", message: "request body is illegal."))
        let swapped = ErrorBody.decode(Array(#"{"error":{"code":"request body is illegal.","message":"Ecs.0005"}}"#.utf8))
        #expect(swapped == ErrorBody(code: "Ecs.0005", message: "request body is illegal."))
        let gateway = ErrorBody.decode(Array(#"{"error_msg":"The request message format is invalid.","error_code":"IMG.0001"}"#.utf8))
        #expect(gateway == ErrorBody(code: "IMG.0001", message: "The request message format is invalid."))
        let details = ErrorBody.decode(Array(#"{"error":{"message":"privateIp is not in this subnet","details":[{"code":"Ecs.0039"}]}}"#.utf8))
        #expect(details?.code == "Ecs.0039")
        let nova = ErrorBody.decode(Array(#"{"itemNotFound":{"message":"Instance could not be found","code":404}}"#.utf8))
        #expect(nova == ErrorBody(code: nil, message: "Instance could not be found"))
        let job = ErrorBody.decode(Array(#"{"code":"Common.0011","message":"Failed to query system tasks."}"#.utf8))
        #expect(job?.code == "Common.0011")
        #expect(ErrorBody.decode(Array(#"{"job_id":"abc"}"#.utf8)) == nil)
        let failedJob = #"{"status":"FAIL","job_id":"j","error_code":"Ecs.0100","fail_reason":"state"}"#
        #expect(ErrorBody.decode(Array(failedJob.utf8)) == nil)
        #expect(ErrorBody.decode(Array("<html>502</html>".utf8)) == nil)
    }

    @Test func classifiesRetryability() {
        func classify(_ status: Int, _ body: String) -> ECSError? {
            ECSClient.classify(status: status, body: Array(body.utf8), headers: [:], operation: "Op")
        }
        #expect(classify(200, #"{"job_id":"x"}"#) == nil)
        #expect(classify(204, "") == nil)
        #expect(classify(202, #"{"error":{"code":"Common.0024","message":"exceeds flow over limit"}}"#)?.kind == .throttled)
        #expect(classify(502, "<html>bad gateway</html>")?.isRetryable == true)
        #expect(classify(400, #"{"error":{"code":"Ecs.0100","message":"state"}}"#)?.isRetryable == false)
        #expect(classify(401, #"{"error":{"code":"Common.0013","message":"Invalid token."}}"#)?.kind == .authentication)
        #expect(classify(501, #"{"error":{"code":"Ecs.0603","message":"busy"}}"#)?.isRetryable == true)
        #expect(ECSClient.parseRetryAfter("3") == .seconds(3))
        #expect(ECSClient.parseRetryAfter("soon") == nil)
        // Absurd values from a hostile endpoint are bounded, never trusted into an overflow.
        for absurd in ["1e300", "99999999999999999", "inf", "1.7976931348623157e308"] {
            #expect(ECSClient.parseRetryAfter(absurd) == .seconds(3600))
        }
        #expect(ECSClient.parseRetryAfter("nan") == nil)
        #expect(ECSClient.parseRetryAfter("-5") == nil)
        let throttled = ECSClient.classify(
            status: 429, body: [], headers: ["Retry-After": "1e300"], operation: "Op")
        #expect(throttled?.retryAfter == .seconds(3600))
    }

    @Test func backoffGrowsWithFullJitterAndIsCapped() {
        let policy = RetryPolicy(maxAttempts: 10, baseDelay: .milliseconds(100), maxDelay: .seconds(1))
        #expect(policy.backoffCeiling(afterAttempt: 1) == .milliseconds(100))
        #expect(policy.backoffCeiling(afterAttempt: 3) == .milliseconds(400))
        #expect(policy.backoffCeiling(afterAttempt: 9) == .seconds(1))
        let error = ECSError(kind: .api, message: "x", operation: "Op", isRetryable: true)
        #expect(policy.delay(afterAttempt: 3, error: error, random: 0) == .zero)
        #expect(policy.delay(afterAttempt: 3, error: error, random: 0.5) == .milliseconds(200))
        var throttled = error
        throttled.retryAfter = .seconds(5)
        #expect(policy.delay(afterAttempt: 1, error: throttled, random: 0.1) == .seconds(5))
    }
}

/// Metric labels come from a closed set, whatever codes and statuses an endpoint invents.
@Suite struct OutcomeLabelTests {
    @Test func labelsStayInAClosedSet() {
        func label(_ status: Int?, _ code: String? = nil, _ failure: ECSError.Kind? = nil) -> String {
            ECSRequestRecord(operation: "Op", method: "GET", httpStatus: status, errorCode: code, failure: failure, duration: .zero, attempt: 1).outcomeLabel
        }
        #expect(label(200) == "200")
        #expect(label(429) == "429")
        #expect(label(202, "Common.0024") == "Common.0024")
        #expect(label(200, "Evil.\(UUID().uuidString)") == "2xx_error")
        #expect(label(418) == "4xx")
        #expect(label(599) == "5xx")
        #expect(label(999) == "other")
        #expect(label(nil, nil, .timeout) == "timeout")
        var seen = Set<String>()
        for status in 0..<1000 {
            seen.insert(label(status, "X.\(status)"))
            seen.insert(label(status))
        }
        #expect(seen.count < 40)
    }
}
