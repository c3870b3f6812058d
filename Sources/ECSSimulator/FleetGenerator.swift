import Foundation

/// Builds reproducible fleets: N projects × M servers with realistic names, flavors, AZs and tags,
/// a share of them carrying schedule tags. The same seed gives the same fleet.
public struct FleetGenerator: Sendable {
    /// Fixed ids taken from the seed examples, so answers look like the real API's.
    public static let imageId = "1189efbf-d48b-46ad-a823-94b942e2a000"
    public static let vpcId = "0dae26c9-9a70-4392-93f3-87d53115d171"
    public static let subnetId = "157ee789-03ea-45b1-a698-76c92660dd83"
    public static let networkId = "05d4fb93-84e5-4964-853b-32992ffef627"
    public static let securityGroupId = "507ca48f-814c-4293-8706-300564d54620"
    public static let userId = "f79791beca3c48159ac2553fff22e166"

    /// A 56-hex host id derived from a number.
    static func hostId(for ordinal: Int) -> String {
        let word = hex(UInt64((ordinal &* 2_654_435_761) & 0x3FFF_FFFF_FFFF), digits: 14)
        return word + word + word + word
    }

    /// A stable UUID-shaped id derived from another string (FNV-1a).
    static func volumeId(for text: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        var out = [UInt8]()
        out.reserveCapacity(36)
        appendHex(hash, digits: 16, to: &out)
        appendHex(hash.byteSwapped, digits: 16, to: &out)
        for position in [8, 13, 18, 23] { out.insert(UInt8(ascii: "-"), at: position) }
        return String(decoding: out, as: UTF8.self)
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// Lower-case hex of `value`, zero-padded to `digits` (no Foundation formatting on hot paths).
    static func hex(_ value: UInt64, digits: Int) -> String {
        var out = [UInt8]()
        out.reserveCapacity(digits)
        appendHex(value, digits: digits, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    static func appendHex(_ value: UInt64, digits: Int, to out: inout [UInt8]) {
        for shift in stride(from: (digits - 1) * 4, through: 0, by: -4) {
            out.append(hexDigits[Int((value >> UInt64(shift)) & 0xF)])
        }
    }

    /// A flavor catalogue of `count` flavors across families and sizes (seed-style ids such as
    /// `s3.large.2`, `c3.2xlarge.2`, `m3.xlarge.8`).
    public static func defaultFlavors(count: Int) -> [SimFlavor] {
        let families: [(prefix: String, ratio: Int, type: String)] = [
            ("s3", 2, "normal"), ("c3", 2, "computingv3"), ("m3", 8, "highmem"), ("s6", 4, "normal"),
            ("c6", 4, "computingv3"), ("m6", 8, "highmem"), ("t6", 1, "normal"), ("c7", 2, "computingv3"),
        ]
        let sizes: [(name: String, vcpus: Int)] = [
            ("small", 1), ("medium", 1), ("large", 2), ("xlarge", 4), ("2xlarge", 8), ("4xlarge", 16), ("8xlarge", 32),
            ("12xlarge", 48), ("16xlarge", 64), ("22xlarge", 88), ("26xlarge", 104), ("32xlarge", 128),
        ]
        var flavors: [SimFlavor] = []
        var generation = 0
        while flavors.count < count {
            for size in sizes {
                for family in families {
                    guard flavors.count < count else { break }
                    let ratio = family.ratio << generation
                    let id = generation == 0 ? "\(family.prefix).\(size.name).\(ratio)" : "\(family.prefix).\(size.name).\(ratio).g\(generation)"
                    flavors.append(
                        SimFlavor(
                            id: id, vcpus: size.vcpus, ramMB: size.vcpus * ratio * 1024,
                            extraSpecs: [
                                "ecs:performancetype": family.type, "ecs:generation": family.prefix,
                                "ecs:virtualization_env_types": "CloudCompute", "resource_type": "IOptimized\(family.prefix.uppercased())_\(family.ratio)",
                                "instance_vnic:type": "enhanced", "instance_vnic:max_count": "4",
                            ]))
                }
            }
            generation += 1
        }
        return flavors
    }

    /// Fleet shape.
    public var projects: Int
    public var serversPerProject: Int
    /// The share of servers carrying a schedule tag.
    public var scheduledShare: Double
    /// Schedule names to draw from.
    public var schedules: [String]
    public var scheduleTagKey: String
    public var flavorCount: Int
    public var seed: UInt64

    public init(
        projects: Int, serversPerProject: Int, scheduledShare: Double = 0.25, schedules: [String] = ["office-hours", "weeknights", "lab"],
        scheduleTagKey: String = "warden-schedule", flavorCount: Int = 12, seed: UInt64 = 1
    ) {
        self.projects = projects
        self.serversPerProject = serversPerProject
        self.scheduledShare = scheduledShare
        self.schedules = schedules
        self.scheduleTagKey = scheduleTagKey
        self.flavorCount = flavorCount
        self.seed = seed
    }

    /// The project ids this fleet uses (32 lower-case hex, from the seed), after the ones given.
    public func projectIds(first: [String] = []) -> [String] {
        var random = SeededGenerator(seed: seed ^ 0x5052_4F4A)
        var ids = Array(first.prefix(projects))
        while ids.count < projects { ids.append(random.hex32()) }
        return ids
    }

    /// Fills `region` with the fleet; returns the project ids.
    @discardableResult
    public func populate(_ region: SimulatedRegion, firstProjectIds: [String] = []) async -> [String] {
        var random = SeededGenerator(seed: seed)
        let flavors = FleetGenerator.defaultFlavors(count: flavorCount)
        await region.setFlavors(flavors)
        let zones = region.configuration.availabilityZones
        let apps = ["web", "api", "db", "cache", "batch", "ci", "etl", "search", "queue", "ml"]
        let envs = ["prod", "staging", "dev", "test"]
        let teams = ["payments", "platform", "data", "mobile", "core", "growth"]
        let ids = projectIds(first: firstProjectIds)
        let start = Date().timeIntervalSince1970 - 86_400 * 30
        for (projectIndex, projectId) in ids.enumerated() {
            // A generated fleet never starts over its quota: the default quota grows with the fleet.
            let quota = SimQuota(
                instances: max(2048, serversPerProject * 2), cores: max(20480, serversPerProject * 256), ramMB: max(25_165_824, serversPerProject * 1_048_576))
            await region.addProject(id: projectId, name: "\(await region.regionName)_\(projectIndex)", quota: quota)
            var batch: [SimulatedRegion.SeedServer] = []
            batch.reserveCapacity(serversPerProject)
            for index in 0..<serversPerProject {
                let app = apps.randomElement(using: &random) ?? "web"
                let env = envs.randomElement(using: &random) ?? "dev"
                var tags = [SimTag(key: "env", value: env), SimTag(key: "team", value: teams.randomElement(using: &random) ?? "core")]
                if Double.random(in: 0..<1, using: &random) < scheduledShare, let schedule = schedules.randomElement(using: &random) {
                    tags.append(SimTag(key: scheduleTagKey, value: schedule))
                }
                // Small flavors are far more common than big ones.
                let flavorIndex = min(flavors.count - 1, Int(pow(Double.random(in: 0..<1, using: &random), 3) * Double(flavors.count)))
                batch.append(
                    SimulatedRegion.SeedServer(
                        id: random.uuid(), name: "\(app)-\(env)-\(String(format: "%04d", index))", flavorId: flavors[flavorIndex].id,
                        availabilityZone: zones[index % zones.count], running: Double.random(in: 0..<1, using: &random) < 0.85,
                        tags: tags, created: start + Double(index) * 60))
            }
            await region.seedServers(projectId: projectId, batch)
        }
        return ids
    }
}

extension SimulatedRegion {
    /// A server to seed directly, without a create job.
    public struct SeedServer: Sendable {
        public var id: String
        public var name: String
        public var flavorId: String
        public var availabilityZone: String
        public var running: Bool
        public var tags: [SimTag]
        public var created: Double

        public init(id: String, name: String, flavorId: String, availabilityZone: String, running: Bool, tags: [SimTag], created: Double) {
            self.id = id
            self.name = name
            self.flavorId = flavorId
            self.availabilityZone = availabilityZone
            self.running = running
            self.tags = tags
            self.created = created
        }
    }

    /// Seeds many servers in one actor call.
    public func seedServers(projectId: String, _ servers: [SeedServer]) {
        for server in servers {
            seedServer(
                projectId: projectId, name: server.name, flavorId: server.flavorId, availabilityZone: server.availabilityZone,
                running: server.running, tags: server.tags, id: server.id, created: server.created)
        }
    }
}
