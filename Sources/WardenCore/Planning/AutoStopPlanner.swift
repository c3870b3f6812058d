import ECSAPI
import Foundation

/// The tag keys the scheduler reads.
public struct ScheduleTagKeys: Sendable, Equatable {
    /// Its value names a schedule of the configuration.
    public var schedule: String
    /// Present (any value): the server is left alone.
    public var ignore: String
    /// A UTC time such as `20261124T0800Z`: the server is left alone until then.
    public var snoozeUntil: String

    public init(schedule: String = "warden-schedule", ignore: String = "warden-ignore", snoozeUntil: String = "warden-snooze-until") {
        self.schedule = schedule
        self.ignore = ignore
        self.snoozeUntil = snoozeUntil
    }
}

/// Safety limits of the scheduler.
public struct AutoStopLimits: Sendable, Equatable {
    /// At most this many servers are stopped in one pass; the rest waits for the next pass.
    public var maxStopsPerPass: Int
    /// At most this many servers are started in one pass.
    public var maxStartsPerPass: Int
    /// Servers per batch call (the API allows 1,000).
    public var batchSize: Int
    /// A boundary missed for longer than this (daemon down) is not acted on late.
    public var boundaryGrace: TimeInterval
    /// The API reference: at most 1,000 servers can be stopped (started) per minute. Enforced per
    /// project and action over a sliding minute of the journal.
    public var perMinuteLimit: Int
    /// A server whose sub-job failed with a retryable code (`Ecs.0603`, …) is planned again this
    /// many times at most, within the boundary's grace.
    public var failedSubJobRetries: Int
    /// A server whose start failed for lack of capacity (`Ecs.0319`) is retried this many times at
    /// most, after 2, 4, 8, 16… minutes, within the boundary's grace.
    public var capacityRetries: Int
    /// How long before a start boundary the servers due to start are checked against the sale
    /// state of their flavor in their AZ (and the other reasons a start is refused).
    public var startPreflight: TimeInterval

    public init(
        maxStopsPerPass: Int = 200, maxStartsPerPass: Int = 1000, batchSize: Int = 1000, boundaryGrace: TimeInterval = 3600, perMinuteLimit: Int = 1000,
        failedSubJobRetries: Int = 1, capacityRetries: Int = 4, startPreflight: TimeInterval = 1800
    ) {
        self.maxStopsPerPass = max(0, maxStopsPerPass)
        self.maxStartsPerPass = max(0, maxStartsPerPass)
        self.batchSize = min(max(1, batchSize), 1000)
        self.boundaryGrace = boundaryGrace
        self.perMinuteLimit = min(max(1, perMinuteLimit), 1000)
        self.failedSubJobRetries = max(0, failedSubJobRetries)
        self.capacityRetries = max(0, capacityRetries)
        self.startPreflight = max(0, startPreflight)
    }
}

/// One project's servers as the planner sees them.
///
/// Made from a listing's compact reading (`init(project:reading:scheduleTag:)`), it keeps the
/// reading and the positions of the scheduled servers, and builds their `Server` values each time
/// `servers` is read: the planner and the reports read one project at a time, so a pass holds one
/// project's `Server` values at once, not those of every scheduled server of the fleet (25,000 of
/// them, ~13 MB, in a 100 x 1,000 fleet). A loop over `servers` reads it once first
/// (`let servers = project.servers`); code that reads it many times takes `materialized()`.
public struct ProjectServers: Sendable {
    public var project: String
    private var storage: Storage

    private enum Storage: Sendable {
        case servers([Server])
        case reading([CompactServer], positions: [Int])
    }

    public init(project: String, servers: [Server]) {
        self.project = project
        storage = .servers(servers)
    }

    /// The servers of `reading` that carry the schedule tag `scheduleTag`, built when read.
    public init(project: String, reading: [CompactServer], scheduleTag: String) {
        self.project = project
        storage = .reading(reading, positions: reading.indices.filter { reading[$0].tagValue(scheduleTag) != nil })
    }

