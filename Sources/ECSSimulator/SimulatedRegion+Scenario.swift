import Foundation

/// What the simulator is told to get wrong, set through the `/_sim` admin API or directly by tests.
public struct SimFaults: Sendable, Codable, Equatable {
    /// The next N jobs stay RUNNING forever (their servers keep their task_state).
    public var stickNextJobs = 0
    /// The next N jobs fail; their servers return to the state before the operation.
    public var failNextJobs = 0
    /// The error code of those failures (default: the operation's own, e.g. `Ecs.0226`).
    public var failNextJobsCode: String?
    /// Milliseconds added before every API answer.
    public var latencyMs = 0.0
    /// The fraction of API calls answered with `errorStatus`.
    public var errorRate = 0.0
    /// 500 (with `Common.0001`, its status in seed A.2) or 503 (any other value; no A.2 code).
    public var errorStatus = 503
    /// The fraction of API calls whose connection is reset without an answer.
    public var dropRate = 0.0
    /// While set, every API call fails: `error` (503) or `drop` (connection reset).
    public var outage: String?
    /// Per-project flow control: requests per second (nil = off).
    public var throttleRequestsPerSecond: Double?
    /// Burst of the per-project flow control.
    public var throttleBurst = 10.0
    /// How throttled calls are answered: `429` (`Common.1503`) or `202` (`Common.0024`).
    public var throttleMode = "429"
    /// Partial failure of batch start/stop jobs: the fraction (0…1) of the servers whose sub-job
    /// fails at acceptance, leaving the server as it was. Which servers is a deterministic function
    /// of the region's seed and the server id (``SimulatedRegion/subJobFaultDraw(serverId:)``).
    public var failSubJobRate = 0.0
    /// The error code of those sub-jobs; their `fail_reason` is the code's message of seed A.2.
    public var failSubJobCode = "Ecs.0603"
    /// Servers whose start/stop sub-job fails whatever the rate.
    public var failSubJobServers: [String] = []
    /// The fault fails one server's sub-jobs at most this many times (0 = every time), so a retry
    /// after the code's wait succeeds. Counting restarts when a `failSubJob*` setting changes.
    public var failSubJobTimes = 1
    /// The Nova routes ignore the microversion header (as a proxy that strips it would): answers
    /// take the base version, so server details come without `tags`.
    public var ignoreMicroversion = false
    /// `X-Client-Token` replay on batch start/stop/reboot and batch delete (`POST
    /// /v1/{p}/cloudservers/action`, `…/delete`). The reference documents the header for creation
    /// only (seed S3), so whether the real API replays these calls is unknown: with `false` the
    /// token is ignored on them — a repeated call is carried out again as a new job, and a token
    /// reused with another body is not refused. Creation keeps its replay either way.
    public var clientTokenReplay = true

    public init() {}

