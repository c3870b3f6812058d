import Foundation

/// A flavor from `GET /v1/{project_id}/cloudservers/flavors` with its `os_extra_specs`.
public struct Flavor: Codable, Sendable, Hashable, Identifiable {
    public var id: String
    public var name: String
    /// Documented as a String on v1 (`"8"`), an Integer on Nova.
    @LenientOptionalInt public var vcpus: Int?
    /// Memory in MB.
    @LenientOptionalInt public var ram: Int?
    @LenientOptionalInt public var disk: Int?
    @LenientOptionalBool public var isPublic: Bool?
    @LenientOptionalBool public var disabled: Bool?
    /// Extended specs, including `cond:operation:status` and `cond:operation:az`.
    @LenientStringMap public var extraSpecs: [String: String]

    enum CodingKeys: String, CodingKey {
        case id, name, vcpus, ram, disk
        case isPublic = "os-flavor-access:is_public"
        case disabled = "OS-FLV-DISABLED:disabled"
        case extraSpecs = "os_extra_specs"
    }

    public init(id: String, name: String, vcpus: Int? = nil, ram: Int? = nil, extraSpecs: [String: String] = [:]) {
        self.id = id
        self.name = name
        self.vcpus = vcpus
        self.ram = ram
        self.extraSpecs = extraSpecs
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        name = try c.decodeIfPresent(String.self, forKey: .name) ?? id
        _vcpus = try c.decode(LenientOptionalInt.self, forKey: .vcpus)
        _ram = try c.decode(LenientOptionalInt.self, forKey: .ram)
        _disk = try c.decode(LenientOptionalInt.self, forKey: .disk)
        _isPublic = try c.decode(LenientOptionalBool.self, forKey: .isPublic)
        _disabled = try c.decode(LenientOptionalBool.self, forKey: .disabled)
        _extraSpecs = (try? c.decode(LenientStringMap.self, forKey: .extraSpecs)) ?? LenientStringMap(wrappedValue: [:])
    }

    /// `cond:operation:status`, the region-wide sale state (absent ⇒ normal).
    public var operationStatus: String? { extraSpecs["cond:operation:status"] }
    /// `cond:operation:az`, the per-AZ overrides such as `az0(normal), az1(sellout)`.
    public var operationAZ: String? { extraSpecs["cond:operation:az"] }
}

/// `{"flavors": [...]}`.
struct FlavorList: Decodable, Sendable {
    var flavors: [Flavor]
}

/// `{"availabilityZoneInfo": [{"zoneName", "zoneState": {"available"}, "hosts"}]}`.
struct AvailabilityZoneList: Decodable, Sendable {
    struct Zone: Decodable, Sendable {
        struct State: Decodable, Sendable { var available: Bool? }
        var zoneName: String
        var zoneState: State?
    }
    var availabilityZoneInfo: [Zone]
}