    /// The servers (built from the reading at each read when made from one; setting stores them).
    public var servers: [Server] {
        get {
            switch storage {
            case .servers(let servers): return servers
            case .reading(let reading, let positions): return positions.map { reading[$0].server }
            }
        }
        set { storage = .servers(newValue) }
    }

    /// How many servers, without building them.
    public var count: Int {
        switch storage {
        case .servers(let servers): return servers.count
        case .reading(_, let positions): return positions.count
        }
    }

    /// The same servers, built once and stored (for code that reads or changes them many times).
    public func materialized() -> ProjectServers {
        ProjectServers(project: project, servers: servers)
    }
}

/// Everything the scheduler decides in a pass. Built by `AutoStopPlanner.plan`, a pure function, so
/// the control API's plan endpoint and the CLI preview show the real decision.
public struct AutoStopPlan: Sendable, Equatable {
    /// A batch call to make.
    public struct Batch: Sendable, Equatable {
        public var project: String
        public var schedule: String
        public var action: ScheduleAction
        public var serverIds: [String]
        /// The boundary acted on (nil when enforcing between boundaries).
        public var boundary: Date?
        /// Dry-run globally or for this schedule: journaled, not sent.
        public var dryRun: Bool
        /// A retry of servers whose sub-jobs failed with a retryable code in this intent.
        public var retryOf: Int64?
    }

    /// A server deliberately left alone, and why (`ignored`, `snoozed`, `unknown_schedule`,
    /// `malformed_snooze`, `busy`, `locked`, `not_actionable`, `pending_intent`, `acted_on`,
    /// `retry_wait`, `retry_exhausted`, `per_minute_budget`).
    public struct Skip: Sendable, Equatable {
        public var project: String
        public var serverId: String
        public var schedule: String?
        public var reason: String
        public var detail: String
    }

    /// A boundary fully handled in a project (the mark to store).
    public struct HandledBoundary: Sendable, Equatable {
        public var schedule: String
        public var project: String
        public var boundary: Date
        /// The boundary passed while the daemon was away longer than the grace: not acted on.
        /// (A boundary older than the grace on the first pass that sees the schedule in the project is
        /// simply recorded, not reported as missed: the daemon was not managing it.)
        public var missed: Bool
    }

    public var batches: [Batch] = []
    public var skips: [Skip] = []
    public var handled: [HandledBoundary] = []
    /// Servers per schedule and state (`running`, `stopped`, `transitioning`, `ignored`, `snoozed`, …).
    public var counts: [String: [String: Int]] = [:]
    /// Servers held back by the per-pass caps.
    public var deferred = 0
    /// Servers held back by the API's per-minute budget, until `budgetFreesAt`.
    public var waitingForBudget = 0
    /// When the per-minute budget lets the servers held back by it go.
    public var budgetFreesAt: Date?
    /// Servers in a transient task state at a boundary: the boundary stays open (within its grace)
    /// so they are acted on once the task is over, instead of being skipped for the whole period.
    public var waiting = 0
    /// When servers are waiting: when to look again (sooner right after the boundary, then less
    /// often, so a server stuck in a task for an hour does not make the loop list the fleet every
    /// few seconds).
    public var recheckAt: Date?
    /// The next boundary of any schedule.
    public var nextBoundary: Date?

    /// Servers the plan would act on.
    public var actionCount: Int { batches.reduce(0) { $0 + $1.serverIds.count } }
}

/// A stop or start call of the scheduler as the journal knows it. A server named in a call that
/// may have been carried out is never acted on again for the same boundary under a new
/// `X-Client-Token`: a late-delivered call would otherwise stop it twice, and a person who started
/// it after the stop would be fought.
public struct JournaledCall: Sendable, Equatable {
    /// What the journal says of the call.
    public typealias State = CallState