    /// Every field is optional in the admin API; a missing one keeps its default.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = SimFaults()
        stickNextJobs = try c.decodeIfPresent(Int.self, forKey: .stickNextJobs) ?? defaults.stickNextJobs
        failNextJobs = try c.decodeIfPresent(Int.self, forKey: .failNextJobs) ?? defaults.failNextJobs
        failNextJobsCode = try c.decodeIfPresent(String.self, forKey: .failNextJobsCode)
        latencyMs = try c.decodeIfPresent(Double.self, forKey: .latencyMs) ?? defaults.latencyMs
        errorRate = try c.decodeIfPresent(Double.self, forKey: .errorRate) ?? defaults.errorRate
        errorStatus = try c.decodeIfPresent(Int.self, forKey: .errorStatus) ?? defaults.errorStatus
        dropRate = try c.decodeIfPresent(Double.self, forKey: .dropRate) ?? defaults.dropRate
        outage = try c.decodeIfPresent(String.self, forKey: .outage)
        throttleRequestsPerSecond = try c.decodeIfPresent(Double.self, forKey: .throttleRequestsPerSecond)
        throttleBurst = try c.decodeIfPresent(Double.self, forKey: .throttleBurst) ?? defaults.throttleBurst
        throttleMode = try c.decodeIfPresent(String.self, forKey: .throttleMode) ?? defaults.throttleMode
        failSubJobRate = try c.decodeIfPresent(Double.self, forKey: .failSubJobRate) ?? defaults.failSubJobRate
        failSubJobCode = try c.decodeIfPresent(String.self, forKey: .failSubJobCode) ?? defaults.failSubJobCode
        failSubJobServers = try c.decodeIfPresent([String].self, forKey: .failSubJobServers) ?? defaults.failSubJobServers
        failSubJobTimes = try c.decodeIfPresent(Int.self, forKey: .failSubJobTimes) ?? defaults.failSubJobTimes
        ignoreMicroversion = try c.decodeIfPresent(Bool.self, forKey: .ignoreMicroversion) ?? defaults.ignoreMicroversion
        clientTokenReplay = try c.decodeIfPresent(Bool.self, forKey: .clientTokenReplay) ?? defaults.clientTokenReplay
        guard (0...1).contains(failSubJobRate) else {
            throw DecodingError.dataCorruptedError(forKey: .failSubJobRate, in: c, debugDescription: "failSubJobRate must lie in 0...1")
        }
        guard failSubJobTimes >= 0 else {
            throw DecodingError.dataCorruptedError(forKey: .failSubJobTimes, in: c, debugDescription: "failSubJobTimes must be 0 (every time) or more")
        }
        guard !failSubJobCode.isEmpty else {
            throw DecodingError.dataCorruptedError(forKey: .failSubJobCode, in: c, debugDescription: "failSubJobCode must not be empty")
        }
    }

    /// True when the sub-job fault settings differ (the per-server counts then start afresh).
    func subJobFaultDiffers(from other: SimFaults) -> Bool {
        failSubJobRate != other.failSubJobRate || failSubJobCode != other.failSubJobCode || failSubJobServers != other.failSubJobServers
            || failSubJobTimes != other.failSubJobTimes
    }
}

/// What the router should do to a request before handling it.
enum FaultDecision: Sendable, Equatable {
    case proceed
    case drop
    case fail(SimError)
}

extension SimulatedRegion {
    // MARK: Faults

    /// Replaces the fault settings. A change of the `failSubJob*` settings starts their per-server
    /// counts afresh.
    public func setFaults(_ newFaults: SimFaults) {
        if newFaults.subJobFaultDiffers(from: faults) { subJobFailuresInjected.removeAll() }
        faults = newFaults
    }

    /// The current fault settings.
    public func currentFaults() -> SimFaults { faults }

    /// The error code with which the `failSubJob*` fault fails `operation`'s sub-job on `serverId`,
    /// or nil: only batch start and stop, a server named in `failSubJobServers` or drawn under
    /// `failSubJobRate`, and at most `failSubJobTimes` times per server (counted here).
    func injectedSubJobFailure(of operation: ServerStateModel.Operation, serverId: String) -> String? {
        guard operation == .start || operation == .stop, faults.failSubJobRate > 0 || !faults.failSubJobServers.isEmpty else { return nil }
        guard faults.failSubJobServers.contains(serverId) || subJobFaultDraw(serverId: serverId) < faults.failSubJobRate else { return nil }
        let used = subJobFailuresInjected[serverId, default: 0]
        if faults.failSubJobTimes > 0 && used >= faults.failSubJobTimes { return nil }
        subJobFailuresInjected[serverId] = used + 1
        return faults.failSubJobCode
    }

    /// A number in [0, 1) fixed by the region's seed and the server id (FNV-1a, then the SplitMix64
    /// finaliser): a server fails under `failSubJobRate` r when its draw is below r, in every batch.
    func subJobFaultDraw(serverId: String) -> Double {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        var seed = configuration.seed
        let bytes = withUnsafeBytes(of: &seed) { Array($0) } + Array(serverId.utf8)
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        hash = (hash ^ (hash >> 30)) &* 0xbf58_476d_1ce4_e5b9
        hash = (hash ^ (hash >> 27)) &* 0x94d0_49bb_1331_11eb
        hash ^= hash >> 31
        return Double(hash >> 11) / Double(1 << 53)
    }

    /// Decides, for one API call, whether an injected fault applies.
    func faultDecision() -> FaultDecision {
        if let outage = faults.outage {
            return outage == "drop" ? .drop : .fail(.unavailable)
        }
        if faults.dropRate > 0, Double.random(in: 0..<1, using: &random) < faults.dropRate { return .drop }
        if faults.errorRate > 0, Double.random(in: 0..<1, using: &random) < faults.errorRate {
            return .fail(faults.errorStatus == 500 ? .systemException : .unavailable)
        }
        return .proceed
    }

