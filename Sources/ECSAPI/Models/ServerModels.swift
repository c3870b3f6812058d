import Foundation

/// An ECS status (seed Appendix A.1 plus the Nova-only values). Unknown values are kept.
public enum ServerStatus: OpenEnum {
    case active, build, reboot, hardReboot, rebuild, migrating, resize, shutoff, revertResize
    case verifyResize, error, deleted, shelved, shelvedOffloaded, unknown, paused, suspended, softDeleted
    /// A value this client does not know, kept verbatim.
    case other(String)

    public init(rawValue: String) {
        switch rawValue.uppercased() {
        case "ACTIVE": self = .active
        case "BUILD": self = .build
        case "REBOOT": self = .reboot
        case "HARD_REBOOT": self = .hardReboot
        case "REBUILD": self = .rebuild
        case "MIGRATING": self = .migrating
        case "RESIZE": self = .resize
        case "SHUTOFF": self = .shutoff
        case "REVERT_RESIZE": self = .revertResize
        case "VERIFY_RESIZE": self = .verifyResize
        case "ERROR": self = .error
        case "DELETED": self = .deleted
        case "SHELVED": self = .shelved
        case "SHELVED_OFFLOADED": self = .shelvedOffloaded
        case "UNKNOWN": self = .unknown
        case "PAUSED": self = .paused
        case "SUSPENDED": self = .suspended
        case "SOFT_DELETED": self = .softDeleted
        default: self = .other(rawValue)
        }
    }

    // A switch, not a table lookup: `==` on a RawRepresentable compares raw values, so computing
    // the raw value with `==` would recurse.
    public var rawValue: String {
        switch self {
        case .active: return "ACTIVE"
        case .build: return "BUILD"
        case .reboot: return "REBOOT"
        case .hardReboot: return "HARD_REBOOT"
        case .rebuild: return "REBUILD"
        case .migrating: return "MIGRATING"
        case .resize: return "RESIZE"
        case .shutoff: return "SHUTOFF"
        case .revertResize: return "REVERT_RESIZE"
        case .verifyResize: return "VERIFY_RESIZE"
        case .error: return "ERROR"
        case .deleted: return "DELETED"
        case .shelved: return "SHELVED"
        case .shelvedOffloaded: return "SHELVED_OFFLOADED"
        case .unknown: return "UNKNOWN"
        case .paused: return "PAUSED"
        case .suspended: return "SUSPENDED"
        case .softDeleted: return "SOFT_DELETED"
        case .other(let raw): return raw
        }
    }

    /// True for the statuses that name an operation in progress (BUILD, REBOOT, RESIZE, …).
    public var isTransitional: Bool {
        switch self {
        case .build, .reboot, .hardReboot, .rebuild, .migrating, .resize, .revertResize: return true
        default: return false
        }
    }
}

/// A 2D tag (key and value) as the ECS tag APIs use it.
public struct ServerTag: Codable, Sendable, Hashable {
    public var key: String
    public var value: String

    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }

    enum CodingKeys: String, CodingKey { case key, value }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        key = try container.decode(String.self, forKey: .key)
        value = try container.decodeIfPresent(String.self, forKey: .value) ?? ""
    }

    /// Parses the Nova rendering of a 2D tag: `key=value`, or `key` for an empty value.
    public init(novaString: String) {
        if let equals = novaString.firstIndex(of: "=") {
            key = String(novaString[..<equals])
            value = String(novaString[novaString.index(after: equals)...])
        } else {
            key = novaString
            value = ""
        }
    }
}

/// A `{rel, href}` link.
public struct Link: Codable, Sendable, Hashable {
    public var rel: String?
    public var href: String?
}

/// The flavor embedded in a server: `{id, links}` before microversion 2.47, the full form after,
/// and the v1 form `{id, name, vcpus, ram, disk}` (all strings).
public struct ServerFlavorReference: Codable, Sendable, Hashable {
    /// The flavor id (`id`, or `original_name` at ≥2.47).
    public var id: String?
    public var name: String?
    @LenientOptionalInt public var vcpus: Int?
    @LenientOptionalInt public var ram: Int?
    @LenientOptionalInt public var disk: Int?

    enum CodingKeys: String, CodingKey { case id, name, vcpus, ram, disk, originalName = "original_name" }

    public init(id: String?, name: String? = nil, vcpus: Int? = nil, ram: Int? = nil, disk: Int? = nil) {
        self.id = id
        self.name = name
        self.vcpus = vcpus
        self.ram = ram
        self.disk = disk
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let originalName = try container.decodeIfPresent(String.self, forKey: .originalName)
        id = try container.decodeIfPresent(String.self, forKey: .id) ?? originalName
        name = try container.decodeIfPresent(String.self, forKey: .name) ?? originalName
        _vcpus = try container.decode(LenientOptionalInt.self, forKey: .vcpus)
        _ram = try container.decode(LenientOptionalInt.self, forKey: .ram)
        _disk = try container.decode(LenientOptionalInt.self, forKey: .disk)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeIfPresent(id, forKey: .id)
        try container.encodeIfPresent(name, forKey: .name)
        try container.encodeIfPresent(vcpus, forKey: .vcpus)
        try container.encodeIfPresent(ram, forKey: .ram)
        try container.encodeIfPresent(disk, forKey: .disk)
    }
}

