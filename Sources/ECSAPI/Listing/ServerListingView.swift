/// The fields of a server the reconcile loops read — what `ServerListingDecoder` fills — as one
/// comparable value: the fast listing path and the full decoder must give equal views of the same
/// page, which the agreement tests check.
public struct ServerListingView: Sendable, Hashable, CustomStringConvertible {
    public var id: String
    public var name: String
    public var status: String
    public var taskState: String?
    public var vmState: String?
    public var availabilityZone: String?
    public var updated: String?
    public var flavor: ServerFlavorReference?
    public var tags: [String]?
    public var locked: Bool?
    public var hostStatus: String?
    public var fault: ServerFault?

    /// The listed fields of `server`.
    public init(_ server: Server) {
        id = server.id
        name = server.name
        status = server.status.rawValue
        taskState = server.taskState
        vmState = server.vmState
        availabilityZone = server.availabilityZone
        updated = server.updated
        flavor = server.flavor
        tags = server.tags
        locked = server.locked
        hostStatus = server.hostStatus
        fault = server.fault
    }

    public var description: String {
        "\(id) \(name.debugDescription) \(status) task=\(taskState ?? "nil") vm=\(vmState ?? "nil") az=\(availabilityZone ?? "nil") "
            + "updated=\(updated ?? "nil") flavor=\(flavor.map { "\($0)" } ?? "nil") tags=\(tags.map { "\($0)" } ?? "nil") "
            + "locked=\(locked.map { "\($0)" } ?? "nil") host=\(hostStatus ?? "nil") fault=\(fault.map { "\($0)" } ?? "nil")"
    }
}
