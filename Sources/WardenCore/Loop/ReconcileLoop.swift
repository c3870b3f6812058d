import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// When a loop runs.
public struct LoopTiming: Sendable, Equatable {
    /// Seconds between passes.
    public var interval: TimeInterval
    /// Up to this fraction of the interval is added at random, so many daemons do not align.
    public var jitter: Double
    /// A pass running longer than this makes the loop not alive.
    public var deadline: TimeInterval
    /// The longest wait after repeated failures (backoff doubles from the interval's tenth).
    public var maxBackoff: TimeInterval
    /// The wait before the next pass when a pass reports more work (cap hit).
    public var moreWorkDelay: TimeInterval
    /// Runs one last pass on graceful shutdown (only for loops whose pass is safe to run then).
    public var finalPassOnShutdown: Bool

    public init(
        interval: TimeInterval, jitter: Double = 0.1, deadline: TimeInterval? = nil, maxBackoff: TimeInterval = 600,
        moreWorkDelay: TimeInterval = 5, finalPassOnShutdown: Bool = false
    ) {
        self.interval = max(0.01, interval)
        self.jitter = min(max(jitter, 0), 1)
        self.deadline = deadline ?? max(60, interval * 3)
        self.maxBackoff = maxBackoff
        self.moreWorkDelay = moreWorkDelay
        self.finalPassOnShutdown = finalPassOnShutdown
    }

    /// The delay before the next pass, from how the last one ended. Pure.
    ///
    /// A wake-up the reconciler asked for is honoured even when it passed while the pass ran (then
    /// the next pass runs at once); one that was already past when the pass started is stale and
    /// ignored, so it can never spin the loop.
    public func delay(after outcome: PassOutcome, consecutiveFailures: Int, now: Date, random: Double, passStarted: Date? = nil) -> TimeInterval {
        switch outcome {
        case .failure:
            let exponent = Double(min(max(consecutiveFailures - 1, 0), 20))
            let base = min(maxBackoff, max(interval / 10, 1) * pow(2, exponent))
            return min(maxBackoff, max(base, 1) * (0.5 + random / 2))
        case .success(let report), .partial(let report):
            var delay = interval * (1 + jitter * random)
            if report.moreWork { delay = min(delay, moreWorkDelay) }
            if let wake = report.wakeAt {
                if wake > now {
                    delay = min(delay, wake.timeIntervalSince(now))
                } else if let passStarted, wake > passStarted {
                    delay = 0
                }
            }
            return delay
        }
    }
}

/// A service that runs one reconciler's passes: interval with jitter, backoff on errors, a wake-up
/// for the reconciler's own deadlines (schedule boundaries), "run now", pause and resume. A failing
/// pass never ends the loop: it is counted, reported and retried later.
public final class ReconcileLoop: Service, Sendable {
    public let reconciler: any Reconciler
    public let timing: LoopTiming
    let clock: any WardenClock
    let supervisor: Supervisor
    let metrics: WardenMetrics?
    let logger: Logger
    private let trigger = LoopTrigger()
    private let state = Mutex<(paused: Bool, consecutiveFailures: Int, lastPassStarted: Date?)>((false, 0, nil))
    /// Serialises passes: "run now" and the timer never overlap.
    private let passLock = PassLock()

    /// The loop's name (the reconciler's).
    public var name: String { reconciler.name }

    public init(reconciler: any Reconciler, timing: LoopTiming, clock: any WardenClock, supervisor: Supervisor, metrics: WardenMetrics? = nil, logger: Logger) {
        self.reconciler = reconciler
        self.timing = timing
        self.clock = clock
        self.supervisor = supervisor
        self.metrics = metrics
        self.logger = logger
    }

    public func run() async throws {
        await supervisor.register(name, interval: timing.interval, deadline: timing.deadline)
        await supervisor.loopStarted(name)
        await withGracefulShutdownHandler {
            await loop()
        } onGracefulShutdown: {
            self.trigger.shutDown()
        }
        if timing.finalPassOnShutdown && !Task.isCancelled {
            _ = await runPass()
        }
        await supervisor.loopStopped(name)
    }

    private func loop() async {
        while !Task.isCancelled && !trigger.isShutDown {
            if state.withLock({ $0.paused }) || trigger.isQuiesced {
                await trigger.wait(until: nil, clock: clock)
                continue
            }
            let outcome = await runPass()
            let (failures, passStarted) = state.withLock { ($0.consecutiveFailures, $0.lastPassStarted) }
            let now = clock.now()
            let delay = timing.delay(
                after: outcome, consecutiveFailures: failures, now: now, random: Double.random(in: 0...1), passStarted: passStarted)
            let next = now.addingTimeInterval(delay)
            await supervisor.scheduled(name, next: next)
            await trigger.wait(until: next, clock: clock)
            await supervisor.woke(name)
        }
    }