    public var project: String
    public var schedule: String
    public var action: ScheduleAction
    /// When the intent was written (the pass's time, after the boundary it acts on).
    public var at: Date
    public var servers: Set<String>
    public var state: State
    /// A dry-run entry (journaled, not sent): it holds its servers for dry-run plans only.
    public var dryRun: Bool
    /// The journal's sequence number of the intent.
    public var seq: Int64
    /// The boundary the call acted on, when the journal recorded it.
    public var boundary: Date?
    /// Servers whose sub-job failed, with the code and when a retry may go.
    public var failures: [String: ServerOutcome]
    /// The call's job has ended (its per-server outcomes are known).
    public var ended: Bool

    public init(
        project: String, schedule: String, action: ScheduleAction, at: Date, servers: Set<String>, state: State, dryRun: Bool = false, seq: Int64 = 0,
        boundary: Date? = nil, failures: [String: ServerOutcome] = [:], ended: Bool = false
    ) {
        self.project = project
        self.schedule = schedule
        self.action = action
        self.at = at
        self.servers = servers
        self.state = state
        self.dryRun = dryRun
        self.seq = seq
        self.boundary = boundary
        self.failures = failures
        self.ended = ended
    }

    /// Whether the call was made for `boundary` (older entries without one: written after it).
    func belongs(to boundary: Date) -> Bool {
        if let own = self.boundary { return own == boundary }
        return at >= boundary
    }
}

