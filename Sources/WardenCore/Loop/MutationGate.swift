import Synchronization

/// Once shutdown has begun no new mutating call starts: the action executor checks the gate
/// before every call.
public final class MutationGate: Sendable {
    private let closed = Atomic<Bool>(false)

    public init() {}

    /// Closes the gate for good (shutdown has begun).
    public func close() { closed.store(true, ordering: .sequentiallyConsistent) }

    /// True once shutdown has begun.
    public var isClosed: Bool { closed.load(ordering: .sequentiallyConsistent) }
}
