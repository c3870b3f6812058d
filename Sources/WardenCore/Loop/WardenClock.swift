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
