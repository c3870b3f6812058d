import AsyncHTTPClient
import ECSSigning
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL

/// One finished attempt, reported to the client's observer (metrics hook).
public struct ECSRequestRecord: Sendable {
    /// The API operation, e.g. `ListServersDetails`.
    public var operation: String
    public var method: String
    /// The HTTP status, or nil when no answer arrived.
    public var httpStatus: Int?
    /// The API error code when the attempt failed with one.
    public var errorCode: String?
    /// `transport` or `timeout` when no answer arrived.
    public var failure: ECSError.Kind?
    public var duration: Duration
    /// 1 for the first attempt.
    public var attempt: Int

    /// A compact label for the outcome, from a closed set whatever the endpoint sends: a status the
    /// API reference uses (`200`, `202`, `400`, `429`, `501`, …) or its class (`4xx`, `5xx`), a
    /// documented flow-control code on a 2xx error body (`Common.0024`; any other code there is
    /// `2xx_error`), or the failure kind (`transport`, `timeout`, `malformedResponse`, …).
    public var outcomeLabel: String {
        if let failure, httpStatus == nil { return failure.rawValue }
        guard let httpStatus else { return "unknown" }
        if (200..<300).contains(httpStatus), let errorCode {
            return ErrorCodes.throttling.contains(errorCode) ? errorCode : "2xx_error"
        }
        if Self.labelledStatuses.contains(httpStatus) { return String(httpStatus) }
        if (100..<600).contains(httpStatus) { return "\(httpStatus / 100)xx" }
        return "other"
    }

    /// The statuses the API reference names (A.1 and §10.1), labelled as themselves.
    static let labelledStatuses: Set<Int> = [200, 201, 202, 204, 300, 400, 401, 403, 404, 405, 406, 407, 408, 409, 413, 415, 429, 500, 501, 502, 503, 504]
}

/// The raw answer of a successful call.
struct APIResponse: Sendable {
    var status: Int
    var headers: HTTPHeaders
    /// The body as received (not copied out: a page of server details is megabytes).
    var body: ByteBuffer
    var requestId: String?
}

/// One call to make: where, what, and how it may be retried.
struct APIRequest: Sendable {
    var operation: String
    var method: HTTPMethod
    /// The path under the endpoint, each dynamic segment already percent-encoded.
    var path: String
    var query: [SignableRequest.QueryItem] = []
    var body: [UInt8]? = nil
    var headers: [SignableRequest.Header] = []
    /// Sent as `X-Client-Token` on every attempt of a POST; a POST without one is never retried.
    var clientToken: String? = nil
    /// No attempt starts at or after this instant, and none runs past it (cluster mode: the lease
    /// deadline of the shard the call is made for).
    var notAfter: ContinuousClock.Instant? = nil

    /// True when sending the request twice cannot do anything twice.
    var isRetrySafe: Bool { method != .POST || clientToken != nil }
}

/// A typed async client of the Huawei Cloud ECS API for one project.
///
/// Every call is rate limited per endpoint, authenticated (AK/SK signature or IAM token), retried
/// with exponential backoff and full jitter on throttling, 5xx and dropped connections (a POST only
/// with its `X-Client-Token`), bounded by a total deadline, and its failures surface as `ECSError`.
public struct ECSClient: Sendable {
    public let configuration: ECSClientConfiguration
    let httpClient: HTTPClient
    let rateLimiter: TokenBucket?
    let tokenProvider: IAMTokenProvider?
    let logger: Logger
    let observer: (@Sendable (ECSRequestRecord) -> Void)?
    let random: @Sendable () -> Double

    /// Creates a client.
    ///
    /// - Parameters:
    ///   - configuration: endpoint, project, credentials, retry and timeouts.
    ///   - httpClient: the HTTP client, owned (and shut down) by the caller; build one with
    ///     `ECSClient.makeHTTPClient(tls:connectTimeout:)` for TLS verification and timeouts.
    ///   - rateLimiter: the endpoint's token bucket, shared among clients of that endpoint.
    ///   - logger: request-level logs (never headers, never secrets).
    ///   - observer: called after every attempt, for metrics.
    ///   - random: the jitter source in [0, 1].
    public init(
        configuration: ECSClientConfiguration,
        httpClient: HTTPClient,
        rateLimiter: TokenBucket? = nil,
        logger: Logger = Logger(label: "ecs-warden.api"),
        observer: (@Sendable (ECSRequestRecord) -> Void)? = nil,
        random: @escaping @Sendable () -> Double = { Double.random(in: 0...1) }
    ) {
        self.configuration = configuration
        self.httpClient = httpClient
        self.rateLimiter = rateLimiter
        self.logger = logger
        self.observer = observer
        self.random = random
        if case .iamPassword(let credentials) = configuration.authentication {
            self.tokenProvider = IAMTokenProvider(
                credentials: credentials, projectId: configuration.projectId, httpClient: httpClient,
                timeout: configuration.requestTimeout)
        } else {
            self.tokenProvider = nil
        }
    }

