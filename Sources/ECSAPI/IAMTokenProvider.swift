import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Obtains and caches a project-scoped IAM token (`POST {iam}/v3/auth/tokens`, header
/// `X-Subject-Token`), refreshing it shortly before `expires_at` and whenever the API rejects it.
///
/// Concurrent callers share one in-flight request.
public actor IAMTokenProvider {
    private let credentials: IAMPasswordCredentials
    private let projectId: String
    private let httpClient: HTTPClient
    private let refreshMargin: TimeInterval
    private let timeout: Duration
    private let now: @Sendable () -> Date
    private var cached: (token: String, expiresAt: Date)?
    private var inFlight: Task<(token: String, expiresAt: Date), any Error>?
    /// How many tokens were fetched (for tests and status).
    public private(set) var fetchCount = 0

    /// Creates a provider; tokens are renewed `refreshMargin` seconds before they expire.
    public init(
        credentials: IAMPasswordCredentials,
        projectId: String,
        httpClient: HTTPClient,
        refreshMargin: TimeInterval = 300,
        timeout: Duration = .seconds(30),
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.credentials = credentials
        self.projectId = projectId
        self.httpClient = httpClient
        self.refreshMargin = refreshMargin
        self.timeout = timeout
        self.now = now
    }

    /// A valid token, fetched when none is cached or the cached one is about to expire.
    public func token() async throws -> String {
        if let cached, cached.expiresAt.timeIntervalSince(now()) > refreshMargin {
            return cached.token
        }
        if let inFlight {
            return try await inFlight.value.token
        }
        let task = Task { try await self.fetch() }
        inFlight = task
        defer { inFlight = nil }
        var fresh = try await task.value
        fetchCount += 1
        // A token that arrives (nearly) expired — a clock skew, a misbehaving endpoint — would be
        // fetched again on every call: it is used for at least a minute (a 401 still replaces it).
        let floor = now().addingTimeInterval(refreshMargin + Self.shortestUse)
        if fresh.expiresAt < floor { fresh.expiresAt = floor }
        cached = fresh
        return fresh.token
    }

    /// The shortest time a fetched token is used before another is fetched.
    static let shortestUse: TimeInterval = 60

    /// Forgets `token` after the API rejected it, so the next call fetches a new one.
    public func invalidate(_ token: String) {
        if cached?.token == token { cached = nil }
    }

    private func fetch() async throws -> (token: String, expiresAt: Date) {
        let body: [String: Any] = [
            "auth": [
                "identity": [
                    "methods": ["password"],
                    "password": [
                        "user": [
                            "name": credentials.userName,
                            "password": credentials.password,
                            "domain": ["name": credentials.domainName],
                        ]
                    ],
                ],
                "scope": ["project": ["id": projectId]],
            ]
        ]
        let bytes = try JSONSerialization.data(withJSONObject: body)
        var base = credentials.iamEndpoint.absoluteString
        while base.hasSuffix("/") { base.removeLast() }
        var request = HTTPClientRequest(url: base + "/v3/auth/tokens")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json;charset=utf-8")
        request.body = .bytes(ByteBuffer(bytes: bytes))
        let operation = "CreateIAMToken"
        let response: HTTPClientResponse
        let payload: ByteBuffer
        do {
            response = try await httpClient.execute(request, timeout: .nanoseconds(Int64(timeout.nanoseconds)))
            payload = try await response.body.collect(upTo: 4 << 20)
        } catch {
            throw ECSClient.transportError(error, operation: operation, retryable: true)
        }
        let payloadBytes = Array(payload.readableBytesView)
        let requestId = response.headers.first(name: "X-Request-Id") ?? response.headers.first(name: "X-IAM-Trace-Id")
        guard (200..<300).contains(Int(response.status.code)) else {
            let decoded = ErrorBody.decode(payloadBytes)
            let status = Int(response.status.code)
            throw ECSError(
                kind: status == 401 || status == 400 || status == 403 ? .authentication : .api,
                httpStatus: status,
                code: decoded?.code,
                message: decoded?.message ?? "IAM answered HTTP \(status)",
                requestId: requestId,
                operation: operation,
                isRetryable: status >= 500 || status == 429
            )
        }
        guard let token = response.headers.first(name: "X-Subject-Token"), !token.isEmpty else {
            throw ECSError(
                kind: .malformedResponse, httpStatus: Int(response.status.code),
                message: "the IAM answer carries no X-Subject-Token header", requestId: requestId,
                operation: operation, isRetryable: false)
        }
        var expiresAt = now().addingTimeInterval(3600)
        if let object = try? JSONSerialization.jsonObject(with: Data(payloadBytes)) as? [String: Any],
            let tokenObject = object["token"] as? [String: Any],
            let text = tokenObject["expires_at"] as? String,
            let date = ECSTimestamp.parse(text)
        {
            expiresAt = date
        }
        return (token, expiresAt)
    }
}
