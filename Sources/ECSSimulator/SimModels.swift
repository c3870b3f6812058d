import Foundation

/// A 2D tag on a simulated server.
public struct SimTag: Sendable, Hashable, Codable {
    public var key: String
    public var value: String

    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }

    /// The Nova rendering: `key=value`, or `key` for an empty value.
    var novaString: String { value.isEmpty ? key : "\(key)=\(value)" }
}

/// A flavor of the simulated region. Sale states live in `extraSpecs`
/// (`cond:operation:status`, `cond:operation:az`), exactly as the API reports them.
public struct SimFlavor: Sendable, Hashable {
    public var id: String
    public var vcpus: Int
    /// Memory in MB.
    public var ramMB: Int
    public var extraSpecs: [String: String]

    public init(id: String, vcpus: Int, ramMB: Int, extraSpecs: [String: String] = [:]) {
        self.id = id
        self.vcpus = vcpus
        self.ramMB = ramMB
        self.extraSpecs = extraSpecs
    }

    /// The sale state in `az`: the AZ entry of `cond:operation:az` if there is one, else
    /// `cond:operation:status`, else `normal` (seed S1 T5-41).
    public func saleState(in az: String) -> String {
        if let azSpec = extraSpecs["cond:operation:az"], let state = SimFlavor.parseAZStates(azSpec)[az] {
            return state
        }
        return extraSpecs["cond:operation:status"] ?? "normal"
    }

    /// True when a server of this flavor can be ordered in `az` (normal, obt, promotion).
    public func isOrderable(in az: String) -> Bool {
        ["normal", "obt", "promotion"].contains(saleState(in: az))
    }

    /// Parses `az0(normal), az1(sellout)` into a map; entries with empty parentheses are skipped.
    static func parseAZStates(_ spec: String) -> [String: String] {
        var states: [String: String] = [:]
        for entry in spec.split(separator: ",") {
            let trimmed = entry.trimmingCharacters(in: .whitespaces)
            guard let open = trimmed.lastIndex(of: "("), trimmed.hasSuffix(")") else { continue }
            let name = String(trimmed[..<open]).trimmingCharacters(in: .whitespaces)
            let state = String(trimmed[trimmed.index(after: open)..<trimmed.index(before: trimmed.endIndex)])
            if !name.isEmpty, !state.isEmpty { states[name] = state }
        }
        return states
    }

    /// Writes `cond:operation:az` from a map, AZs sorted.
    mutating func setAZStates(_ states: [String: String]) {
        if states.isEmpty {
            extraSpecs["cond:operation:az"] = nil
        } else {
            extraSpecs["cond:operation:az"] = states.sorted { $0.key < $1.key }.map { "\($0.key)(\($0.value))" }.joined(separator: ", ")
        }
    }
}

/// One entry of a server's operation history.
struct SimInstanceAction: Sendable {
    var action: String
    var requestId: String
    var start: Double
    var finish: Double?
    var event: String
    /// `Success`, `Error`, or nil while running.
    var result: String?
}

/// The operation a server is going through, and where.
struct PendingOperation: Sendable {
    var operation: ServerStateModel.Operation
    var jobId: String
    var subJobIndex: Int
    var stepIndex: Int
    /// The state to return to if the operation fails.
    var previousVMState: String
    var stuck: Bool
    var failure: String?
}

/// A simulated server. `status` is never stored: it is derived from `vmState` and `taskState`.
struct SimServer: Sendable {
    var id: String
    var name: String
    var flavorId: String
    var availabilityZone: String
    var imageRef: String
    var vmState: String
    var taskState: String?
    var locked = false
    /// `UP`, `DOWN`, `MAINTENANCE`, `UNKNOWN` or blank (the reference's values); set out of band.
    var hostStatus = "UP"
    var created: Double {
        didSet { createdText = SimTime.format(created, .seconds) }
    }
    var updated: Double {
        didSet { updatedText = SimTime.format(updated, .seconds) }
    }
    var launchedAt: Double? {
        didSet { launchedText = launchedAt.map { SimTime.format($0, .microsecondsNoZone) } }
    }
    /// The wire forms of the three times, kept with them: a page of 1,000 servers renders 3,000.
    private(set) var createdText: String
    private(set) var updatedText: String
    private(set) var launchedText: String?
    var tags: [SimTag]
    var metadata: [String: String]
    var description: String
    var keyName: String?
    /// Host-order number within the project, for a stable private IP.
    var ordinal: Int
    var actions: [SimInstanceAction] = []
    var pending: PendingOperation?

    var status: String { ServerStateModel.status(vmState: vmState, taskState: taskState) }

    init(
        id: String, name: String, flavorId: String, availabilityZone: String, imageRef: String, vmState: String, taskState: String?,
        created: Double, updated: Double, launchedAt: Double?, tags: [SimTag], metadata: [String: String], description: String,
        keyName: String?, ordinal: Int
    ) {
        self.id = id
        self.name = name
        self.flavorId = flavorId
        self.availabilityZone = availabilityZone
        self.imageRef = imageRef
        self.vmState = vmState
        self.taskState = taskState
        self.created = created
        self.updated = updated
        self.launchedAt = launchedAt
        self.createdText = SimTime.format(created, .seconds)
        self.updatedText = SimTime.format(updated, .seconds)
        self.launchedText = launchedAt.map { SimTime.format($0, .microsecondsNoZone) }
        self.tags = tags
        self.metadata = metadata
        self.description = description
        self.keyName = keyName
        self.ordinal = ordinal
    }
}

