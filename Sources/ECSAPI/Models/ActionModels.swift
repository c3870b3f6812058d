import Foundation

/// SOFT (normal) or HARD (forcible) stop and reboot.
public enum PowerActionType: String, Codable, Sendable {
    case soft = "SOFT"
    case hard = "HARD"
}

/// A batch power action of `POST /v1/{project_id}/cloudservers/action`.
public enum BatchServerAction: Sendable, Hashable {
    case start
    case stop(PowerActionType)
    case reboot(PowerActionType)

    /// The top-level key of the body (`os-start`, `os-stop`, `reboot`).
    public var bodyKey: String {
        switch self {
        case .start: return "os-start"
        case .stop: return "os-stop"
        case .reboot: return "reboot"
        }
    }

    /// The operation name used in metrics and errors.
    public var operationName: String {
        switch self {
        case .start: return "BatchStartServers"
        case .stop: return "BatchStopServers"
        case .reboot: return "BatchRebootServers"
        }
    }
}

/// `{"id": "..."}`.
struct ServerIdentifier: Codable, Sendable, Hashable {
    var id: String
}

/// The body of a batch power action.
struct BatchActionBody: Encodable, Sendable {
    var action: BatchServerAction
    var servers: [ServerIdentifier]

    struct Inner: Encodable {
        var servers: [ServerIdentifier]
        var type: PowerActionType?
    }

    struct DynamicKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: DynamicKey.self)
        let type: PowerActionType? =
            switch action {
            case .start: nil
            case .stop(let type), .reboot(let type): type
            }
        try container.encode(Inner(servers: servers, type: type), forKey: DynamicKey(stringValue: action.bodyKey))
    }
}

/// The body of `POST /v1/{project_id}/cloudservers/delete`.
struct DeleteServersBody: Encodable, Sendable {
    var servers: [ServerIdentifier]
    var deletePublicip: Bool?
    var deleteVolume: Bool?

    enum CodingKeys: String, CodingKey {
        case servers
        case deletePublicip = "delete_publicip"
        case deleteVolume = "delete_volume"
    }
}

/// What to create with `POST /v1/{project_id}/cloudservers` (pay-per-use). Only the fields the
/// demo and tests need are typed; the API accepts many more.
public struct ServerCreateRequest: Encodable, Sendable, Hashable {
    public var name: String
    public var imageRef: String
    public var flavorRef: String
    public var vpcid: String
    public var nics: [Nic]
    public var rootVolume: Volume
    public var availabilityZone: String?
    public var count: Int?
    public var serverTags: [ServerTag]?
    public var metadata: [String: String]?
    public var description: String?

    /// A NIC in the VPC's subnet.
    public struct Nic: Encodable, Sendable, Hashable {
        public var subnetId: String
        public init(subnetId: String) { self.subnetId = subnetId }
        enum CodingKeys: String, CodingKey { case subnetId = "subnet_id" }
    }

    /// The system disk.
    public struct Volume: Encodable, Sendable, Hashable {
        public var volumetype: String
        public var size: Int?
        public init(volumetype: String, size: Int? = nil) {
            self.volumetype = volumetype
            self.size = size
        }
    }

    public init(
        name: String, imageRef: String, flavorRef: String, vpcid: String, subnetId: String,
        rootVolumeType: String = "SSD", availabilityZone: String? = nil, count: Int? = nil,
        serverTags: [ServerTag]? = nil, metadata: [String: String]? = nil, description: String? = nil
    ) {
        self.name = name
        self.imageRef = imageRef
        self.flavorRef = flavorRef
        self.vpcid = vpcid
        self.nics = [Nic(subnetId: subnetId)]
        self.rootVolume = Volume(volumetype: rootVolumeType)
        self.availabilityZone = availabilityZone
        self.count = count
        self.serverTags = serverTags
        self.metadata = metadata
        self.description = description
    }

    enum CodingKeys: String, CodingKey {
        case name, imageRef, flavorRef, vpcid, nics, count, metadata, description
        case rootVolume = "root_volume"
        case availabilityZone = "availability_zone"
        case serverTags = "server_tags"
    }
}

/// `{"server": {...}, "dry_run": false}`.
struct CreateServersBody: Encodable, Sendable {
    var server: ServerCreateRequest
    var dryRun: Bool?

    enum CodingKeys: String, CodingKey {
        case server
        case dryRun = "dry_run"
    }
}

/// One entry of a server's operation history (`os-instance-actions`).
public struct InstanceAction: Decodable, Sendable, Hashable {
    public var action: String
    public var instanceUUID: String?
    /// `"Error"` when the operation failed, else usually nil.
    @BlankAsNil public var message: String?
    public var projectId: String?
    public var requestId: String
    @BlankAsNil public var startTime: String?
    public var userId: String?
    /// Present on the single-action view only.
    public var events: [InstanceActionEvent]?

    enum CodingKeys: String, CodingKey {
        case action, message, events
        case instanceUUID = "instance_uuid"
        case projectId = "project_id"
        case requestId = "request_id"
        case startTime = "start_time"
        case userId = "user_id"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        action = try c.decodeIfPresent(String.self, forKey: .action) ?? ""
        instanceUUID = try c.decodeIfPresent(String.self, forKey: .instanceUUID)
        _message = try c.decode(BlankAsNil.self, forKey: .message)
        projectId = try c.decodeIfPresent(String.self, forKey: .projectId)
        requestId = try c.decodeIfPresent(String.self, forKey: .requestId) ?? ""
        _startTime = try c.decode(BlankAsNil.self, forKey: .startTime)
        userId = try c.decodeIfPresent(String.self, forKey: .userId)
        events = try c.decodeIfPresent([InstanceActionEvent].self, forKey: .events)
    }

    /// `start_time` as a date (zone-less, read as UTC).
    public var startDate: Date? { startTime.flatMap(ECSTimestamp.parse) }
}

/// One event of an instance action.
public struct InstanceActionEvent: Decodable, Sendable, Hashable {
    public var event: String
    @BlankAsNil public var result: String?
    @BlankAsNil public var traceback: String?
    @BlankAsNil public var startTime: String?
    /// nil while the event is running.
    @BlankAsNil public var finishTime: String?

    enum CodingKeys: String, CodingKey {
        case event, result, traceback
        case startTime = "start_time"
        case finishTime = "finish_time"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        event = try c.decodeIfPresent(String.self, forKey: .event) ?? ""
        _result = try c.decode(BlankAsNil.self, forKey: .result)
        _traceback = try c.decode(BlankAsNil.self, forKey: .traceback)
        _startTime = try c.decode(BlankAsNil.self, forKey: .startTime)
        _finishTime = try c.decode(BlankAsNil.self, forKey: .finishTime)
    }
}

struct InstanceActionList: Decodable, Sendable {
    var instanceActions: [InstanceAction]
}

struct InstanceActionEnvelope: Decodable, Sendable {
    var instanceAction: InstanceAction
}
