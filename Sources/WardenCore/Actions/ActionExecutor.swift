import ECSAPI
import Foundation

/// A mutating call to make: what, on which servers, and why.
public struct ActionIntent: Sendable, Equatable {
    /// The loop asking (`schedule`, `stuck`).
    public var loop: LoopName
    public var action: ServerAction
    public var project: String
    public var servers: [String]
    /// The schedule (scheduler) or server (remedy) the call is about.
    public var subject: String
    /// The schedule boundary acted on (nil when enforcing, and for remedies).
    public var boundary: Date?
    /// For a retry of servers whose sub-jobs failed: the intent retried.
    public var retryOf: Int64?
    /// One line for the journal.
    public var description: String
    /// When the decision was taken (the pass's time).
    public var at: Date

    public init(
        loop: LoopName, action: ServerAction, project: String, servers: [String], subject: String, boundary: Date? = nil, retryOf: Int64? = nil,
        description: String, at: Date
    ) {
        self.loop = loop
        self.action = action
        self.project = project
        self.servers = servers
        self.subject = subject
        self.boundary = boundary
        self.retryOf = retryOf
        self.description = description
        self.at = at
    }
}

/// What became of a call, classified once.
public enum CallResult: Sendable, Equatable {
    /// Journaled as a dry-run entry; nothing sent.
    case dryRun(entry: Int64)
    /// The cloud accepted it with a job, which is followed to its end.
    case accepted(intent: Int64, jobId: String)
    /// A clear refusal: nothing was done; the intent is closed as `refused`.
    case refused(intent: Int64, reason: String)
    /// No answer (a timeout, a dropped connection): the call may have been carried out. The intent
    /// stays open; recovery decides.
    case noAnswer(intent: Int64, reason: String)
    /// Not sent: shutdown has begun.
    case notSent(reason: String)

    /// Servers this call may have acted on (or would have, in dry-run).
    public var mayHaveActed: Bool {
        switch self {
        case .dryRun, .accepted, .noAnswer: return true
        case .refused, .notSent: return false
        }
    }
}

/// What recovery does with an intent left without an answer.
public enum RecoveryDecision: Sendable, Equatable {
    /// Send the same request again with the same `X-Client-Token` (the cloud carries it out once).
    case resend(reason: String)
    /// Close the intent with this result and never re-send it.
    case close(ActionResult, reason: String)
}

/// The one owner of a mutating call's life: the intent journaled before the call, the call with
/// its `X-Client-Token`, the classification of what came back, the job followed to its end, the
/// per-server outcome from its sub-jobs, recovery of intents a crash left open, and the metrics.
/// Every loop that acts goes through it; no other code writes intents or outcomes.
///
/// It keeps no state of its own: the journal is the truth, so a restart continues where the last
/// process stopped.
public struct ActionExecutor: Sendable {
    let context: WardenContext

    public init(context: WardenContext) {
        self.context = context
    }

    // MARK: Calls

    /// Journals the intent, makes the call and journals its outcome. Throws only when the intent
    /// cannot be journaled — then no call is made (an unjournaled call could be made twice).
    public func perform(_ intent: ActionIntent, client: ECSClient, dryRun: Bool) async throws -> CallResult {
        let store = context.store
        if dryRun {
            let entry = try await store.append(
                JournalEntry(
                    at: intent.at, kind: .dryRun, loop: intent.loop.rawValue, project: intent.project, subject: intent.subject,
                    action: intent.action.rawValue, servers: intent.servers, message: "dry-run: would \(intent.description)", boundary: intent.boundary,
                    retryOf: intent.retryOf))
            count(intent.loop, subject: intent.subject, action: intent.action, .dryRun, intent.servers.count)
            return .dryRun(entry: entry)
        }
        guard !context.mutationGate.isClosed else { return .notSent(reason: "shutdown has begun") }
        // Cluster mode: the call starts only while this node can prove its lease of the project
        // for longer than the call's own timeout; the intent is journaled under that lease's epoch.
        let shard = ShardID.project(client.configuration.projectId)
        guard let grant = await context.ownership.awaitGrant(shard, needing: callTime(client)) else {
            return .notSent(reason: ShardError.leaseTooShort(shard).description)
        }
        let token = ECSClient.makeClientToken()
        let seq = try await store.append(
            JournalEntry(
                at: intent.at, kind: .intent, loop: intent.loop.rawValue, project: intent.project, subject: intent.subject,
                action: intent.action.rawValue, clientToken: token, servers: intent.servers, result: .pending, message: intent.description,
                boundary: intent.boundary, retryOf: intent.retryOf, fence: grant.fence))
        if intent.retryOf != nil { count(intent.loop, subject: intent.subject, action: intent.action, .retrying, 0) }
        return await send(
            intentSeq: seq, token: token, loop: intent.loop, action: intent.action, project: intent.project, subject: intent.subject,
            servers: intent.servers, client: client, grant: grant)
    }