    /// Shutdown has begun: the loop starts no new pass (a pass in progress finishes) and waits for
    /// its own graceful shutdown. Used before the loops are stopped one by one.
    public func stopStartingPasses() { trigger.quiesce() }

    /// Runs one pass now (also used by `--once` and tests) and records its outcome.
    @discardableResult
    public func runPass() async -> PassOutcome {
        await passLock.run {
            // Registering is idempotent; it lets `--once` and tests run passes without `run()`.
            await supervisor.register(name, interval: timing.interval, deadline: timing.deadline)
            let started = clock.now()
            state.withLock { $0.lastPassStarted = started }
            await supervisor.passStarted(name, at: started)
            let outcome: PassOutcome
            var interrupted = false
            do {
                outcome = .classify(try await reconciler.reconcile(now: started))
            } catch is CancellationError {
                // Shutdown ended a wait inside the pass (or cancelled it): the pass did not finish.
                interrupted = true
                outcome = .failure("interrupted by shutdown")
            } catch {
                outcome = .failure(String(describing: error))
            }
            let finished = clock.now()
            state.withLock { state in
                if case .failure = outcome { state.consecutiveFailures += 1 } else { state.consecutiveFailures = 0 }
            }
            await supervisor.passFinished(name, outcome: outcome, started: started, finished: finished)
            metrics?.recordPass(loop: name, outcome: outcome, duration: finished.timeIntervalSince(started), finishedAt: finished)
            switch outcome {
            case .success(let report):
                logger.debug("pass done", metadata: ["loop": "\(name)", "summary": "\(report.summary)"])
            case .partial(let report):
                logger.warning(
                    "pass partly failed",
                    metadata: ["loop": "\(name)", "summary": "\(report.summary)", "failures": "\(report.failures.map { "\($0.part): \($0.message)" })"])
            case .failure(let message) where interrupted:
                logger.info("pass interrupted by shutdown", metadata: ["loop": "\(name)", "error": "\(message)"])
            case .failure(let message):
                logger.error("pass failed", metadata: ["loop": "\(name)", "error": "\(message)"])
            }
            return outcome
        }
    }

    /// Pulls the next pass forward to now.
    public func runNow() { trigger.kick() }

    /// Stops running passes until `resume()`.
    public func pause() async {
        state.withLock { $0.paused = true }
        reconciler.loopPaused(true)
        await supervisor.setPaused(name, true)
    }

    /// Resumes after `pause()`, with a pass right away.
    public func resume() async {
        state.withLock { $0.paused = false }
        reconciler.loopPaused(false)
        await supervisor.setPaused(name, false)
        trigger.kick()
    }

    /// Whether the loop is paused.
    public var isPaused: Bool { state.withLock { $0.paused } }
}

/// Runs closures one at a time.
actor PassLock {
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func run<T: Sendable>(_ body: @Sendable () async -> T) async -> T {
        while busy {
            await withCheckedContinuation { waiters.append($0) }
        }
        busy = true
        defer {
            busy = false
            if !waiters.isEmpty { waiters.removeFirst().resume() }
        }
        return await body()
    }
}

/// Wakes a sleeping loop early ("run now", resume, shutdown). A kick that arrives while the loop
/// is busy is remembered, so it is never lost.
public final class LoopTrigger: Sendable {
    public init() {}
    private let state = Mutex<(kicked: Bool, shutDown: Bool, quiesced: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, false, false, nil))

    public var isShutDown: Bool { state.withLock { $0.shutDown } }

    /// No new pass may start (shutdown has begun), though the loop has not been told to end yet.
    var isQuiesced: Bool { state.withLock { $0.quiesced } }

    /// Stops new passes and wakes a sleeping loop so it notices.
    func quiesce() {
        state.withLock { $0.quiesced = true }
        kick()
    }

    public func kick() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.kicked = true
            return nil
        }
        waiter?.resume()
    }

    public func shutDown() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.shutDown = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// Returns at `deadline` (nil: never), at a kick, at shutdown or on cancellation.
    public func wait(until deadline: Date?, clock: any WardenClock) async {
        await withTaskGroup(of: Void.self) { group in
            if let deadline {
                group.addTask { try? await clock.sleep(until: deadline) }
            }
            group.addTask { await self.waitForKick() }
            await group.next()
            group.cancelAll()
        }
    }

    private func waitForKick() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.kicked || state.shutDown || Task.isCancelled {
                        state.kicked = false
                        return true
                    }
                    state.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume()
        }
    }
}
