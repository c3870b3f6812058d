import ECSAPI
import Foundation

/// A mutating call the daemon makes on servers.
public enum ServerAction: String, Sendable, Codable, CaseIterable {
    /// A soft stop (the scheduler).
    case stop
    /// A start (the scheduler).
    case start
    /// A forced stop (a stuck-server remedy).
    case hardStop = "hard-stop"
    /// A forced reboot (a stuck-server remedy).
    case hardReboot = "hard-reboot"

    /// The batch call that carries it out.
    public var batchAction: BatchServerAction {
        switch self {
        case .stop: return .stop(.soft)
        case .start: return .start
        case .hardStop: return .stop(.hard)
        case .hardReboot: return .reboot(.hard)
        }
    }
}

extension ServerAction {
    /// The call a schedule's action makes.
    public init(_ action: ScheduleAction) {
        self = action == .stop ? .stop : .start
    }
}

/// The `result` of a journal entry: a closed set, checked by the store (an unknown value is refused
/// on write by a CHECK constraint and on read by decoding).
public enum ActionResult: String, Sendable, Codable, CaseIterable {
    /// An intent: written before the call, answered by an outcome entry.
    case pending
    /// The cloud answered with a job; its end is followed.
    case accepted
    /// A clear refusal: nothing was done.
    case refused
    /// Closed without knowing whether the cloud carried the call out: never re-sent.
    case unknown
    /// Closed at recovery: its project or action is no longer configured; nothing re-sent.
    case abandoned
    /// Closed at recovery: older than the grace period; not re-sent.
    case expired
    /// The job ended and every server's sub-job succeeded.
    case success
    /// The job ended and no server's sub-job succeeded.
    case failed
    /// The job ended with some servers' sub-jobs failed.
    case partial

    /// Results that close an intent without knowing whether the call was carried out.
    public var isAmbiguous: Bool { self == .unknown || self == .abandoned || self == .expired }
    /// Results of a call the cloud accepted.
    public var isAccepted: Bool { self == .accepted || self == .success || self == .failed || self == .partial }
}

/// What the journal says of a call, from its outcomes.
public enum CallState: String, Sendable, Codable {
    /// The intent has no outcome yet: the call may still be in flight; only its own resend (same
    /// token) may act on its servers.
    case open
    /// The cloud answered with a job.
    case accepted
    /// A clear refusal: nothing was done.
    case refused
    /// Closed without knowing whether the cloud carried it out.
    case ambiguous

    /// The state of an intent from the results of its outcomes.
    public init(outcomes: [ActionResult]) {
        let closing = outcomes.filter { $0 != .pending }
        if closing.isEmpty {
            self = .open
        } else if closing.contains(.refused) {
            self = .refused
        } else if closing.contains(where: \.isAccepted) {
            self = .accepted
        } else {
            self = .ambiguous
        }
    }
}

/// How one server's sub-job of a finished job ended.
public struct ServerOutcome: Sendable, Equatable, Codable {
    public enum Result: String, Sendable, Codable {
        case success, failed
    }

    /// The intent whose job this was.
    public var intentSeq: Int64
    public var serverId: String
    public var result: Result
    /// The sub-job's error code (`Ecs.0603`, …) when it failed.
    public var errorCode: String?
    /// For a failure worth retrying: not before this time. Nil: permanent (or success).
    public var retryAt: Date?
    public var at: Date

    public init(intentSeq: Int64, serverId: String, result: Result, errorCode: String? = nil, retryAt: Date? = nil, at: Date) {
        self.intentSeq = intentSeq
        self.serverId = serverId
        self.result = result
        self.errorCode = errorCode
        self.retryAt = retryAt
        self.at = at
    }
}

/// A journaled call with everything the journal knows of it.
public struct RecordedCall: Sendable, Equatable {
    public var intent: JournalEntry
    public var state: CallState
    /// Per-server results of its job, once it ended.
    public var serverOutcomes: [String: ServerOutcome]

    public init(intent: JournalEntry, state: CallState, serverOutcomes: [String: ServerOutcome] = [:]) {
        self.intent = intent
        self.state = state
        self.serverOutcomes = serverOutcomes
    }
}

/// The `result` label of `ecs_warden_schedule_actions_total` and
/// `ecs_warden_remediation_actions_total`: a closed set, counted per server.
public enum ActionMetricResult: String, Sendable, CaseIterable {
    /// The server's sub-job succeeded.
    case success
    /// Refused, or the sub-job failed for good (or after its retries): the server was not brought
    /// to the wanted state.
    case failed
    /// The sub-job failed with a code worth retrying; the server is planned again after the code's wait.
    case retrying
    /// The sub-job failed for lack of capacity for the flavor (`Ecs.0319`); retried with a growing
    /// wait within the boundary's grace.
    case capacity
    /// The call got no answer and its servers changed meanwhile: it may have been carried out.
    case unknown
    /// Journaled in dry-run, not sent.
    case dryRun = "dry_run"
}