    /// Per-project flow control (real time): nil when the call may go, else the throttling error.
    func throttle(projectId: String) -> SimError? {
        guard let rate = faults.throttleRequestsPerSecond, rate > 0 else { return nil }
        let now = Date().timeIntervalSince1970
        var bucket = throttleBuckets[projectId] ?? (faults.throttleBurst, now)
        bucket.tokens = min(faults.throttleBurst, bucket.tokens + (now - bucket.last) * rate)
        bucket.last = now
        defer { throttleBuckets[projectId] = bucket }
        if bucket.tokens >= 1 {
            bucket.tokens -= 1
            return nil
        }
        return faults.throttleMode == "202" ? .flowOverLimit : .apiFlowControl
    }

    // MARK: Scenario control

    /// Sets a project's quota.
    public func setQuota(projectId: String, quota: SimQuota) throws(SimError) {
        guard projects[projectId] != nil else { throw SimError.invalidParameter.with(message: "unknown project \(projectId)") }
        projects[projectId]?.quota = quota
    }

    /// A project's quota.
    public func quota(projectId: String) -> SimQuota? { projects[projectId]?.quota }

    /// Sets a flavor's sale state: region-wide (`az` nil, `cond:operation:status`) or in one AZ
    /// (an entry of `cond:operation:az`); `state` nil removes the setting.
    public func setSaleState(flavorId: String, az: String?, state: String?) throws(SimError) {
        guard var flavor = flavors[flavorId] else { throw SimError.flavorMissing.with(message: "unknown flavor \(flavorId)") }
        if let az {
            var states = SimFlavor.parseAZStates(flavor.extraSpecs["cond:operation:az"] ?? "")
            states[az] = state
            flavor.setAZStates(states)
        } else {
            flavor.extraSpecs["cond:operation:status"] = state
        }
        flavors[flavorId] = flavor
    }

    /// Sets raw extra specs of a flavor (for malformed `cond:operation:az` scenarios).
    public func setExtraSpec(flavorId: String, key: String, value: String?) throws(SimError) {
        guard flavors[flavorId] != nil else { throw SimError.flavorMissing.with(message: "unknown flavor \(flavorId)") }
        flavors[flavorId]?.extraSpecs[key] = value
    }

    /// Changes a server's state out of band, as a person in the console would: the pending
    /// operation (if any) is abandoned.
    public func setServerState(
        projectId: String, serverId: String, vmState: String?, taskState: String??, locked: Bool?, hostStatus: String? = nil
    ) throws(SimError) {
        guard var server = projects[projectId]?.servers[serverId] else { throw .serverMissing }
        if let hostStatus { server.hostStatus = hostStatus }
        if let vmState { server.vmState = vmState.lowercased() }
        if let taskState { server.taskState = taskState.flatMap { $0.isEmpty ? nil : $0 } }
        if let locked { server.locked = locked }
        server.pending = nil
        server.updated = now()
        projects[projectId]?.servers[serverId] = server
    }

    /// Lets stuck jobs continue.
    public func releaseStuckJobs() {
        let time = now()
        for jobId in stuckJobs {
            guard let job = jobs[jobId] else { continue }
            for subJob in job.subJobs where subJob.end == nil {
                guard var server = projects[job.projectId]?.servers[subJob.serverId], var pending = server.pending, pending.jobId == jobId else { continue }
                pending.stuck = false
                server.pending = pending
                projects[job.projectId]?.servers[subJob.serverId] = server
                events.push(.step(projectId: job.projectId, serverId: subJob.serverId), due: time)
            }
        }
        stuckJobs.removeAll()
    }

    /// Sets the speed of simulated time.
    public func setSpeed(_ speed: Double) { clock.setSpeed(speed) }

    /// Jumps simulated time forward (processing every transition due by then).
    public func advanceTime(by seconds: Double) {
        clock.advance(by: seconds)
        _ = now()
    }

    /// The simulated time in Unix seconds.
    public func simulatedTime() -> Double { now() }

    /// The speed of simulated time.
    public func speed() -> Double { clock.speed }

    // MARK: Request log

