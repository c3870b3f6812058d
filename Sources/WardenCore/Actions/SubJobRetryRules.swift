import Foundation

/// Which failed sub-jobs are worth another call, and after how long.
///
/// From the API reference's error-code table: `Ecs.0603` (HTTP 501) "Other commands are being
/// executed. Try again 1 minute later." names its own wait; transient server-side errors (a system
/// exception, the compute or network back end unreachable or timing out) are treated the same way.
/// `Ecs.0319` "Insufficient resources for this flavor" is a lack of capacity: worth retrying with a
/// growing wait (capacity comes back as others stop servers), and reported as such. Every other
/// code (a server in the wrong state, locked, not found, a quota or permission refusal) is
/// permanent: another call would fail the same way, or act against what a person did.
public enum SubJobRetryRules {
    /// What a failed sub-job's code means for a retry.
    public enum FailureClass: String, Sendable, Equatable {
        /// "Try again 1 minute later."
        case busy
        /// A transient server-side error.
        case transient
        /// No capacity for the flavor in the AZ now.
        case capacity
        /// Not worth another call.
        case permanent
    }

    static let busyCodes: Set<String> = ["Ecs.0603"]
    static let transientCodes: Set<String> = [
        "Common.0001",  // system exception (500)
        "Ecs.0002",  // failed to submit task (system exception)
        "Ecs.0106",  // network exception
        "Ecs.0615",  // thread list empty (500)
        "Ecs.1000",  // Nova call failed
        "Ecs.1001",  // OpenStack access error
        "Ecs.1002",  // OpenStack access timed out
    ]
    /// "Insufficient resources for this flavor."
    public static let capacityCodes: Set<String> = ["Ecs.0319"]

    public static func classify(_ code: String?) -> FailureClass {
        guard let code else { return .permanent }
        if busyCodes.contains(code) { return .busy }
        if transientCodes.contains(code) { return .transient }
        if capacityCodes.contains(code) { return .capacity }
        return .permanent
    }

    /// The wait before retry number `attempt` (1 for the first retry): a minute for a busy server
    /// or a transient error; for capacity 2, 4, 8, 16… minutes, at most 15.
    public static func wait(for failure: FailureClass, attempt: Int) -> TimeInterval? {
        switch failure {
        case .busy, .transient: return 60
        case .capacity: return min(120 * pow(2, Double(max(0, attempt - 1))), 900)
        case .permanent: return nil
        }
    }

    /// When a sub-job that failed with `code` at `failedAt` may be retried (its `attempt`-th retry),
    /// or nil when it may not.
    public static func retryAt(code: String?, failedAt: Date, attempt: Int = 1) -> Date? {
        wait(for: classify(code), attempt: attempt).map { failedAt.addingTimeInterval($0) }
    }
}
