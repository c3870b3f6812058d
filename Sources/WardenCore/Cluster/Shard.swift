import Foundation

/// The unit of ownership in cluster mode: one per project (quota, stuck, schedule, jobs) and one
/// per region (flavors). A single node owns every shard.
public struct ShardID: Hashable, Sendable, Codable, Comparable, CustomStringConvertible {
    /// `project:<project id>` or `region:<region name>`.
    public let rawValue: String

    public init(rawValue: String) { self.rawValue = rawValue }

    /// The shard of a project's work.
    public static func project(_ projectId: String) -> ShardID { ShardID(rawValue: "project:\(projectId)") }
    /// The shard of a region's work (the flavor loop).
    public static func region(_ name: String) -> ShardID { ShardID(rawValue: "region:\(name)") }

    public var description: String { rawValue }
    public static func < (a: ShardID, b: ShardID) -> Bool { a.rawValue < b.rawValue }

    public init(from decoder: any Decoder) throws { rawValue = try decoder.singleValueContainer().decode(String.self) }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// The fencing token of a journal write in cluster mode: the store accepts the write only while
/// `node` holds `shard` in term `epoch` and the lease has not expired (by the database's clock).
public struct ShardFence: Sendable, Equatable, Codable {
    public var shard: ShardID
    public var node: String
    public var epoch: Int64

    public init(shard: ShardID, node: String, epoch: Int64) {
        self.shard = shard
        self.node = node
        self.epoch = epoch
    }
}

/// Leave to make one mutating call on a shard: the fence to journal it under (nil on a single
/// node) and how long the call may take at most (nil: no deadline, a single node).
public struct ShardGrant: Sendable, Equatable {
    public var fence: ShardFence?
    /// The time left before the node must consider its lease lost, less the safety margin.
    public var remaining: Duration?

    public init(fence: ShardFence?, remaining: Duration?) {
        self.fence = fence
        self.remaining = remaining
    }

    /// A single node's grant: no fence, no deadline.
    public static let sole = ShardGrant(fence: nil, remaining: nil)
}

/// Which shards this process may work on. `SoleOwnership` (one node owns everything) is the
/// default; cluster mode's coordinator answers from its leases.
public protocol ShardOwnership: Sendable {
    /// True when the process works on `shard` now.
    func owns(_ shard: ShardID) -> Bool
    /// Leave for a mutating call on `shard` that needs `callTime`: nil when the lease cannot be
    /// proven for that long (the call must not start).
    func grant(_ shard: ShardID, needing callTime: Duration) -> ShardGrant?
    /// Runs `body` while `shard` stays owned: cancelled at once when it is lost. A mutating call
    /// (`isCall`) holds a voluntary release or a handover back until it ends; other work is
    /// cancelled by them.
    func whileOwned<T: Sendable>(_ shard: ShardID, isCall: Bool, _ body: @escaping @Sendable () async throws -> T) async throws -> T
    /// The longest a mutating call may take (nil: no bound). In cluster mode a third of the lease
    /// TTL, so that a renewal always leaves room for a call.
    var longestCall: Duration? { get }
    /// Like `grant`, but when the shard is owned and only the time left is short, waits for the
    /// next renewal (at most about one renew interval) instead of refusing.
    func awaitGrant(_ shard: ShardID, needing callTime: Duration) async -> ShardGrant?
}

extension ShardOwnership {
    /// Runs work (not a call) on `shard` while it stays owned.
    public func whileOwned<T: Sendable>(_ shard: ShardID, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await whileOwned(shard, isCall: false, body)
    }

    public var longestCall: Duration? { nil }
    public func awaitGrant(_ shard: ShardID, needing callTime: Duration) async -> ShardGrant? { grant(shard, needing: callTime) }
}

/// One node, every shard: no fences, no deadlines.
public struct SoleOwnership: ShardOwnership {
    public init() {}
    public func owns(_ shard: ShardID) -> Bool { true }
    public func grant(_ shard: ShardID, needing callTime: Duration) -> ShardGrant? { .sole }
    public func whileOwned<T: Sendable>(_ shard: ShardID, isCall: Bool, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await body()
    }
}

/// Why a shard's work stopped or a write was refused in cluster mode.
public enum ShardError: Error, Equatable, CustomStringConvertible {
    /// The store refused a journal write: the lease is held by another node, in another epoch, or expired.
    case fenced(ShardFence)
    /// The shard was lost while its work ran.
    case lost(ShardID)
    /// Too little lease time is left for the call's own timeout.
    case leaseTooShort(ShardID)

    public var description: String {
        switch self {
        case .fenced(let fence):
            return "journal write refused: \(fence.node) no longer holds \(fence.shard) in epoch \(fence.epoch)"
        case .lost(let shard): return "lease of \(shard) lost; its work is cancelled"
        case .leaseTooShort(let shard): return "lease of \(shard) cannot be proven for the call's timeout; no call made"
        }
    }
}