/// The pure decision code of tag-based auto-stop/start.
public enum AutoStopPlanner {
    /// Decides a pass.
    ///
    /// - Parameters:
    ///   - projects: every project's servers, freshly read.
    ///   - schedules: the configured schedules by name.
    ///   - handledBoundaries: the last boundary handled per (schedule, project).
    ///   - snoozes: stored snoozes in force (project → server ids).
    ///   - dryRun: global dry-run.
    ///   - calls: the scheduler's journaled calls of the last grace period.
    public static func plan(
        projects: [ProjectServers],
        schedules: [String: Schedule],
        tags: ScheduleTagKeys,
        limits: AutoStopLimits,
        handledBoundaries: [ScheduleMarkKey: Date],
        snoozes: [String: Set<String>],
        dryRun: Bool,
        now: Date,
        calls: [JournaledCall] = []
    ) -> AutoStopPlan {
        var plan = AutoStopPlan()
        var inFlight: [String: Set<String>] = [:]
        for call in calls where call.state == .open && !call.dryRun { inFlight[call.project, default: []].formUnion(call.servers) }
        let evaluators = schedules.mapValues { ScheduleEvaluator(schedule: $0) }
        plan.nextBoundary = evaluators.values.compactMap { $0.nextBoundary(after: now)?.date }.min()
        var wanted: [Wanted] = []
        for project in projects.sorted(by: { $0.project < $1.project }) {
            var bySchedule: [String: [Server]] = [:]
            // A listing may repeat a server (within a page, or a page served twice): one entry each.
            var listed = Set<String>()
            // In id order (sorting positions: a server is a few hundred bytes to move).
            let servers = project.servers
            for index in servers.indices.sorted(by: { servers[$0].id < servers[$1].id }) {
                let server = servers[index]
                guard listed.insert(server.id).inserted else { continue }
                guard let scheduleName = server.tagValue(tags.schedule) else { continue }
                if server.tagValue(tags.ignore) != nil {
                    plan.skip(project.project, server, scheduleName, "ignored", "carries \(tags.ignore)")
                    continue
                }
                if let snoozeText = server.tagValue(tags.snoozeUntil) {
                    guard let until = parseSnooze(snoozeText) else {
                        plan.skip(project.project, server, scheduleName, "malformed_snooze", "\(tags.snoozeUntil)=\(snoozeText) is not like 20261124T0800Z")
                        continue
                    }
                    if until > now {
                        plan.skip(project.project, server, scheduleName, "snoozed", "snoozed until \(snoozeText)")
                        continue
                    }
                }
                if snoozes[project.project]?.contains(server.id) == true {
                    plan.skip(project.project, server, scheduleName, "snoozed", "snoozed through the control API")
                    continue
                }
                guard schedules[scheduleName] != nil else {
                    plan.skip(project.project, server, scheduleName, "unknown_schedule", "no schedule named '\(scheduleName)' is configured")
                    continue
                }
                bySchedule[scheduleName, default: []].append(server)
                plan.counts[scheduleName, default: [:]][stateLabel(server), default: 0] += 1
            }
            for (name, servers) in bySchedule.sorted(by: { $0.key < $1.key }) {
                guard let schedule = schedules[name], let evaluator = evaluators[name] else { continue }
                let key = ScheduleMarkKey(schedule: name, project: project.project)
                let scheduleDryRun = dryRun || schedule.dryRun
                let scheduleCalls = calls.filter { $0.dryRun == scheduleDryRun && $0.project == project.project && $0.schedule == name }
                let action: ScheduleAction
                let boundary: Date?
                switch decide(schedule: schedule, evaluator: evaluator, handled: handledBoundaries[key], limits: limits, now: now) {
                case .nothing:
                    // The boundary is handled; servers whose sub-jobs failed with a retryable code may
                    // still be due for their retry within its grace.
                    guard let last = evaluator.lastBoundary(atOrBefore: now), now.timeIntervalSince(last.date) <= limits.boundaryGrace,
                        allowed(last.action, schedule)
                    else { continue }
                    let retryItems = planRetries(
                        servers, project: project.project, schedule: name, action: last.action, boundary: last.date, calls: scheduleCalls,
                        inFlight: inFlight[project.project] ?? [], limits: limits, now: now, reportHeld: false, plan: &plan)
                    wanted += retryItems
                    continue
                case .missed(let missed):
                    plan.handled.append(.init(schedule: name, project: project.project, boundary: missed, missed: handledBoundaries[key] != nil))
                    continue
                case .act(let decided, let decidedBoundary):
                    action = decided
                    boundary = decidedBoundary
                }
                let actedOn = serversAlreadyActedOn(
                    scheduleCalls, project: project.project, schedule: name, action: action, boundary: boundary, grace: limits.boundaryGrace, now: now)
                var ids: [String] = []
                var busy = 0
                var retryCandidates: [Server] = []
                for server in servers {
                    // A call for this server may still be in flight (an intent without outcome):
                    // only its own resend, with the same token, may act on it.
                    if inFlight[project.project]?.contains(server.id) == true {
                        plan.skip(project.project, server, name, "pending_intent", "an earlier call for it has no answer yet", counted: true)
                        busy += 1
                        continue
                    }
                    let reason = blocker(server, for: action)
                    if actedOn.contains(server.id) {
                        // Stopping (busy) or stopped by that call: nothing to wait for or report,
                        // unless its sub-job failed (then its retry is decided below).
                        retryCandidates.append(server)
                        continue
                    }
                    if let reason {
                        if reason != "already" {
                            plan.skip(project.project, server, name, reason, "\(server.status.rawValue)/\(server.taskState ?? "-")", counted: true)
                        }
                        if reason == "busy" { busy += 1 }
                        continue
                    }
                    ids.append(server.id)
                }
                wanted.append(Wanted(project: project.project, schedule: name, action: action, boundary: boundary, ids: ids, busy: busy, retryOf: nil))
                if let boundary {
                    wanted += planRetries(
                        retryCandidates, project: project.project, schedule: name, action: action, boundary: boundary, calls: scheduleCalls,
                        inFlight: [], limits: limits, now: now, plan: &plan)
                } else {
                    for server in retryCandidates where blocker(server, for: action) == nil {
                        plan.skip(
                            project.project, server, name, "acted_on", "a \(action.rawValue) call that may have been carried out already named it", counted: true)
                    }
                }
                if busy > 0, let boundary {
                    let recheck = now.addingTimeInterval(waitingRecheckDelay(sinceBoundary: now.timeIntervalSince(boundary)))
                    plan.recheckAt = min(plan.recheckAt ?? recheck, recheck)
                }
            }
        }
        // Caps, then batches. A boundary is handled only when none of its servers was held back.
        var stopBudget = limits.maxStopsPerPass
        var startBudget = limits.maxStartsPerPass
        var minuteBudget = PerMinuteBudget(calls: calls, limit: limits.perMinuteLimit, now: now)
        for item in wanted {
            var ids = item.ids
            let budget = item.action == .stop ? stopBudget : startBudget
            if ids.count > budget {
                plan.deferred += ids.count - budget
                ids = Array(ids.prefix(budget))
            }
            let scheduleDryRun = dryRun || (schedules[item.schedule]?.dryRun ?? false)
            let allowed = minuteBudget.take(ids.count, project: item.project, action: item.action, dryRun: scheduleDryRun)
            if allowed < ids.count {
                let frees = minuteBudget.freesAt(project: item.project, action: item.action, dryRun: scheduleDryRun)
                for id in ids[allowed...] {
                    plan.skips.append(
                        .init(
                            project: item.project, serverId: id, schedule: item.schedule, reason: "per_minute_budget",
                            detail: "the API allows \(limits.perMinuteLimit) \(item.action.rawValue)s per minute; waits until \(frees.map { ISO8601DateFormatter().string(from: $0) } ?? "the next minute")"))
                }
                plan.waitingForBudget += ids.count - allowed
                if let frees {
                    plan.budgetFreesAt = min(plan.budgetFreesAt ?? frees, frees)
                    plan.recheckAt = min(plan.recheckAt ?? frees, frees)
                }
                ids = Array(ids.prefix(allowed))
            }
            if item.action == .stop { stopBudget -= ids.count } else { startBudget -= ids.count }
            for start in stride(from: 0, to: ids.count, by: limits.batchSize) {
                plan.batches.append(
                    .init(
                        project: item.project, schedule: item.schedule, action: item.action,
                        serverIds: Array(ids[start..<min(start + limits.batchSize, ids.count)]), boundary: item.boundary, dryRun: scheduleDryRun,
                        retryOf: item.retryOf))
            }
            if item.boundary != nil { plan.waiting += item.busy }
            if item.retryOf == nil, ids.count == item.ids.count, item.busy == 0, let boundary = item.boundary {
                plan.handled.append(.init(schedule: item.schedule, project: item.project, boundary: boundary, missed: false))
            }
        }
        return plan
    }

