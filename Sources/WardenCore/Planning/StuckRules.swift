import ECSAPI
import Foundation

/// When a server or a job counts as stuck. Pure.
public struct StuckRules: Sendable, Equatable {
    /// Thresholds by status (upper case), in seconds.
    public var statusThresholds: [String: TimeInterval]
    /// Thresholds by task_state, checked before the status (catches `powering-off` behind ACTIVE).
    public var taskStateThresholds: [String: TimeInterval]
    /// Job deadlines by job type; `defaultJobDeadline` for the others.
    public var jobDeadlines: [String: TimeInterval]
    public var defaultJobDeadline: TimeInterval
    /// Opt-in remediation per task_state: e.g. `powering-off` → a HARD stop after the threshold.
    public var remediations: [String: Remediation]

    /// What to do about a stuck server, when the operator opts in.
    public enum Remediation: String, Sendable, Codable, Equatable {
        case hardStop = "hard-stop"
        case hardReboot = "hard-reboot"
    }

    public init(
        statusThresholds: [String: TimeInterval] = StuckRules.defaultStatusThresholds,
        taskStateThresholds: [String: TimeInterval] = StuckRules.defaultTaskStateThresholds,
        jobDeadlines: [String: TimeInterval] = [:], defaultJobDeadline: TimeInterval = 30 * 60,
        remediations: [String: Remediation] = [:]
    ) {
        self.statusThresholds = statusThresholds
        self.taskStateThresholds = taskStateThresholds
        self.jobDeadlines = jobDeadlines
        self.defaultJobDeadline = defaultJobDeadline
        self.remediations = remediations
    }

    public static let defaultStatusThresholds: [String: TimeInterval] = [
        "BUILD": 30 * 60, "REBOOT": 15 * 60, "HARD_REBOOT": 15 * 60, "RESIZE": 60 * 60, "MIGRATING": 60 * 60, "REBUILD": 60 * 60,
        "REVERT_RESIZE": 60 * 60, "VERIFY_RESIZE": 24 * 3600,
    ]

    public static let defaultTaskStateThresholds: [String: TimeInterval] = [
        "powering-off": 15 * 60, "powering-on": 15 * 60, "deleting": 15 * 60,
    ]

    /// The threshold that applies to a (status, task_state) pair; nil when the pair is not watched.
    public func threshold(status: String, taskState: String?) -> TimeInterval? {
        if let taskState, let threshold = taskStateThresholds[taskState] { return threshold }
        return statusThresholds[status.uppercased()]
    }

    /// The deadline of a job type.
    public func deadline(jobType: String?) -> TimeInterval {
        jobType.flatMap { jobDeadlines[$0] } ?? defaultJobDeadline
    }

    /// A watched server state and how long it has lasted.
    public struct ServerFinding: Sendable, Equatable {
        public var serverId: String
        public var name: String
        public var status: String
        public var taskState: String?
        public var since: Date
        public var age: TimeInterval
        public var threshold: TimeInterval
        public var stuck: Bool { age > threshold }
    }

    /// How long the server has been in its pair: from the earlier of the first time the daemon saw
    /// it and `updated` (which a restart cannot reset but unrelated edits can move forward).
    public func evaluate(_ server: Server, firstSeen: Date, now: Date) -> ServerFinding? {
        let status = server.status.rawValue
        guard let threshold = threshold(status: status, taskState: server.taskState) else { return nil }
        let since = min(firstSeen, server.updatedAt ?? firstSeen)
        return ServerFinding(
            serverId: server.id, name: server.name, status: status, taskState: server.taskState, since: since,
            age: max(0, now.timeIntervalSince(since)), threshold: threshold)
    }

    /// True when the server is in a pair the rules watch, or unhealthy (`ServerHealth`).
    public func watches(_ server: Server) -> Bool {
        threshold(status: server.status.rawValue, taskState: server.taskState) != nil || !ServerHealth.problems(of: server).isEmpty
    }
}
