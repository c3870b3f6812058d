import ECSSigning
import Foundation

/// The configuration a simulated region starts from.
public struct SimRegionConfiguration: Sendable {
    /// The region name, e.g. `eu-west-0`.
    public var region: String
    /// Availability zones, e.g. `eu-west-0a`.
    public var availabilityZones: [String]
    /// Accepted access keys: AK → SK.
    public var accessKeys: [String: String]
    /// IAM users that may obtain tokens: user name → password (any domain name is accepted).
    public var iamUsers: [String: String]
    /// Transition durations in simulated seconds.
    public var timings: TransitionTimings
    /// Simulated seconds per real second.
    public var speed: Double
    /// Seed of every random choice (ids, fleets).
    public var seed: UInt64
    /// The largest accepted `X-Sdk-Date` skew, in seconds.
    public var maxClockSkew: Double
    /// Simulated time at start (Unix seconds); nil starts at the wall clock.
    public var startTime: Double?

    public init(
        region: String = "eu-west-0",
        availabilityZones: [String]? = nil,
        accessKeys: [String: String] = [:],
        iamUsers: [String: String] = [:],
        timings: TransitionTimings = TransitionTimings(),
        speed: Double = 1,
        seed: UInt64 = 1,
        maxClockSkew: Double = 15 * 60,
        startTime: Double? = nil
    ) {
        self.region = region
        self.availabilityZones = availabilityZones ?? ["a", "b", "c"].map { region + $0 }
        self.accessKeys = accessKeys
        self.iamUsers = iamUsers
        self.timings = timings
        self.speed = speed
        self.seed = seed
        self.maxClockSkew = maxClockSkew
        self.startTime = startTime
    }
}

/// One request as the simulator's request log keeps it.
public struct SimRequestRecord: Sendable, Codable, Equatable {
    public var method: String
    public var path: String
    public var status: Int
    /// Wall-clock Unix time of the answer.
    public var time: Double
    /// The API operation, e.g. `BatchStopServers` (empty for unknown routes).
    public var operation: String
    public var projectId: String?
}