    /// An HTTP client with TLS verification on (unless explicitly disabled), an optional CA bundle
    /// and the given connect timeout.
    public static func makeHTTPClient(tls: ECSTLSConfiguration = ECSTLSConfiguration(), connectTimeout: Duration = .seconds(10)) -> HTTPClient {
        var tlsConfiguration = TLSConfiguration.makeClientConfiguration()
        if tls.insecureSkipVerify {
            tlsConfiguration.certificateVerification = .none
        }
        if let path = tls.caBundlePath {
            tlsConfiguration.trustRoots = .file(path)
        }
        var configuration = HTTPClient.Configuration(tlsConfiguration: tlsConfiguration)
        configuration.timeout.connect = .nanoseconds(Int64(connectTimeout.nanoseconds))
        configuration.redirectConfiguration = .disallow
        configuration.decompression = .enabled(limit: .ratio(50))
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// The path prefix `/v1/{project_id}` (project id encoded).
    var v1: String { "/v1/\(PercentEncoding.encode(configuration.projectId))" }
    /// The path prefix `/v2.1/{project_id}`.
    var nova: String { "/v2.1/\(PercentEncoding.encode(configuration.projectId))" }

    // MARK: - Sending

    /// Sends `request`, retrying per the policy, and returns the successful answer.
    func send(_ request: APIRequest) async throws -> APIResponse {
        let policy = configuration.retry
        let clock = ContinuousClock()
        let deadline = min(clock.now + policy.totalDeadline, request.notAfter ?? .now + policy.totalDeadline)
        var attempt = 0
        var refreshedToken = false
        var lastFailure: ECSError?
        while true {
            attempt += 1
            if let lastFailure, clock.now >= deadline {
                // The deadline ran out while waiting (backoff, rate limit): report what last went wrong.
                throw lastFailure
            }
            var failure: ECSError
            do {
                return try await attemptOnce(request, attempt: attempt, deadline: deadline)
            } catch let error as ECSError {
                failure = error
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                failure = ECSClient.transportError(error, operation: request.operation, retryable: request.isRetrySafe)
            }
            failure.attempts = attempt
            if failure.kind == .authentication, failure.httpStatus == 401, let tokenProvider, !refreshedToken,
                let token = failure.rejectedToken
            {
                // An expired or revoked token: fetch a new one and try once more.
                await tokenProvider.invalidate(token)
                refreshedToken = true
                attempt -= 1
                continue
            }
            failure.rejectedToken = nil
            lastFailure = failure
            guard failure.isRetryable, request.isRetrySafe || failure.kind == .throttled && failure.httpStatus != nil,
                attempt < policy.maxAttempts
            else { throw failure }
            let delay = policy.delay(afterAttempt: attempt, error: failure, random: random())
            guard clock.now + delay < deadline else { throw failure }
            logger.warning(
                "retrying ECS call",
                metadata: [
                    "operation": "\(request.operation)", "attempt": "\(attempt)", "delay_ms": "\(delay.milliseconds)",
                    "error": "\(failure.code ?? failure.kind.rawValue)",
                ])
            try await Task.sleep(for: delay)
        }
    }

    /// One attempt: rate limit, authenticate, send, classify.
    private func attemptOnce(_ request: APIRequest, attempt: Int, deadline: ContinuousClock.Instant) async throws -> APIResponse {
        try await rateLimiter?.acquire()
        let clock = ContinuousClock()
        let started = clock.now
        let remaining = deadline - started
        guard remaining > .zero else {
            throw ECSError(kind: .timeout, message: "the call's deadline passed", operation: request.operation, isRetryable: false)
        }
        let budget = min(configuration.requestTimeout, remaining)
        var record = ECSRequestRecord(
            operation: request.operation, method: request.method.rawValue, httpStatus: nil, errorCode: nil,
            failure: nil, duration: .zero, attempt: attempt)
        defer {
            record.duration = clock.now - started
            observer?(record)
        }
        let (httpRequest, token) = try await prepare(request)
        // Signing (or fetching an IAM token) takes time: the deadline is checked again right before
        // the request leaves, and the attempt gets only what is left of it.
        let left = deadline - clock.now
        guard left > .zero else {
            throw ECSError(kind: .timeout, message: "the call's deadline passed before it was sent", operation: request.operation, isRetryable: false)
        }
        let timeout = min(budget, left)
        let response: HTTPResponseHead
        let bytes: ByteBuffer
        do {
            // The timeout bounds the whole exchange, the body included: an answer whose head comes
            // at once and whose body drips for ever is cut off like one that never comes.
            let client = httpClient
            (response, bytes) = try await Self.withDeadline(timeout, operation: request.operation) {
                let task = client.execute(
                    request: httpRequest, delegate: ResponseBodyCollector(limit: Self.largestBody), deadline: .now() + .nanoseconds(Int64(timeout.nanoseconds)))
                return try await withTaskCancellationHandler {
                    try await task.futureResult.get()
                } onCancel: {
                    task.cancel()
                }
            }
        } catch {
            let mapped = ECSClient.transportError(error, operation: request.operation, retryable: request.isRetrySafe)
            record.failure = mapped.kind
            throw mapped
        }
        let status = Int(response.status.code)
        record.httpStatus = status
        let requestId = response.headers.first(name: "X-Request-Id") ?? response.headers.first(name: "X-Openstack-Request-Id")
            ?? response.headers.first(name: "X-Compute-Request-Id")
        // Enough of the body to classify it: all of an error status's, and of a 2xx body what tells
        // an error body (short) from data (longer), without copying out a page of megabytes.
        let head = (200..<300).contains(status) ? Array(bytes.readableBytesView.prefix(ErrorBody.largestErrorBody + 1)) : Array(bytes.readableBytesView)
        if var error = ECSClient.classify(status: status, body: head, headers: response.headers, operation: request.operation) {
            error.requestId = requestId
            if status == 401, let token { error.rejectedToken = token }
            record.errorCode = error.code
            logger.debug(
                "ECS call failed",
                metadata: ["operation": "\(request.operation)", "status": "\(status)", "code": "\(error.code ?? "-")", "request_id": "\(requestId ?? "-")"])
            throw error
        }
        logger.trace("ECS call succeeded", metadata: ["operation": "\(request.operation)", "status": "\(status)", "request_id": "\(requestId ?? "-")"])
        return APIResponse(status: status, headers: response.headers, body: bytes, requestId: requestId)
    }

    /// The largest answer body read (a page of 1,000 server details is about 2 MB).
    static let largestBody = 256 << 20

    /// Builds the HTTP request: URL, headers, body, and the signature or token.
    private func prepare(_ request: APIRequest) async throws -> (HTTPClient.Request, token: String?) {
        var basePath = configuration.endpoint.path
        while basePath.hasSuffix("/") { basePath.removeLast() }
        let path = basePath + request.path
        var headers: [SignableRequest.Header] = [
            .init("Content-Type", request.method == .POST || request.method == .PUT ? "application/json;charset=utf-8" : "application/json"),
            .init("User-Agent", configuration.userAgent),
            .init("X-Project-Id", configuration.projectId),
        ]
        headers += request.headers
        if let clientToken = request.clientToken { headers.append(.init("X-Client-Token", clientToken)) }
        let queryString: String
        var usedToken: String?
        switch configuration.authentication {
        case .accessKey(let credentials):
            if let securityToken = credentials.securityToken { headers.append(.init("X-Security-Token", securityToken)) }
            let signable = SignableRequest(method: request.method.rawValue, path: path, query: request.query, headers: headers, body: request.body ?? [])
            let signed = SDKSigner.sign(signable, credentials: credentials, host: configuration.hostHeader)
            headers = signed.headers
            queryString = signed.queryString
        case .iamPassword:
            let token = try await tokenProvider?.token() ?? ""
            usedToken = token
            headers.append(.init("X-Auth-Token", token))
            queryString = SDKSigner.canonicalQueryString(request.query)
        }
        var origin = configuration.endpoint.absoluteString
        if let range = origin.range(of: "://"), let slash = origin[range.upperBound...].firstIndex(of: "/") {
            origin = String(origin[..<slash])
        }
        var httpHeaders = HTTPHeaders()
        for header in headers {
            httpHeaders.add(name: header.name, value: header.value)
        }
        let httpRequest = try HTTPClient.Request(
            url: origin + path + (queryString.isEmpty ? "" : "?" + queryString), method: request.method, headers: httpHeaders,
            body: request.body.map { .bytes($0) })
        return (httpRequest, usedToken)
    }

    // MARK: - Classification

    /// The error an answer stands for, or nil for success. Pure: the retry rules live here.
    static func classify(status: Int, body: [UInt8], headers: HTTPHeaders, operation: String) -> ECSError? {
        let isSuccessStatus = (200..<300).contains(status)
        // An error body is a few hundred bytes; a 2xx page of 1,000 servers is megabytes and is not
        // parsed twice just to look for one.
        if isSuccessStatus && body.count > ErrorBody.largestErrorBody { return nil }
        let decoded = ErrorBody.decode(body)
        if isSuccessStatus && decoded?.code == nil { return nil }
        let code = decoded?.code
        let message = decoded?.message ?? (isSuccessStatus ? "error body on HTTP \(status)" : "HTTP \(status)")
        let retryAfter = headers.first(name: "Retry-After").flatMap(parseRetryAfter)
        let kind: ECSError.Kind
        let retryable: Bool
        if let code, ErrorCodes.throttling.contains(code) {
            kind = .throttled
            retryable = true
        } else if status == 429 {
            kind = .throttled
            retryable = true
        } else if status == 401 || code == ErrorCodes.invalidToken {
            kind = .authentication
            retryable = false
        } else if status == 501 {
            kind = .api
            retryable = false
        } else if status >= 500 {
            kind = .api
            retryable = true
        } else {
            kind = .api
            retryable = false
        }
        return ECSError(
            kind: kind, httpStatus: status, code: code, message: message, operation: operation,
            isRetryable: retryable, retryAfter: retryAfter)
    }

    /// The longest wait a `Retry-After` is taken for: an hour (the call's total deadline bounds it
    /// anyway). A larger, infinite or absurd value is read as this, never trusted into an overflow.
    static let longestRetryAfter: Double = 3600

    /// `Retry-After` as seconds or an HTTP date, within 0 and `longestRetryAfter`.
    static func parseRetryAfter(_ value: String) -> Duration? {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        if let seconds = Double(trimmed) {
            guard !seconds.isNaN, seconds >= 0 else { return nil }
            return .milliseconds(Int64(min(seconds, longestRetryAfter) * 1000))
        }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        if let date = formatter.date(from: trimmed) {
            return .milliseconds(Int64(min(max(0, date.timeIntervalSinceNow), longestRetryAfter) * 1000))
        }
        return nil
    }

    /// Runs `body`, cancelled with a timeout error when it has not finished within `limit`.
    static func withDeadline<Value: Sendable>(
        _ limit: Duration, operation: String, _ body: @escaping @Sendable () async throws -> Value
    ) async throws -> Value {
        try await withThrowingTaskGroup(of: Value?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: limit)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let value = first else {
                throw ECSError(
                    kind: .timeout, message: "no complete answer within \(limit) (the body was still arriving)", operation: operation, isRetryable: true)
            }
            return value
        }
    }

