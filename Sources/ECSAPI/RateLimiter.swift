import Foundation

/// A token bucket: requests wait for a token so a big fleet never trips the API's flow control.
///
/// Shared by every client that talks to the same endpoint (see `EndpointRateLimiters`).
public actor TokenBucket {
    public let limit: RateLimit
    private var tokens: Double
    private var lastRefill: ContinuousClock.Instant
    private let clock = ContinuousClock()

    public init(_ limit: RateLimit) {
        self.limit = limit
        self.tokens = Double(limit.burst)
        self.lastRefill = clock.now
    }

    /// Waits until a token is free and takes it. Throws only when the task is cancelled.
    public func acquire() async throws {
        while true {
            refill()
            if tokens >= 1 {
                tokens -= 1
                return
            }
            let missing = 1 - tokens
            let wait = Duration.seconds(missing / limit.requestsPerSecond)
            // Reserve nothing while sleeping: whoever wakes first and finds a token takes it.
            try await Task.sleep(for: wait)
        }
    }

    /// Tokens available now (for tests and status).
    public func available() -> Double {
        refill()
        return tokens
    }

    private func refill() {
        let now = clock.now
        let elapsed = now - lastRefill
        lastRefill = now
        tokens = min(Double(limit.burst), tokens + elapsed.inSeconds * limit.requestsPerSecond)
    }
}

/// One token bucket per endpoint host, so clients of many projects on one endpoint share it.
public actor EndpointRateLimiters {
    private var buckets: [String: TokenBucket] = [:]
    private let limitForHost: @Sendable (String) -> RateLimit

    /// Creates the registry; `limitForHost` gives each endpoint host its limit.
    public init(limitForHost: @escaping @Sendable (String) -> RateLimit = { _ in .default }) {
        self.limitForHost = limitForHost
    }

    /// The bucket of `host`, created on first use.
    public func bucket(for host: String) -> TokenBucket {
        if let bucket = buckets[host] { return bucket }
        let bucket = TokenBucket(limitForHost(host))
        buckets[host] = bucket
        return bucket
    }
}

extension Duration {
    /// The duration in seconds, as a `Double`.
    public var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