/// A simulated ECS region: projects, AZs, flavors, servers, jobs, tags, quotas and instance
/// actions, with the rules of the API reference, fault injection and simulated time.
///
/// All state lives in this actor; the HTTP router calls `handle(_:)` once per request. Transitions
/// are driven by an event queue processed lazily against the simulated clock on every call.
public actor SimulatedRegion {
    let configuration: SimRegionConfiguration
    var clock: SimClock
    var random: SeededGenerator
    var projects: [String: SimProject] = [:]
    var projectIdsByName: [String: String] = [:]
    var flavors: [String: SimFlavor] = [:]
    var flavorOrder: [String] = []
    var jobs: [String: SimJob] = [:]
    var events = EventQueue<ServerEvent>()
    var tokens: [String: (projectId: String, expiresAt: Double)] = [:]
    var faults = SimFaults()
    /// Jobs whose sub-jobs never finish (fault injection).
    var stuckJobs: Set<String> = []
    /// Jobs whose sub-jobs fail, with the error code (fault injection).
    var failingJobs: [String: String] = [:]
    /// Server id → start/stop sub-jobs the `failSubJob*` fault has failed (fault injection).
    var subJobFailuresInjected: [String: Int] = [:]
    var requestLog: [SimRequestRecord] = []
    /// Entries dropped from the front of the log (so `since` indexes stay absolute).
    var requestLogDropped = 0
    var throttleBuckets: [String: (tokens: Double, last: Double)] = [:]
    let verifier: SignatureVerifier
    let startedAt = Date().timeIntervalSince1970

    /// An event of the transition queue.
    enum ServerEvent: Sendable {
        case step(projectId: String, serverId: String)
    }

    /// Creates an empty region (no projects, the default flavor catalogue).
    public init(configuration: SimRegionConfiguration) {
        self.configuration = configuration
        self.clock = SimClock(start: configuration.startTime ?? Date().timeIntervalSince1970, speed: configuration.speed)
        // A stream of its own: the fleet generator draws server ids from `seed` itself, and the
        // region's ids (new servers, jobs, requests) must never repeat them.
        self.random = SeededGenerator(seed: configuration.seed ^ 0xA5A5_5A5A_C3C3_3C3C)
        let keys = configuration.accessKeys
        self.verifier = SignatureVerifier(maxClockSkew: configuration.maxClockSkew) { keys[$0] }
        for flavor in FleetGenerator.defaultFlavors(count: 12) {
            flavors[flavor.id] = flavor
            flavorOrder.append(flavor.id)
        }
    }

    // MARK: - Projects and catalogue

    /// Adds a project (idempotent) and returns its id.
    @discardableResult
    public func addProject(id: String, name: String? = nil, quota: SimQuota = SimQuota()) -> String {
        if projects[id] == nil {
            let projectName = name ?? "\(configuration.region)_\(projects.count)"
            projects[id] = SimProject(id: id, name: projectName, quota: quota)
            projectIdsByName[projectName] = id
        }
        return id
    }

    /// Replaces the flavor catalogue.
    public func setFlavors(_ list: [SimFlavor]) {
        flavors = Dictionary(list.map { ($0.id, $0) }, uniquingKeysWith: { $1 })
        flavorOrder = list.map(\.id)
    }

    /// The ids of all projects, sorted.
    public func projectIds() -> [String] { projects.keys.sorted() }

    /// The region name.
    public var regionName: String { configuration.region }

    /// How many servers the region holds in all.
    public func serverCount() -> Int { projects.values.reduce(0) { $0 + $1.servers.count } }

    // MARK: - Time

    /// The simulated time (Unix seconds), after processing every transition due by then.
    func now() -> Double {
        let time = clock.now()
        processEvents(until: time)
        return time
    }

    /// Applies every queued transition step due at or before `time`.
    func processEvents(until time: Double) {
        while let (due, event) = events.popDue(at: time) {
            switch event {
            case .step(let projectId, let serverId):
                advanceServer(projectId: projectId, serverId: serverId, at: due)
            }
        }
    }

    /// Moves a server one step along its pending operation; finishes the operation at the end.
    func advanceServer(projectId: String, serverId: String, at time: Double) {
        guard var server = projects[projectId]?.servers[serverId], var pending = server.pending, !pending.stuck else { return }
        let path = ServerStateModel.path(of: pending.operation, from: pending.previousVMState)
        pending.stepIndex += 1
        if pending.stepIndex < path.steps.count {
            let step = path.steps[pending.stepIndex]
            server.vmState = step.vmState
            server.taskState = step.taskState
            server.updated = time
            server.pending = pending
            projects[projectId]?.servers[serverId] = server
            events.push(.step(projectId: projectId, serverId: serverId), due: time + configuration.timings.stepDuration(pending.operation))
            return
        }
        finish(projectId: projectId, server: server, pending: pending, at: time)
    }

    /// Ends an operation: final state or rollback, sub-job outcome, instance-action event.
    private func finish(projectId: String, server original: SimServer, pending: PendingOperation, at time: Double) {
        var server = original
        let failed = pending.failure != nil
        server.pending = nil
        server.updated = time
        if let index = server.actions.lastIndex(where: { $0.finish == nil }) {
            server.actions[index].finish = time
            server.actions[index].result = failed ? "Error" : "Success"
        }
        if var job = jobs[pending.jobId], pending.subJobIndex < job.subJobs.count {
            job.subJobs[pending.subJobIndex].status = failed ? "FAIL" : "SUCCESS"
            job.subJobs[pending.subJobIndex].end = time
            if let code = pending.failure {
                job.subJobs[pending.subJobIndex].errorCode = code
                job.subJobs[pending.subJobIndex].failReason = "\(pending.operation.rawValue) failed (injected fault \(code))"
            }
            jobs[pending.jobId] = job
        }
        let final = ServerStateModel.path(of: pending.operation, from: pending.previousVMState).final
        switch (pending.operation, failed) {
        case (.delete, false), (.create, true):
            // A deleted server leaves the listings; a failed v1 create rolls back.
            releaseQuota(projectId: projectId, server: server)
            projects[projectId]?.remove(server.id)
            return
        case (_, true):
            server.vmState = pending.previousVMState
            server.taskState = nil
        case (_, false):
            server.vmState = final.vmState
            server.taskState = final.taskState
            if pending.operation == .create { server.launchedAt = time }
        }
        projects[projectId]?.servers[server.id] = server
    }

    func releaseQuota(projectId: String, server: SimServer) {
        guard let flavor = flavors[server.flavorId] else { return }
        projects[projectId]?.usedCores -= flavor.vcpus
        projects[projectId]?.usedRAM -= flavor.ramMB
    }

    // MARK: - Ids

    func newRequestId() -> String { random.uuid() }
    func newJobId() -> String { random.hex32() }
}