/// A sub-job of a simulated job: one server's part of the operation.
struct SimSubJob: Sendable {
    var id: String
    var serverId: String
    var status: String
    var begin: Double
    var end: Double?
    var errorCode: String?
    var failReason: String?
    /// The sub-job started a transition of its server (false: answered at acceptance — already in
    /// the wanted state, refused for its state, or failed by the `failSubJob*` fault).
    var startedTransition = false
}

/// A simulated asynchronous job.
struct SimJob: Sendable {
    var id: String
    var projectId: String
    var operation: ServerStateModel.Operation
    var created: Double
    var subJobs: [SimSubJob]
    /// Until this time the job reports INIT.
    var initUntil: Double
    /// Acceptance order within the region (jobs accepted in the same simulated instant).
    var sequence = 0

    /// The parent status derived from the sub-jobs: INIT, RUNNING, SUCCESS or FAIL.
    func status(at now: Double) -> String {
        if now < initUntil { return "INIT" }
        if subJobs.contains(where: { $0.status == "RUNNING" || $0.status == "INIT" }) { return "RUNNING" }
        return subJobs.contains { $0.status == "FAIL" } ? "FAIL" : "SUCCESS"
    }

    var end: Double? {
        guard subJobs.allSatisfy({ $0.end != nil }) else { return nil }
        return subJobs.compactMap(\.end).max() ?? created
    }
}

/// A project's quota (`-1` = unlimited).
public struct SimQuota: Sendable, Equatable, Codable {
    public var instances: Int
    public var cores: Int
    public var ramMB: Int
    public var serverGroups: Int
    public var securityGroups: Int
    public var floatingIps: Int
    public var keyPairs: Int

    public init(instances: Int = 2048, cores: Int = 20480, ramMB: Int = 25_165_824, serverGroups: Int = 10, securityGroups: Int = 10, floatingIps: Int = 10, keyPairs: Int = -1) {
        self.instances = instances
        self.cores = cores
        self.ramMB = ramMB
        self.serverGroups = serverGroups
        self.securityGroups = securityGroups
        self.floatingIps = floatingIps
        self.keyPairs = keyPairs
    }
}

/// A project of the simulated region with its servers.
struct SimProject: Sendable {
    var id: String
    var name: String
    var quota: SimQuota
    var servers: [String: SimServer] = [:]
    /// Server ids by ascending `created`, ties in insertion order. The server listings walk it
    /// backwards: "The default sorting order is the reverse order of created_at" (seed S1 §6.2.4
    /// T6-31, §6.2.5 T6-36, `sort_key`).
    var order: [String] = []
    var usedCores = 0
    var usedRAM = 0
    var serverGroupsUsed = 0
    var securityGroupsUsed = 1
    var nextOrdinal = 0
    /// Idempotency: `X-Client-Token` → (request fingerprint, answer).
    var clientTokens: [String: (fingerprint: [UInt8], status: Int, body: [UInt8])] = [:]

    mutating func insert(_ server: SimServer) {
        servers[server.id] = server
        guard let lastId = order.last, let last = servers[lastId], last.created > server.created else {
            order.append(server.id)  // the usual case: the newest server
            return
        }
        // Seeded with an older creation time: after every server created no later than it.
        var low = 0
        var high = order.count
        while low < high {
            let middle = (low + high) / 2
            if (servers[order[middle]]?.created ?? 0) <= server.created { low = middle + 1 } else { high = middle }
        }
        order.insert(server.id, at: low)
    }

    /// The server ids in listing order: newest `created` first (see ``order``).
    var listingOrder: ReversedCollection<[String]> { order.reversed() }

    mutating func remove(_ id: String) {
        servers[id] = nil
        if let index = order.firstIndex(of: id) { order.remove(at: index) }
    }
}

/// How long each transition step takes, in simulated seconds.
public struct TransitionTimings: Sendable, Equatable, Codable {
    /// A job reports INIT this long after it is accepted.
    public var jobInit: Double
    /// Each build step of a create.
    public var createStep: Double
    public var start: Double
    public var stop: Double
    /// Each reboot step.
    public var rebootStep: Double
    public var delete: Double

    public init(jobInit: Double = 1, createStep: Double = 5, start: Double = 10, stop: Double = 10, rebootStep: Double = 5, delete: Double = 5) {
        self.jobInit = jobInit
        self.createStep = createStep
        self.start = start
        self.stop = stop
        self.rebootStep = rebootStep
        self.delete = delete
    }

    func stepDuration(_ operation: ServerStateModel.Operation) -> Double {
        switch operation {
        case .create: return createStep
        case .start: return start
        case .stop: return stop
        case .reboot, .hardReboot: return rebootStep
        case .delete: return delete
        }
    }
}
