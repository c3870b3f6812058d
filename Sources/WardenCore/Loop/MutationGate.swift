import Synchronization

/// Once shutdown has begun no new mutating call starts.
///
/// The daemon closes the gate at the very beginning of a graceful shutdown (SIGTERM, or the end of
/// the demo), before any loop is asked to stop. Whatever would make a mutating ECS call (stop,
/// start, reboot, a remediation) checks `isClosed` first and, when closed, makes no call. Calls
/// already in flight are not interrupted by the gate: they get the bounded grace of the shutdown.
/// Closing is one-way and idempotent.
public final class MutationGate: Sendable {
    private let state = Mutex<(closed: Bool, waiters: [UInt64: CheckedContinuation<Void, Never>], nextWaiter: UInt64)>((false, [:], 0))

    /// An open gate.
    public init() {}

    /// Closes the gate: from now on no new mutating call starts. Wakes `waitUntilClosed()`.
    public func close() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard !state.closed else { return [] }
            state.closed = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// True once shutdown has begun: make no new mutating call.
    public var isClosed: Bool { state.withLock { $0.closed } }

    /// Returns once the gate is closed, or at once when the calling task is cancelled (check
    /// `isClosed` to tell which).
    public func waitUntilClosed() async {
        let id = state.withLock { state -> UInt64 in
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.closed || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume()
        }
    }
}