    /// Appends to the request log (bounded: past `requestLogLimit` entries the oldest half is
    /// dropped, so a long soak cannot grow the simulator without end).
    func log(_ record: SimRequestRecord) {
        if requestLog.count >= Self.requestLogLimit {
            requestLog.removeFirst(Self.requestLogLimit / 2)
            requestLogDropped += Self.requestLogLimit / 2
        }
        requestLog.append(record)
    }

    /// The most request-log entries kept (about 60 MB).
    static let requestLogLimit = 300_000

    /// The request log from absolute index `since` on (indexes keep counting when old entries
    /// are dropped).
    public func requests(since: Int = 0) -> [SimRequestRecord] {
        let start = max(0, since - requestLogDropped)
        guard start < requestLog.count else { return [] }
        return Array(requestLog[start...])
    }

    /// The absolute index of the next request-log entry.
    public var requestLogEnd: Int { requestLogDropped + requestLog.count }

    /// Empties the request log.
    public func clearRequestLog() {
        requestLogDropped += requestLog.count
        requestLog.removeAll(keepingCapacity: true)
    }

    // MARK: Inspection (tests)

    /// One sub-job as the simulator recorded it: which job, which server, how it ended, and whether
    /// it started a transition of the server (tests count how often a server was really stopped).
    public struct SubJobRecord: Sendable, Equatable {
        public var jobId: String
        /// The job's `job_type`, e.g. `batchStopServers`.
        public var jobType: String
        public var serverId: String
        /// `INIT`, `RUNNING`, `SUCCESS` or `FAIL`.
        public var status: String
        public var errorCode: String?
        /// False when the sub-job was answered at acceptance without touching the server (already
        /// in the wanted state, refused for its state, or failed by the `failSubJob*` fault).
        public var startedTransition: Bool
    }

    /// The sub-jobs of a project's jobs, in the order the jobs were accepted; only `serverId`'s
    /// when given.
    public func subJobRecords(projectId: String, serverId: String? = nil) -> [SubJobRecord] {
        _ = now()
        return jobs.values.filter { $0.projectId == projectId }.sorted { $0.sequence < $1.sequence }.flatMap { job in
            job.subJobs.filter { serverId == nil || $0.serverId == serverId }.map {
                SubJobRecord(
                    jobId: job.id, jobType: job.operation.jobType, serverId: $0.serverId, status: $0.status, errorCode: $0.errorCode,
                    startedTransition: $0.startedTransition)
            }
        }
    }

    /// A server's status, vm_state, task_state and tags, or nil when it does not exist.
    public func inspectServer(projectId: String, serverId: String) -> (status: String, vmState: String, taskState: String?, tags: [SimTag])? {
        _ = now()
        guard let server = projects[projectId]?.servers[serverId] else { return nil }
        return (server.status, server.vmState, server.taskState, server.tags)
    }

    /// The ids of a project's servers in listing order: newest `created` first.
    public func serverIds(projectId: String) -> [String] { projects[projectId].map { Array($0.listingOrder) } ?? [] }

    /// Adds a server directly (fleet generation and tests), already ACTIVE or SHUTOFF.
    @discardableResult
    public func seedServer(
        projectId: String, name: String, flavorId: String, availabilityZone: String? = nil, running: Bool = true, tags: [SimTag] = [],
        id: String? = nil, created: Double? = nil
    ) -> String {
        let time = created ?? clock.now()
        let serverId = id ?? random.uuid()
        guard let ordinal = projects[projectId]?.nextOrdinal else { return serverId }
        let flavor = flavors[flavorId]
        let server = SimServer(
            id: serverId, name: name, flavorId: flavorId, availabilityZone: availabilityZone ?? configuration.availabilityZones.first ?? "",
            imageRef: FleetGenerator.imageId, vmState: running ? "active" : "stopped", taskState: nil, created: time, updated: time,
            launchedAt: time, tags: tags, metadata: [:], description: "", keyName: nil, ordinal: ordinal)
        // Mutated in place: copying the project out and back would copy all its servers each time.
        projects[projectId]?.nextOrdinal += 1
        projects[projectId]?.usedCores += flavor?.vcpus ?? 0
        projects[projectId]?.usedRAM += flavor?.ramMB ?? 0
        projects[projectId]?.insert(server)
        return serverId
    }
}