    /// Maps a transport failure (reset, refused, closed, timeout) to an `ECSError`.
    static func transportError(_ error: any Error, operation: String, retryable: Bool) -> ECSError {
        if let error = error as? ECSError { return error }
        let text = String(describing: error)
        let isTimeout: Bool
        if let clientError = error as? HTTPClientError {
            isTimeout = [HTTPClientError.readTimeout, .connectTimeout, .deadlineExceeded, .writeTimeout].contains(clientError)
        } else {
            isTimeout = text.localizedCaseInsensitiveContains("timeout") || text.localizedCaseInsensitiveContains("timed out")
        }
        return ECSError(
            kind: isTimeout ? .timeout : .transport,
            message: isTimeout ? "no answer in time (\(text))" : "connection failed (\(text))",
            operation: operation,
            isRetryable: retryable)
    }

    // MARK: - Coding

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    /// Encodes a request body.
    func encode<Body: Encodable>(_ body: Body) throws -> [UInt8] {
        Array(try ECSClient.encoder.encode(body))
    }

    /// Decodes an answer, mapping failures to a non-retryable `malformedResponse`.
    func decode<Value: Decodable>(_ type: Value.Type, from response: APIResponse, operation: String) throws -> Value {
        do {
            return try JSONDecoder().decode(type, from: Data(response.body.readableBytesView))
        } catch {
            throw ECSError(
                kind: .malformedResponse, httpStatus: response.status,
                message: "cannot decode the answer: \(ECSClient.describe(error))", requestId: response.requestId,
                operation: operation, isRetryable: false)
        }
    }

    static func describe(_ error: any Error) -> String {
        guard let decodingError = error as? DecodingError else { return String(describing: error) }
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch decodingError {
        case .keyNotFound(let key, let context): return "missing field \(path(context)).\(key.stringValue)"
        case .typeMismatch(_, let context), .valueNotFound(_, let context): return "\(path(context)): \(context.debugDescription)"
        case .dataCorrupted(let context): return "\(path(context)): \(context.debugDescription)"
        @unknown default: return String(describing: decodingError)
        }
    }

    /// A new idempotency token for a mutating call.
    public static func makeClientToken() -> String {
        UUID().uuidString.lowercased()
    }
}

extension Duration {
    /// The duration in whole nanoseconds.
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    /// The duration in whole milliseconds.
    var milliseconds: Int64 { nanoseconds / 1_000_000 }
}