/// The `fault` object of a server in ERROR.
public struct ServerFault: Codable, Sendable, Hashable {
    @LenientOptionalInt public var code: Int?
    public var created: String?
    public var message: String?
    public var details: String?

    /// Creates a fault value.
    public init(code: Int? = nil, created: String? = nil, message: String? = nil, details: String? = nil) {
        self.code = code
        self.created = created
        self.message = message
        self.details = details
    }
}

/// One server as the daemon needs it, decoded from Nova `servers/detail` / `servers/{id}` and from
/// v1 `cloudservers/detail` / `cloudservers/{id}` (which share the `OS-EXT-*` field names).
///
/// Only the fields the loops read are typed; everything else in the answer is ignored, so a new
/// field never breaks a pass.
public struct Server: Codable, Sendable, Hashable, Identifiable {
    public var id: String
    public var name: String
    /// Derived by the API from `vmState` and `taskState` (seed table A-4).
    public var status: ServerStatus
    /// `OS-EXT-STS:task_state`; `null` and `""` both read as nil.
    @BlankAsNil public var taskState: String?
    /// `OS-EXT-STS:vm_state`, lower-cased.
    @BlankAsNil public var vmState: String?
    /// `OS-EXT-STS:power_state` (the daemon does not rely on it: its numbering differs by source).
    @LenientOptionalInt public var powerState: Int?
    /// `OS-EXT-AZ:availability_zone`.
    @BlankAsNil public var availabilityZone: String?
    @BlankAsNil public var created: String?
    @BlankAsNil public var updated: String?
    public var flavor: ServerFlavorReference?
    /// Nova 1D tags; 2D tags appear as `key=value` (microversion ≥2.26 or v1 details).
    public var tags: [String]?
    @LenientOptionalBool public var locked: Bool?
    @BlankAsNil public var tenantId: String?
    @BlankAsNil public var userId: String?
    @BlankAsNil public var description: String?
    @BlankAsNil public var hostStatus: String?
    @LenientStringMap public var metadata: [String: String]
    public var fault: ServerFault?
    /// v1 only: the enterprise project.
    @BlankAsNil public var enterpriseProjectId: String?

    enum CodingKeys: String, CodingKey {
        case id, name, status, flavor, tags, locked, metadata, fault, description, created, updated
        case taskState = "OS-EXT-STS:task_state"
        case vmState = "OS-EXT-STS:vm_state"
        case powerState = "OS-EXT-STS:power_state"
        case availabilityZone = "OS-EXT-AZ:availability_zone"
        case tenantId = "tenant_id"
        case userId = "user_id"
        case hostStatus = "host_status"
        case enterpriseProjectId = "enterprise_project_id"
    }

    /// Creates a server value (tests and the demo build them by hand).
    public init(
        id: String, name: String, status: ServerStatus, taskState: String? = nil, vmState: String? = nil,
        availabilityZone: String? = nil, updated: String? = nil, flavor: ServerFlavorReference? = nil,
        tags: [String]? = nil, locked: Bool? = nil, metadata: [String: String] = [:]
    ) {
        self.id = id
        self.name = name
        self.status = status
        self.taskState = taskState
        self.vmState = vmState
        self.availabilityZone = availabilityZone
        self.updated = updated
        self.flavor = flavor
        self.tags = tags
        self.locked = locked
        self.metadata = metadata
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        name = try c.decodeIfPresent(String.self, forKey: .name) ?? ""
        status = ServerStatus(rawValue: ((try? c.decodeIfPresent(String.self, forKey: .status)) ?? nil) ?? "")
        _taskState = try c.decode(BlankAsNil.self, forKey: .taskState)
        _vmState = BlankAsNil(wrappedValue: try c.decode(BlankAsNil.self, forKey: .vmState).wrappedValue?.lowercased())
        _powerState = try c.decode(LenientOptionalInt.self, forKey: .powerState)
        _availabilityZone = try c.decode(BlankAsNil.self, forKey: .availabilityZone)
        _created = try c.decode(BlankAsNil.self, forKey: .created)
        _updated = try c.decode(BlankAsNil.self, forKey: .updated)
        flavor = try? c.decodeIfPresent(ServerFlavorReference.self, forKey: .flavor)
        tags = try? c.decodeIfPresent([String].self, forKey: .tags)
        _locked = try c.decode(LenientOptionalBool.self, forKey: .locked)
        _tenantId = try c.decode(BlankAsNil.self, forKey: .tenantId)
        _userId = try c.decode(BlankAsNil.self, forKey: .userId)
        _description = try c.decode(BlankAsNil.self, forKey: .description)
        _hostStatus = try c.decode(BlankAsNil.self, forKey: .hostStatus)
        _metadata = (try? c.decode(LenientStringMap.self, forKey: .metadata)) ?? LenientStringMap(wrappedValue: [:])
        fault = try? c.decodeIfPresent(ServerFault.self, forKey: .fault)
        _enterpriseProjectId = try c.decode(BlankAsNil.self, forKey: .enterpriseProjectId)
    }