    /// Servers (of one schedule, boundary and action) wanted by the plan.
    struct Wanted {
        var project: String
        var schedule: String
        var action: ScheduleAction
        var boundary: Date?
        var ids: [String]
        var busy: Int
        var retryOf: Int64?
    }

    /// Servers a call that may have been carried out already named, for this boundary: any call but
    /// a refused one written since the boundary. Enforcing (no boundary) re-acts by design, so only
    /// calls closed without knowing their fate hold servers back there, for the grace period.
    static func serversAlreadyActedOn(
        _ calls: [JournaledCall], project: String, schedule: String, action: ScheduleAction, boundary: Date?, grace: TimeInterval, now: Date
    ) -> Set<String> {
        var servers = Set<String>()
        for call in calls where call.project == project && call.schedule == schedule && call.action == action {
            if let boundary {
                if call.belongs(to: boundary) && call.state != .refused { servers.formUnion(call.servers) }
            } else if now.timeIntervalSince(call.at) <= grace, call.state == .ambiguous || (call.state == .accepted && !call.ended && !call.dryRun) {
                // Enforcing: a call that may have been carried out, or whose job is still running
                // (a server it names may not have moved yet), holds its servers.
                servers.formUnion(call.servers)
            }
        }
        return servers
    }

    /// How long to wait before looking again at servers busy at a boundary: a quarter of the time
    /// since the boundary, between 10 s and 5 min.
    static func waitingRecheckDelay(sinceBoundary elapsed: TimeInterval) -> TimeInterval {
        min(max(elapsed / 4, 10), 300)
    }

