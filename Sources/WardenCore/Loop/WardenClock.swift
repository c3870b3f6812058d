import Foundation
import Synchronization

/// The wall clock the loops read and sleep on. Injected, so tests drive time.
public protocol WardenClock: Sendable {
    /// The current time.
    func now() -> Date
    /// Sleeps until `deadline` (or returns at once if it passed). Throws `CancellationError` when
    /// the task is cancelled.
    func sleep(until deadline: Date) async throws
}

/// The system clock.
public struct SystemClock: WardenClock {
    public init() {}

    public func now() -> Date { Date() }

    public func sleep(until deadline: Date) async throws {
        let interval = deadline.timeIntervalSinceNow
        // Rounded up: waking a hair early would run a schedule pass just before its boundary.
        if interval > 0 { try await Task.sleep(for: .nanoseconds(Int64((interval * 1e9).rounded(.up)) + 1000)) }
    }
}

/// A clock that ends every sleep with `CancellationError` once a `MutationGate` closes.
///
/// The reconcilers read and sleep on the context's clock; a pass that waits inside itself (the
/// schedule loop waiting for a boundary it has read ahead) must not wake up after shutdown began
/// and act. Giving the context this clock makes such a wait end the moment the gate closes, so the
/// pass ends without acting and the process can exit promptly. Reading the time is unchanged.
public struct ShutdownInterruptedClock: WardenClock {
    /// The clock that tells the time and sleeps.
    public let base: any WardenClock
    /// The gate whose closing ends every sleep.
    public let gate: MutationGate

    /// Wraps `base`; sleeps end early when `gate` closes.
    public init(base: any WardenClock, gate: MutationGate) {
        self.base = base
        self.gate = gate
    }

    public func now() -> Date { base.now() }

    /// Sleeps on the base clock until `deadline`; throws `CancellationError` when the task is
    /// cancelled or the gate closes first (also when it is already closed).
    public func sleep(until deadline: Date) async throws {
        if gate.isClosed { throw CancellationError() }
        let base = self.base
        let gate = self.gate
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await base.sleep(until: deadline)
                return true
            }
            group.addTask {
                await gate.waitUntilClosed()
                return false
            }
            let slept = try await group.next() ?? false
            group.cancelAll()
            if !slept || gate.isClosed { throw CancellationError() }
        }
    }
}

/// A clock that moves only when a test advances it. Sleepers whose deadline is reached wake up.
public final class ManualClock: WardenClock {
    private struct Sleeper {
        var deadline: Date
        var continuation: CheckedContinuation<Void, any Error>
    }

    private let state: Mutex<(now: Date, sleepers: [UUID: Sleeper])>

    /// Starts at `start`.
    public init(start: Date = Date(timeIntervalSince1970: 1_790_000_000)) {
        state = Mutex((start, [:]))
    }

    public func now() -> Date { state.withLock { $0.now } }

    /// How many tasks sleep on this clock (tests wait for a loop to go to sleep).
    public var sleeperCount: Int { state.withLock { $0.sleepers.count } }

    /// The earliest deadline a sleeper waits for.
    public var nextDeadline: Date? { state.withLock { $0.sleepers.values.map(\.deadline).min() } }

    public func sleep(until deadline: Date) async throws {
        let id = UUID()
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let resumeNow: Bool = state.withLock { state in
                    if deadline <= state.now || Task.isCancelled { return true }
                    state.sleepers[id] = Sleeper(deadline: deadline, continuation: continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let sleeper = state.withLock { $0.sleepers.removeValue(forKey: id) }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
        try Task.checkCancellation()
    }

    /// Moves time forward and wakes every sleeper whose deadline is reached.
    public func advance(by seconds: TimeInterval) {
        let due: [Sleeper] = state.withLock { state in
            state.now = state.now.addingTimeInterval(seconds)
            let now = state.now
            let ready = state.sleepers.filter { $0.value.deadline <= now }
            for key in ready.keys { state.sleepers.removeValue(forKey: key) }
            return Array(ready.values)
        }
        for sleeper in due { sleeper.continuation.resume() }
    }

    /// Sets the time (forward only) and wakes due sleepers.
    public func set(_ date: Date) {
        let delta = date.timeIntervalSince(now())
        advance(by: max(0, delta))
    }
}
