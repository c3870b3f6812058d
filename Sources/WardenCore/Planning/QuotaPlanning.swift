import Foundation

/// A quota threshold level.
public enum QuotaLevel: String, Sendable, Codable, Comparable {
    case ok, warning, critical

    private var rank: Int {
        switch self {
        case .ok: return 0
        case .warning: return 1
        case .critical: return 2
        }
    }

    public static func < (lhs: QuotaLevel, rhs: QuotaLevel) -> Bool { lhs.rank < rhs.rank }
}

/// Warn and critical ratios.
public struct QuotaThresholds: Sendable, Equatable, Codable {
    public var warning: Double
    public var critical: Double

    public init(warning: Double = 0.8, critical: Double = 0.95) {
        self.warning = warning
        self.critical = critical
    }

    /// The level of a usage ratio (nil ratio = unlimited = ok).
    public func level(for ratio: Double?) -> QuotaLevel {
        guard let ratio else { return .ok }
        if ratio >= critical { return .critical }
        if ratio >= warning { return .warning }
        return .ok
    }
}

/// A linear time-to-exhaustion forecast from quota history. Pure.
public enum QuotaForecaster {
    /// Seconds until `limit` is reached at the least-squares rate of `samples`, or nil when there is
    /// no limit, too little history (fewer than 3 samples or under `minimumSpan` seconds), or usage
    /// is not growing. 0 when already at or over the limit.
    public static func secondsToExhaustion(samples: [(at: Date, used: Int)], limit: Int?, minimumSpan: TimeInterval = 600) -> Double? {
        guard let limit, let last = samples.last else { return nil }
        if last.used >= limit { return 0 }
        guard samples.count >= 3, let first = samples.first, last.at.timeIntervalSince(first.at) >= minimumSpan else { return nil }
        let origin = first.at.timeIntervalSince1970
        let xs = samples.map { $0.at.timeIntervalSince1970 - origin }
        let ys = samples.map { Double($0.used) }
        let n = Double(samples.count)
        let meanX = xs.reduce(0, +) / n
        let meanY = ys.reduce(0, +) / n
        var covariance = 0.0
        var variance = 0.0
        for (x, y) in zip(xs, ys) {
            covariance += (x - meanX) * (y - meanY)
            variance += (x - meanX) * (x - meanX)
        }
        guard variance > 0 else { return nil }
        let slope = covariance / variance
        guard slope > 0 else { return nil }
        // Project from the fitted value at the last sample, so noise in one sample does not jump the ETA.
        let fittedNow = meanY + slope * (xs[xs.count - 1] - meanX)
        return max(0, (Double(limit) - fittedNow) / slope)
    }
}