    /// The call itself and the journal entry of its answer, while the shard stays owned: a lease
    /// lost during the call cancels it (its intent stays open for the new owner's recovery), and no
    /// attempt runs past the lease deadline.
    private func send(
        intentSeq: Int64, token: String, loop: LoopName, action: ServerAction, project: String, subject: String?, servers: [String], client: ECSClient,
        grant: ShardGrant
    ) async -> CallResult {
        let shard = ShardID.project(client.configuration.projectId)
        let notAfter = grant.remaining.map { ContinuousClock.now + $0 }
        do {
            return try await context.ownership.whileOwned(shard, isCall: true) {
                await self.sendOwned(
                    intentSeq: intentSeq, token: token, loop: loop, action: action, project: project, subject: subject, servers: servers, client: client,
                    fence: grant.fence, notAfter: notAfter)
            }
        } catch {
            return .noAnswer(intent: intentSeq, reason: "\(error)")
        }
    }

    private func sendOwned(
        intentSeq: Int64, token: String, loop: LoopName, action: ServerAction, project: String, subject: String?, servers: [String], client: ECSClient,
        fence: ShardFence?, notAfter: ContinuousClock.Instant?
    ) async -> CallResult {
        let store = context.store
        guard !context.mutationGate.isClosed else { return .notSent(reason: "shutdown has begun") }
        do {
            let accepted = try await client.batchAction(action.batchAction, serverIds: servers, clientToken: token, notAfter: notAfter)
            let now = context.clock.now()
            do {
                // The outcome and the watch of the job in one transaction: a job journaled as
                // accepted is always followed to its end.
                try await store.recordAccepted(
                    JournalEntry(
                        at: now, kind: .outcome, loop: loop.rawValue, project: project, subject: subject, action: action.rawValue, clientToken: token,
                        jobId: accepted.jobId, servers: servers, result: .accepted, message: "job \(accepted.jobId) accepted", intentSeq: intentSeq,
                        fence: fence),
                    watch: WatchedJob(project: project, jobId: accepted.jobId, jobType: nil, source: "warden", registeredAt: now, intentSeq: intentSeq))
            } catch {
                // Neither is written, so the intent stays open: recovery re-reads its servers and
                // re-sends with the same token or closes it as unknown.
                context.logger.error(
                    "job \(accepted.jobId) accepted but its outcome cannot be journaled; recovery will resolve intent \(intentSeq)",
                    metadata: ["loop": "\(loop.rawValue)", "project": "\(project)", "error": "\(error)"])
            }
            return .accepted(intent: intentSeq, jobId: accepted.jobId)
        } catch let error as ECSError where Self.isClearRefusal(error) {
            let reason = "refused: \(error)"
            do {
                try await store.append(
                    JournalEntry(
                        at: context.clock.now(), kind: .outcome, loop: loop.rawValue, project: project, subject: subject, action: action.rawValue,
                        clientToken: token, servers: servers, result: .refused, message: reason, intentSeq: intentSeq, fence: fence))
            } catch {
                context.logger.error(
                    "a refusal cannot be journaled; recovery will resolve intent \(intentSeq)",
                    metadata: ["loop": "\(loop.rawValue)", "project": "\(project)", "error": "\(error)"])
            }
            count(loop, subject: subject, action: action, .failed, servers.count)
            return .refused(intent: intentSeq, reason: reason)
        } catch {
            return .noAnswer(intent: intentSeq, reason: "\(error)")
        }
    }

    /// A refusal for sure: nothing was carried out. Answered flow control, a client-side refusal, or
    /// a 4xx on the only attempt. A 5xx (a gateway may have passed the call on), a 2xx that could not
    /// be read, no answer, or a refusal after earlier attempts that may have gone through are not:
    /// their intent stays open and recovery decides from what the servers are.
    static func isClearRefusal(_ error: ECSError) -> Bool {
        switch error.kind {
        case .transport, .timeout, .malformedResponse: return false
        case .invalidRequest: return true
        case .throttled: return error.httpStatus.map { $0 < 500 || $0 == 501 } ?? true
        case .api, .authentication:
            guard let status = error.httpStatus, (400..<500).contains(status) else { return false }
            return error.attempts <= 1
        }
    }

    // MARK: Recovery

