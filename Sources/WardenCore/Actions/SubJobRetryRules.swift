import Foundation

/// Which failed sub-jobs are worth another call, and after how long.
///
/// From the API reference's error-code table: `Ecs.0603` (HTTP 501) "Other commands are being
/// executed. Try again 1 minute later." names its own wait; transient server-side errors (a system
/// exception, the compute or network back end unreachable or timing out) are treated the same way.
/// Every other code (a server in the wrong state, locked, not found, a quota or permission refusal)
/// is permanent: another call would fail the same way, or act against what a person did.
public enum SubJobRetryRules {
    /// Codes retried, with the wait before the retry.
    public static let waits: [String: TimeInterval] = [
        "Ecs.0603": 60,  // "Try again 1 minute later."
        "Common.0001": 60,  // system exception (500)
        "Ecs.0002": 60,  // failed to submit task (system exception)
        "Ecs.0106": 60,  // network exception
        "Ecs.0615": 60,  // thread list empty (500)
        "Ecs.1000": 60,  // Nova call failed
        "Ecs.1001": 60,  // OpenStack access error
        "Ecs.1002": 60,  // OpenStack access timed out
    ]

    /// When a sub-job that failed with `code` at `failedAt` may be retried, or nil when it may not.
    public static func retryAt(code: String?, failedAt: Date) -> Date? {
        guard let code, let wait = waits[code] else { return nil }
        return failedAt.addingTimeInterval(wait)
    }
}