    /// The 2D tags parsed from `tags` (`key=value` strings).
    public var tagPairs: [ServerTag] { (tags ?? []).map(ServerTag.init(novaString:)) }

    /// The value of the 2D tag `key`, if the server carries it (the first tag with that key).
    ///
    /// The listing loops ask this of every server of the fleet: ASCII tags (nearly all) are matched
    /// on their bytes without building `tagPairs`; others are parsed as `tagPairs` parses them.
    public func tagValue(_ key: String) -> String? {
        Self.tagValue(key, in: tags)
    }

    /// `tagValue(_:)` of a server whose `tags` are `tags`.
    public static func tagValue(_ key: String, in tags: [String]?) -> String? {
        guard let tags else { return nil }
        var key = key
        let keyIsASCII = key.withUTF8 { $0.allSatisfy { $0 < 0x80 } }
        for var tag in tags {
            let match: ServerTag?? = keyIsASCII ? asciiTag(&tag, matching: key) : nil
            switch match {
            case .some(.some(let pair)): return pair.value
            case .some(.none): continue
            case .none:
                let pair = ServerTag(novaString: tag)
                if pair.key == key { return pair.value }
            }
        }
        return nil
    }

    /// For an ASCII tag: the pair when its key is `key`, nil when it is another key; for another
    /// tag, `.none` (compare it as a parsed pair).
    private static func asciiTag(_ tag: inout String, matching key: String) -> ServerTag?? {
        let keyCount = key.utf8.count
        return tag.withUTF8 { bytes -> ServerTag?? in
            guard bytes.allSatisfy({ $0 < 0x80 }) else { return .none }
            guard bytes.count >= keyCount, bytes.count == keyCount || bytes[keyCount] == UInt8(ascii: "="),
                bytes.prefix(keyCount).elementsEqual(key.utf8), !bytes.prefix(keyCount).contains(UInt8(ascii: "="))
            else { return .some(nil) }
            let value = bytes.count == keyCount ? "" : String(decoding: UnsafeBufferPointer(rebasing: bytes[(keyCount + 1)...]), as: UTF8.self)
            return .some(ServerTag(key: key, value: value))
        }
    }

    /// `updated` as a date.
    public var updatedAt: Date? { updated.flatMap(ECSTimestamp.parse) }
}

/// `GET /v2.1/{project_id}/servers/detail` (and the v1 `cloudservers/detail` page).
public struct ServerDetailPage: Decodable, Sendable {
    public var servers: [Server]
    /// Nova: link to the next page (`rel: next`), absent on the last page.
    public var serversLinks: [Link]?
    /// v1: the total number of servers matching the query.
    @LenientOptionalInt public var count: Int?

    enum CodingKeys: String, CodingKey {
        case servers, count
        case serversLinks = "servers_links"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        // Required: a 200 without it is a broken answer, never "no servers" (which would report stuck
        // servers recovered and forget their first-seen times).
        servers = try c.decode([Server].self, forKey: .servers)
        serversLinks = try? c.decodeIfPresent([Link].self, forKey: .serversLinks)
        _count = try c.decode(LenientOptionalInt.self, forKey: .count)
    }

    /// True when the Nova answer links a next page.
    var hasNextLink: Bool { serversLinks?.contains { $0.rel == "next" } ?? false }
}

/// `{"server": {...}}`.
struct ServerEnvelope: Decodable, Sendable {
    var server: Server
}

/// Filters of a server-detail query. Every field is optional.
public struct ServerQuery: Sendable, Hashable {
    /// Exact status (`ACTIVE`, `SHUTOFF`, …).
    public var status: String?
    /// Name, fuzzy-matched by the API.
    public var name: String?
    /// Flavor id.
    public var flavor: String?
    /// Nova: servers having all these tags (`key=value` strings, comma-joined on the wire).
    public var tags: [String]
    /// Nova: servers having none of these tags.
    public var notTags: [String]
    /// Nova: only servers changed since this time.
    public var changesSince: Date?

    public init(status: String? = nil, name: String? = nil, flavor: String? = nil, tags: [String] = [], notTags: [String] = [], changesSince: Date? = nil) {
        self.status = status
        self.name = name
        self.flavor = flavor
        self.tags = tags
        self.notTags = notTags
        self.changesSince = changesSince
    }
}