    /// Resolves the intents of `loop` left without an answer: the daemon died between the two
    /// writes, or the call got no answer and may still be carried out late. An intent whose project
    /// or action is no longer known is closed `abandoned`; one older than `grace` is closed
    /// `expired`; the others are resent with their own token or closed as `decide` says.
    public func recoverOpenIntents(
        loop: LoopName, projects: [WardenProject], grace: TimeInterval?, now: Date,
        decide: @Sendable (JournalEntry, WardenProject, ServerAction) async throws -> RecoveryDecision
    ) async -> [PartFailure] {
        let open: [JournalEntry]
        do {
            open = try await context.store.openIntents(loop: loop.rawValue)
        } catch {
            return [PartFailure(part: "store", message: "cannot read open intents: \(error)")]
        }
        var failures: [PartFailure] = []
        let configured = Set(context.projects.map(\.name))
        for intent in open {
            // Cluster mode: another node's project is its owner's to recover, never "unknown" here.
            if let name = intent.project, configured.contains(name), !projects.contains(where: { $0.name == name }) { continue }
            do {
                guard let project = projects.first(where: { $0.name == intent.project }), let action = intent.action.flatMap(ServerAction.init(rawValue:)),
                    let token = intent.clientToken
                else {
                    try await close(intent, loop: loop, result: .abandoned, reason: "recovery: project or action no longer known; nothing sent")
                    continue
                }
                if let grace, now.timeIntervalSince(intent.at) > grace {
                    try await close(intent, loop: loop, result: .expired, reason: "recovery: intent older than the grace period; not re-sent")
                    continue
                }
                switch try await decide(intent, project, action) {
                case .resend(let reason):
                    let shard = ShardID.project(project.projectId)
                    guard let grant = await context.ownership.awaitGrant(shard, needing: callTime(project.client)) else {
                        failures.append(PartFailure(part: project.name, message: "recovering intent \(intent.seq): \(ShardError.leaseTooShort(shard))"))
                        continue
                    }
                    await context.event(
                        loop.rawValue, project: project.name, subject: intent.subject, action: "recovery-resend", severity: "warning", servers: intent.servers,
                        message: "recovery: intent \(intent.seq) has no answer; \(reason); re-sending with the same client token")
                    let result = await send(
                        intentSeq: intent.seq, token: token, loop: loop, action: action, project: project.name, subject: intent.subject,
                        servers: intent.servers, client: project.client, grant: grant)
                    if case .noAnswer(_, let reason) = result {
                        failures.append(PartFailure(part: project.name, message: "recovering intent \(intent.seq): no answer again: \(reason)"))
                    }
                case .close(let result, let reason):
                    try await close(intent, loop: loop, result: result, reason: reason)
                }
            } catch {
                failures.append(PartFailure(part: intent.project ?? "store", message: "recovering intent \(intent.seq): \(error)"))
            }
        }
        return failures
    }

    /// Closes an intent without a call: the outcome entry, an event and the metrics.
    private func close(_ intent: JournalEntry, loop: LoopName, result: ActionResult, reason: String) async throws {
        try await context.store.append(
            JournalEntry(
                at: context.clock.now(), kind: .outcome, loop: intent.loop, project: intent.project, subject: intent.subject, action: intent.action,
                clientToken: intent.clientToken, servers: intent.servers, result: result, message: reason, intentSeq: intent.seq,
                fence: try fence(forProject: intent.project)))
        if let action = intent.action.flatMap(ServerAction.init(rawValue:)) {
            count(loop, subject: intent.subject, action: action, result.isAmbiguous ? .unknown : .failed, intent.servers.count)
        }
        await context.event(
            loop.rawValue, project: intent.project, subject: intent.subject, action: "recovery-\(result.rawValue)", severity: "warning",
            servers: intent.servers, message: reason)
    }

    // MARK: Fences

    /// The time a call must be sure to have: the client's request timeout, within what the lease
    /// allows (cluster mode).
    func callTime(_ client: ECSClient) -> Duration {
        min(client.configuration.requestTimeout, context.ownership.longestCall ?? client.configuration.requestTimeout)
    }

    /// The fence an outcome of `project` is journaled under: nil on a single node (and for a
    /// project no longer configured); throws when this node does not own the project now.
    func fence(forProject name: String?) throws -> ShardFence? {
        guard let project = name.flatMap(context.project(named:)) else { return nil }
        let shard = ShardID.project(project.projectId)
        guard let grant = context.ownership.grant(shard, needing: .zero) else { throw ShardError.lost(shard) }
        return grant.fence
    }

    // MARK: Metrics

    func count(_ loop: LoopName, subject: String?, action: ServerAction, _ result: ActionMetricResult, _ servers: Int) {
        switch loop {
        case .schedule: context.metrics.recordScheduleActions(schedule: subject ?? "", action: action.rawValue, result: result, count: servers)
        default: context.metrics.recordRemediationActions(action: action.rawValue, result: result, count: servers)
        }
    }
}
