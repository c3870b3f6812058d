import Foundation

/// Knows every loop's health: last success, last error, duration, whether a pass is running and
/// for how long. A loop is not alive when a pass runs past its deadline, or when its next pass is
/// overdue by more than its deadline (its timer never fired, or it is stuck between passes); that
/// withholds the systemd watchdog so a hung daemon gets restarted. A paused loop stays alive.
public actor Supervisor {
    /// One loop's state as the status API and health checks see it.
    public struct LoopStatus: Sendable, Equatable {
        public var name: String
        public var interval: TimeInterval
        public var deadline: TimeInterval
        public var paused = false
        public var passStartedAt: Date?
        public var lastSuccess: Date?
        public var lastFinished: Date?
        public var lastResult: String?
        public var lastError: String?
        public var lastSummary: String?
        public var lastDuration: TimeInterval?
        public var consecutiveFailures = 0
        public var passes = 0
        public var failures = 0
        /// When the loop's timer is due: set while the loop sleeps until its next pass, nil while
        /// it runs a pass of its own or waits for resume.
        public var nextPassAt: Date?
        /// The loop's task ended (it is no longer running passes).
        public var stopped = false
        /// Computed by `statuses(at:)`.
        public var alive = true
    }

    private var loops: [String: LoopStatus] = [:]
    private let clock: any WardenClock

    public init(clock: any WardenClock) {
        self.clock = clock
    }

    func register(_ name: String, interval: TimeInterval, deadline: TimeInterval) {
        if loops[name] == nil {
            loops[name] = LoopStatus(name: name, interval: interval, deadline: deadline)
        }
    }

    func loopStarted(_ name: String) {
        loops[name]?.stopped = false
    }

    func passStarted(_ name: String, at time: Date) {
        loops[name]?.passStartedAt = time
    }

    func passFinished(_ name: String, outcome: PassOutcome, started: Date, finished: Date) {
        guard var status = loops[name] else { return }
        status.passStartedAt = nil
        status.lastFinished = finished
        status.lastDuration = finished.timeIntervalSince(started)
        status.passes += 1
        status.lastResult = outcome.resultLabel
        switch outcome {
        case .success(let report):
            status.lastSuccess = finished
            status.lastSummary = report.summary
            status.consecutiveFailures = 0
            status.lastError = nil
        case .partial(let report):
            // The parts that worked are fresh; the loop still counts as succeeding.
            status.lastSuccess = finished
            status.lastSummary = report.summary
            status.consecutiveFailures = 0
            status.lastError = report.failures.map { "\($0.part): \($0.message)" }.joined(separator: "; ")
        case .failure(let message):
            status.failures += 1
            status.consecutiveFailures += 1
            status.lastError = message
        }
        loops[name] = status
    }

    func scheduled(_ name: String, next: Date) {
        loops[name]?.nextPassAt = next
    }

    /// The loop's wait ended (timer, run-now, resume or shutdown): no pass is due any more.
    func woke(_ name: String) {
        loops[name]?.nextPassAt = nil
    }

    func setPaused(_ name: String, _ paused: Bool) {
        loops[name]?.paused = paused
    }

    func loopStopped(_ name: String) {
        loops[name]?.stopped = true
        loops[name]?.passStartedAt = nil
    }

    /// Every loop's status, with `alive` computed at `now`.
    public func statuses(at now: Date? = nil) -> [LoopStatus] {
        let time = now ?? clock.now()
        return loops.values.sorted { $0.name < $1.name }.map { status in
            var copy = status
            copy.alive = Self.isAlive(status, at: time)
            return copy
        }
    }

    /// One loop's status.
    public func status(of name: String) -> LoopStatus? {
        statuses().first { $0.name == name }
    }

    /// True when every registered loop is alive (the systemd watchdog condition).
    public func allAlive(at now: Date? = nil) -> Bool {
        let time = now ?? clock.now()
        return !loops.isEmpty && loops.values.allSatisfy { Self.isAlive($0, at: time) }
    }

    /// True when every loop has completed a pass recently (readiness): within three intervals plus
    /// its deadline. Paused loops count as ready.
    public func allReady(at now: Date? = nil) -> Bool {
        let time = now ?? clock.now()
        return !loops.isEmpty && loops.values.allSatisfy { status in
            if status.paused { return true }
            guard let success = status.lastSuccess else { return false }
            return time.timeIntervalSince(success) <= 3 * status.interval + status.deadline
        }
    }

    /// A one-line summary for `STATUS=` and logs.
    public func summaryLine(at now: Date? = nil) -> String {
        let all = statuses(at: now)
        let failing = all.filter { $0.consecutiveFailures > 0 }.map(\.name)
        let hung = all.filter { !$0.alive }.map(\.name)
        var line = "\(all.count - failing.count)/\(all.count) loops ok"
        if !failing.isEmpty { line += "; failing: \(failing.joined(separator: ", "))" }
        if !hung.isEmpty { line += "; not alive: \(hung.joined(separator: ", "))" }
        return line
    }

    static func isAlive(_ status: LoopStatus, at now: Date) -> Bool {
        if status.stopped { return false }
        if let started = status.passStartedAt, now.timeIntervalSince(started) > status.deadline { return false }
        if !status.paused, let due = status.nextPassAt, now.timeIntervalSince(due) > status.deadline { return false }
        return true
    }
}
