import Foundation

/// One process taking part in the cluster under a node's name (`cluster.node`). Two live processes
/// configured with the same name are a mistake the heartbeat row shows: each beat records its
/// writer, so a process that finds another writer between two of its own beats knows it shares
/// its name, and the one that started later stands by.
struct NodeInstance: Sendable, Equatable {
    /// Random, new for each process.
    var id: String
    /// For people: the process id and the host.
    var label: String
    /// When the process first beat, by the database's clock (seconds since 1970); nil until then.
    var startedAt: Double?

    /// This process.
    static func current() -> NodeInstance {
        NodeInstance(id: UUID().uuidString, label: "pid \(ProcessInfo.processInfo.processIdentifier) on \(ProcessInfo.processInfo.hostName)", startedAt: nil)
    }

    /// Whether both are the same process.
    func isSameProcess(as other: NodeInstance) -> Bool { id == other.id }

    /// Whether this process started after `other` (the later one stands by); equal start times are
    /// ordered by id, so both processes come to the same answer.
    func startedAfter(_ other: NodeInstance) -> Bool {
        let mine = startedAt ?? .infinity
        let theirs = other.startedAt ?? .infinity
        return mine == theirs ? id > other.id : mine > theirs
    }

    /// The label and, when known, the start time (for log lines and readiness).
    var description: String {
        guard let startedAt else { return label }
        return "\(label), started \(Date(timeIntervalSince1970: startedAt).formatted(.iso8601))"
    }
}

/// What a beat tells about the node's name: the row's writer before the beat, against this
/// process. Only a write by another process between two of this process's own beats proves a
/// second live process; a first beat (a new process, a restart within the TTL, a return from
/// standing by) finds an old write and proves nothing.
enum NodeNameCheck: Sendable, Equatable {
    /// Nothing shows another live process.
    case alone
    /// Another live process uses the name and started later: it stands by, this one goes on.
    case sharedWithLater(NodeInstance)
    /// Another live process uses the name and started first: this one stands by.
    case sharedWithEarlier(NodeInstance)

    /// - Parameters:
    ///   - previous: the row's writer before this beat.
    ///   - wroteLast: whether this process's last beat was its own successful write.
    ///   - me: this process, with the start time of its first beat.
    static func after(beatReplacing previous: NodeInstance?, wroteLast: Bool, me: NodeInstance) -> NodeNameCheck {
        guard wroteLast, let previous, !previous.isSameProcess(as: me) else { return .alone }
        return me.startedAfter(previous) ? .sharedWithEarlier(previous) : .sharedWithLater(previous)
    }
}

/// A process standing by watches the heartbeat of the process it yields to, and takes part again
/// once that process left, or once no other live process has beaten under the name for a whole
/// `patience` (the lease TTL). Waiting a TTL of staleness rather than one stale look keeps a
/// PostgreSQL outage, which makes every heartbeat stale for a while, from bringing it back.
struct StandbyWatch: Sendable, Equatable {
    /// The process beating under the name, as last seen.
    var other: NodeInstance
    /// Since when every look found no other live process beating.
    var quietSince: ContinuousClock.Instant?

    init(yieldingTo other: NodeInstance) {
        self.other = other
    }

    /// One look at the heartbeat row: its writer, whether that heartbeat is live (younger than the
    /// TTL, not left) and whether it left. Returns whether this process takes part again.
    mutating func look(writer: NodeInstance?, live: Bool, left: Bool, me: NodeInstance, at now: ContinuousClock.Instant, patience: Duration) -> Bool {
        let foreign = writer.map { !$0.isSameProcess(as: me) } ?? false
        if foreign, let writer {
            if live {
                other = writer
                quietSince = nil
                return false
            }
            if left { return true }
        }
        let since = quietSince ?? now
        quietSince = since
        return now - since >= patience
    }
}
