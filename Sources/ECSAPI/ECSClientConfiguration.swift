import ECSSigning
import Foundation

/// How the client proves who it is.
public enum ECSAuthentication: Sendable, CustomStringConvertible {
    /// Every request signed with an access key pair (recommended by the API reference).
    case accessKey(AccessKeyCredentials)
    /// An IAM user's password exchanged for a project-scoped token at `POST {iam}/v3/auth/tokens`;
    /// the token travels as `X-Auth-Token`.
    case iamPassword(IAMPasswordCredentials)

    public var description: String {
        switch self {
        case .accessKey(let credentials): return "AK/SK \(credentials.accessKey)"
        case .iamPassword(let credentials): return "IAM user \(credentials.userName)@\(credentials.domainName)"
        }
    }
}

/// An IAM user whose password buys project-scoped tokens. The password never appears in
/// `description`.
public struct IAMPasswordCredentials: Sendable, Equatable, CustomStringConvertible {
    /// The IAM endpoint, e.g. `https://iam.eu-west-0.myhuaweicloud.com`.
    public var iamEndpoint: URL
    public var userName: String
    public var password: String
    /// The account (domain) name the user belongs to.
    public var domainName: String

    public init(iamEndpoint: URL, userName: String, password: String, domainName: String) {
        self.iamEndpoint = iamEndpoint
        self.userName = userName
        self.password = password
        self.domainName = domainName
    }

    public var description: String { "IAMPasswordCredentials(user: \(userName), domain: \(domainName), password: <redacted>)" }
}

/// When and how often a failed call is tried again.
///
/// Retries happen on throttling (429, `Common.1503`, 202 `Common.0024`, `Ecs.0603`), on 5xx and on
/// dropped connections and timeouts — never on other 4xx. Delays grow exponentially with full
/// jitter, `Retry-After` is honoured, and a total deadline bounds the whole call.
public struct RetryPolicy: Sendable, Equatable {
    /// Attempts in all, the first included (1 = no retry).
    public var maxAttempts: Int
    /// The first backoff ceiling; attempt n waits a random time in [0, base × 2ⁿ⁻¹].
    public var baseDelay: Duration
    /// The largest backoff ceiling.
    public var maxDelay: Duration
    /// The least wait after `Ecs.0603` ("try again 1 minute later").
    public var busyServerDelay: Duration
    /// The whole call, all attempts and waits included, ends by then.
    public var totalDeadline: Duration

    public init(
        maxAttempts: Int = 5,
        baseDelay: Duration = .milliseconds(200),
        maxDelay: Duration = .seconds(20),
        busyServerDelay: Duration = .seconds(60),
        totalDeadline: Duration = .seconds(120)
    ) {
        self.maxAttempts = max(1, maxAttempts)
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.busyServerDelay = busyServerDelay
        self.totalDeadline = totalDeadline
    }

    /// One attempt only.
    public static let none = RetryPolicy(maxAttempts: 1)

    /// The full-jitter ceiling before attempt `attempt + 1` (attempt counts from 1).
    public func backoffCeiling(afterAttempt attempt: Int) -> Duration {
        let exponent = min(max(attempt - 1, 0), 30)
        let ceiling = baseDelay * (1 << exponent)
        return min(ceiling, maxDelay)
    }

    /// The wait before the next attempt: random in [0, ceiling], raised to `Retry-After` and to the
    /// busy-server floor where they apply.
    public func delay(afterAttempt attempt: Int, error: ECSError, random: Double) -> Duration {
        var delay = backoffCeiling(afterAttempt: attempt) * min(max(random, 0), 1)
        if let retryAfter = error.retryAfter { delay = max(delay, retryAfter) }
        if error.code == ErrorCodes.commandsBeingExecuted { delay = max(delay, busyServerDelay) }
        return delay
    }
}

/// A token bucket's settings: a steady rate and a burst.
public struct RateLimit: Sendable, Equatable {
    /// Requests per second refilled.
    public var requestsPerSecond: Double
    /// Requests that may go at once after a quiet spell.
    public var burst: Int

    public init(requestsPerSecond: Double, burst: Int) {
        self.requestsPerSecond = max(requestsPerSecond, 0.001)
        self.burst = max(burst, 1)
    }

    /// A conservative default for one endpoint: 20 requests/s, bursts of 40.
    public static let `default` = RateLimit(requestsPerSecond: 20, burst: 40)
}

/// Everything one client needs to talk to one project's ECS endpoint.
public struct ECSClientConfiguration: Sendable {
    /// The ECS endpoint, e.g. `https://ecs.eu-west-0.myhuaweicloud.com` or a simulator's URL.
    public var endpoint: URL
    /// The project (tenant) id in every path.
    public var projectId: String
    /// The region name, for labels and logs.
    public var region: String
    public var authentication: ECSAuthentication
    public var retry: RetryPolicy
    /// The time one attempt may take, connection included.
    public var requestTimeout: Duration
    /// The time to establish a connection.
    public var connectTimeout: Duration
    /// Pages of this size (the documented maximum is 1000).
    public var pageSize: Int
    /// Sent as `User-Agent` (and signed, as the official SDK does).
    public var userAgent: String
    /// The Nova microversion sent on `/v2.1` calls; 2.26 brings `tags`.
    public var novaMicroversion: String

    public init(
        endpoint: URL,
        projectId: String,
        region: String = "",
        authentication: ECSAuthentication,
        retry: RetryPolicy = RetryPolicy(),
        requestTimeout: Duration = .seconds(30),
        connectTimeout: Duration = .seconds(10),
        pageSize: Int = 1000,
        userAgent: String = "ecs-warden/0.1",
        novaMicroversion: String = "2.26"
    ) {
        self.endpoint = endpoint
        self.projectId = projectId
        self.region = region
        self.authentication = authentication
        self.retry = retry
        self.requestTimeout = requestTimeout
        self.connectTimeout = connectTimeout
        self.pageSize = min(max(pageSize, 1), 1000)
        self.userAgent = userAgent
        self.novaMicroversion = novaMicroversion
    }

    /// `host[:port]` exactly as the endpoint names it (the signed `Host` header).
    public var hostHeader: String {
        let host = endpoint.host ?? ""
        if let port = endpoint.port { return "\(host):\(port)" }
        return host
    }
}

/// TLS settings of the HTTP client. Verification is on unless explicitly turned off.
public struct ECSTLSConfiguration: Sendable, Equatable {
    /// PEM file of extra trusted roots (a private cloud's CA); nil uses the system store.
    public var caBundlePath: String?
    /// Skips certificate verification. For a lab only; never the default.
    public var insecureSkipVerify: Bool

    public init(caBundlePath: String? = nil, insecureSkipVerify: Bool = false) {
        self.caBundlePath = caBundlePath
        self.insecureSkipVerify = insecureSkipVerify
    }
}
