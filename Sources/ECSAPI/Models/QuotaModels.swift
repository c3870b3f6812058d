import Foundation

/// A tenant's quotas and usage from `GET /v1/{project_id}/cloudservers/limits` (`absolute`).
///
/// Kept as the raw name → value map so no resource the API reports is lost; typed accessors
/// resolve the two spellings the seeds use (`maxTotalKeyPairs`/`maxTotalKeypairs`,
/// `maxServerMetadata`/`maxServerMeta`). `-1` means unlimited.
public struct TenantLimits: Decodable, Sendable, Hashable {
    /// Every field of `absolute`, numbers and numeric strings alike.
    public var absolute: [String: Int]

    enum CodingKeys: String, CodingKey { case absolute, limits }

    public init(absolute: [String: Int]) {
        self.absolute = absolute
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if let values = try c.decodeIfPresent([String: LenientOptionalInt].self, forKey: .absolute) {
            absolute = values.compactMapValues { $0.wrappedValue }
        } else {
            // The Nova form wraps the same map in `limits`.
            let nested = try c.nestedContainer(keyedBy: CodingKeys.self, forKey: .limits)
            let values = try nested.decode([String: LenientOptionalInt].self, forKey: .absolute)
            absolute = values.compactMapValues { $0.wrappedValue }
        }
    }

    /// One quota resource: how much is used of how much (`nil` limit = unlimited).
    public struct Usage: Sendable, Hashable {
        /// Stable resource name used in metrics (`instances`, `cores`, `ram`, …).
        public var resource: String
        public var used: Int
        /// nil when the API reports `-1` (no limit).
        public var limit: Int?

        /// used / limit; nil when unlimited; 1 when the limit is 0 and something is used.
        public var ratio: Double? {
            guard let limit else { return nil }
            if limit == 0 { return used > 0 ? 1 : 0 }
            return Double(used) / Double(limit)
        }

        /// limit − used; nil when unlimited.
        public var headroom: Int? { limit.map { $0 - used } }
    }

    /// (resource, used key, limit keys in order of preference)
    private static let pairs: [(String, String, [String])] = [
        ("instances", "totalInstancesUsed", ["maxTotalInstances"]),
        ("cores", "totalCoresUsed", ["maxTotalCores"]),
        ("ram", "totalRAMUsed", ["maxTotalRAMSize"]),
        ("server_groups", "totalServerGroupsUsed", ["maxServerGroups"]),
        ("security_groups", "totalSecurityGroupsUsed", ["maxSecurityGroups"]),
        ("floating_ips", "totalFloatingIpsUsed", ["maxTotalFloatingIps"]),
    ]

    /// Every resource with both a usage and a limit in the answer.
    public var usages: [Usage] {
        Self.pairs.compactMap { resource, usedKey, limitKeys in
            guard let used = absolute[usedKey], let limit = limitKeys.lazy.compactMap({ absolute[$0] }).first else { return nil }
            return Usage(resource: resource, used: used, limit: limit < 0 ? nil : limit)
        }
    }

    /// The usage of one resource by its stable name.
    public func usage(_ resource: String) -> Usage? { usages.first { $0.resource == resource } }

    /// Limits without a usage counterpart, by their API name (either spelling normalised).
    public var maxTotalKeyPairs: Int? { absolute["maxTotalKeyPairs"] ?? absolute["maxTotalKeypairs"] }
    public var maxServerMetadata: Int? { absolute["maxServerMetadata"] ?? absolute["maxServerMeta"] }
    public var maxServerGroupMembers: Int? { absolute["maxServerGroupMembers"] }
}
