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
        return "\(label), started \(ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: startedAt)))"
    }
}