    /// What a schedule asks for in a project now.
    enum Decision: Equatable {
        case nothing
        case act(ScheduleAction, boundary: Date?)
        case missed(Date)
    }

    static func decide(schedule: Schedule, evaluator: ScheduleEvaluator, handled: Date?, limits: AutoStopLimits, now: Date) -> Decision {
        switch schedule.manualPolicy {
        case .enforce:
            switch evaluator.desiredState(at: now) {
            case .running: return allowed(.start, schedule) ? .act(.start, boundary: nil) : .nothing
            case .stopped: return allowed(.stop, schedule) ? .act(.stop, boundary: nil) : .nothing
            case .undefined: break
            }
            fallthrough
        case .boundariesOnly:
            guard let last = evaluator.lastBoundary(atOrBefore: now) else { return .nothing }
            if let handled, handled >= last.date { return .nothing }
            if now.timeIntervalSince(last.date) > limits.boundaryGrace { return .missed(last.date) }
            return allowed(last.action, schedule) ? .act(last.action, boundary: last.date) : .nothing
        }
    }

    static func allowed(_ action: ScheduleAction, _ schedule: Schedule) -> Bool {
        switch schedule.mode {
        case .stopAndStart: return true
        case .stopOnly: return action == .stop
        case .startOnly: return action == .start
        }
    }

    /// Why a server cannot take `action` now; `already` when it is in the target state.
    public static func blocker(_ server: Server, for action: ScheduleAction) -> String? {
        if server.taskState != nil { return "busy" }
        if server.locked == true { return "locked" }
        switch (action, server.status) {
        case (.stop, .active), (.start, .shutoff): return nil
        case (.stop, .shutoff), (.start, .active): return "already"
        default: return "not_actionable"
        }
    }

    static func stateLabel(_ server: Server) -> String {
        if server.taskState != nil || server.status.isTransitional { return "transitioning" }
        switch server.status {
        case .active: return "running"
        case .shutoff: return "stopped"
        default: return server.status.rawValue.lowercased()
        }
    }

    /// Parses `20261124T0800Z` (or with seconds, `20261124T080000Z`) as UTC.
    public static func parseSnooze(_ text: String) -> Date? {
        let parts = Array(text.utf8)
        guard parts.count == 14 || parts.count == 16, parts[8] == UInt8(ascii: "T"), parts.last == UInt8(ascii: "Z") else { return nil }
        let digits = parts.enumerated().filter { $0.offset != 8 && $0.offset != parts.count - 1 }.map(\.element)
        guard digits.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        func number(_ range: Range<Int>) -> Int { digits[range].reduce(0) { $0 * 10 + Int($1 - 48) } }
        var components = DateComponents()
        components.year = number(0..<4)
        components.month = number(4..<6)
        components.day = number(6..<8)
        components.hour = number(8..<10)
        components.minute = number(10..<12)
        components.second = digits.count == 14 ? number(12..<14) : 0
        guard let month = components.month, (1...12).contains(month), let day = components.day, (1...31).contains(day),
            let hour = components.hour, hour < 24, let minute = components.minute, minute < 60
        else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? calendar.timeZone
        guard let date = calendar.date(from: components), calendar.component(.day, from: date) == day else { return nil }
        return date
    }
}

/// (schedule, project): the key of a handled-boundary mark.
public struct ScheduleMarkKey: Sendable, Hashable {
    public var schedule: String
    public var project: String

    public init(schedule: String, project: String) {
        self.schedule = schedule
        self.project = project
    }
}

extension AutoStopPlan {
    /// Records a server left alone. `counted`: the server is already counted under its state in
    /// `counts` (skips decided while acting), so it is not counted a second time under the reason.
    mutating func skip(_ project: String, _ server: Server, _ schedule: String?, _ reason: String, _ detail: String, counted: Bool = false) {
        skips.append(.init(project: project, serverId: server.id, schedule: schedule, reason: reason, detail: detail))
        if let schedule, !counted { counts[schedule, default: [:]][reason, default: 0] += 1 }
    }
}
