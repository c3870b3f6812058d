import Foundation

/// The mutating operations of the region: create, delete, power actions, tags.
extension SimulatedRegion {
    /// A server to create, as validated from a create request.
    struct CreateSpec {
        var name: String
        var flavorId: String
        var imageRef: String
        var availabilityZone: String?
        var count: Int
        var tags: [SimTag]
        var metadata: [String: String]
        var description: String
        var keyName: String?
    }

    /// Validates and accepts a create; returns the job id and the new server ids.
    func createServers(projectId: String, spec: CreateSpec) throws(SimError) -> (jobId: String, serverIds: [String]) {
        guard var project = projects[projectId] else { throw .forbidden }
        guard (1...500).contains(spec.count) else { throw .tooManyToCreate }
        try validateName(spec.name, count: spec.count)
        guard let flavor = flavors[spec.flavorId] else { throw .flavorMissing.with(message: "The flavor \(spec.flavorId) does not exist.") }
        let az: String
        if let requested = spec.availabilityZone, !requested.isEmpty {
            guard configuration.availabilityZones.contains(requested) else {
                throw SimError.invalidParameter.with(message: "The availability zone \(requested) does not exist.")
            }
            az = requested
        } else {
            az = configuration.availabilityZones.first { flavor.isOrderable(in: $0) } ?? configuration.availabilityZones.first ?? ""
        }
        switch flavor.saleState(in: az) {
        case "abandon": throw .flavorMissing.with(message: "The flavor \(flavor.id) has been abandoned in \(az).")
        case "sellout", "obt_sellout": throw .flavorSoldOut.with(message: "Insufficient resources for flavor \(flavor.id) in \(az). Try another flavor.")
        default: break
        }
        try validateTags(spec.tags, existing: [])
        let quota = project.quota
        let instances = project.servers.count + spec.count
        let cores = project.usedCores + spec.count * flavor.vcpus
        let ram = project.usedRAM + spec.count * flavor.ramMB
        if (quota.instances >= 0 && instances > quota.instances) || (quota.cores >= 0 && cores > quota.cores)
            || (quota.ramMB >= 0 && ram > quota.ramMB)
        {
            throw .quotaExceeded
        }
        let time = now()
        let jobId = newJobId()
        var subJobs: [SimSubJob] = []
        var ids: [String] = []
        for index in 0..<spec.count {
            var id = random.uuid()
            while project.servers[id] != nil { id = random.uuid() }
            let name = spec.count > 1 ? spec.name + "-" + String(format: "%04d", index) : spec.name
            let server = SimServer(
                id: id, name: name, flavorId: flavor.id, availabilityZone: az, imageRef: spec.imageRef, vmState: "building",
                taskState: nil, created: time, updated: time, launchedAt: nil, tags: spec.tags, metadata: spec.metadata,
                description: spec.description, keyName: spec.keyName, ordinal: project.nextOrdinal)
            project.nextOrdinal += 1
            project.insert(server)
            project.usedCores += flavor.vcpus
            project.usedRAM += flavor.ramMB
            subJobs.append(SimSubJob(id: newJobId(), serverId: id, status: "RUNNING", begin: time, startedTransition: true))
            ids.append(id)
        }
        projects[projectId] = project
        registerJob(jobId: jobId, projectId: projectId, operation: .create, subJobs: subJobs, at: time)
        for (index, id) in ids.enumerated() {
            begin(.create, projectId: projectId, serverId: id, jobId: jobId, subJobIndex: index, at: time)
        }
        return (jobId, ids)
    }

    /// Accepts a batch power action or delete; unknown ids refuse the whole request.
    func batch(_ operation: ServerStateModel.Operation, projectId: String, serverIds: [String]) throws(SimError) -> String {
        guard let project = projects[projectId] else { throw .forbidden }
        guard !serverIds.isEmpty else { throw SimError.invalidParameter.with(message: "servers must not be empty.") }
        guard serverIds.count <= 1000 else { throw .batchTooLarge }
        if let missing = serverIds.first(where: { project.servers[$0] == nil }) {
            throw SimError.batchServerMissing.with(message: "The ECS \(missing) does not exist.")
        }
        let time = now()
        let jobId = newJobId()
        var subJobs: [SimSubJob] = []
        var toBegin: [(serverId: String, index: Int)] = []
        for serverId in serverIds {
            guard let server = projects[projectId]?.servers[serverId] else { continue }
            var subJob = SimSubJob(id: newJobId(), serverId: serverId, status: "RUNNING", begin: time)
            let alreadyThere =
                (operation == .start && server.status == "ACTIVE" && server.taskState == nil)
                || (operation == .stop && server.status == "SHUTOFF" && server.taskState == nil)
            if alreadyThere {
                // Starting a running server or stopping a stopped one succeeds without a transition.
                subJob.status = "SUCCESS"
                subJob.end = time
            } else if let rejection = ServerStateModel.rejection(of: operation, vmState: server.vmState, taskState: server.taskState, locked: server.locked) {
                subJob.status = "FAIL"
                subJob.end = time
                subJob.errorCode = rejection.code
                subJob.failReason = rejection.message
            } else if operation == .start, let flavor = flavors[server.flavorId],
                ["sellout", "obt_sellout"].contains(flavor.saleState(in: server.availabilityZone))
            {
                // The simulator's choice (docs/simulator.md): a start of a server whose flavor is sold
                // out in its AZ finds no capacity — `Ecs.0319` "Insufficient resources for this flavor".
                subJob.status = "FAIL"
                subJob.end = time
                subJob.errorCode = "Ecs.0319"
                subJob.failReason = SimError.subJobFailureMessage(code: "Ecs.0319")
            } else if let code = injectedSubJobFailure(of: operation, serverId: serverId) {
                // Partial failure (fault injection): this server's start/stop does not happen.
                subJob.status = "FAIL"
                subJob.end = time
                subJob.errorCode = code
                subJob.failReason = SimError.subJobFailureMessage(code: code)
            } else {
                subJob.startedTransition = true
                toBegin.append((serverId, subJobs.count))
            }
            subJobs.append(subJob)
        }
        registerJob(jobId: jobId, projectId: projectId, operation: operation, subJobs: subJobs, at: time)
        for item in toBegin {
            begin(operation, projectId: projectId, serverId: item.serverId, jobId: jobId, subJobIndex: item.index, at: time)
        }
        return jobId
    }

    /// Records a job, consuming the "stick" and "fail" fault counters.
    private func registerJob(jobId: String, projectId: String, operation: ServerStateModel.Operation, subJobs: [SimSubJob], at time: Double) {
        jobs[jobId] = SimJob(
            id: jobId, projectId: projectId, operation: operation, created: time, subJobs: subJobs,
            initUntil: time + configuration.timings.jobInit, sequence: jobs.count)
        if faults.stickNextJobs > 0 {
            faults.stickNextJobs -= 1
            stuckJobs.insert(jobId)
        } else if faults.failNextJobs > 0 {
            faults.failNextJobs -= 1
            failingJobs[jobId] = faults.failNextJobsCode ?? operation.failureCode
        }
    }

    /// Starts `operation` on one server: first step now, the rest from the event queue.
    func begin(_ operation: ServerStateModel.Operation, projectId: String, serverId: String, jobId: String?, subJobIndex: Int, at time: Double) {
        guard var server = projects[projectId]?.servers[serverId] else { return }
        let path = ServerStateModel.path(of: operation, from: server.vmState)
        let stuck = jobId.map { stuckJobs.contains($0) } ?? false
        let failure = jobId.flatMap { failingJobs[$0] }
        server.pending = PendingOperation(
            operation: operation, jobId: jobId ?? "", subJobIndex: subJobIndex, stepIndex: 0, previousVMState: server.vmState,
            stuck: stuck, failure: failure)
        server.vmState = path.steps[0].vmState
        server.taskState = path.steps[0].taskState
        server.updated = time
        server.actions.append(
            SimInstanceAction(
                action: operation.instanceAction, requestId: "req-" + random.uuid(), start: time, finish: nil, event: operation.eventName,
                result: nil))
        if server.actions.count > 20 { server.actions.removeFirst(server.actions.count - 20) }
        projects[projectId]?.servers[serverId] = server
        if !stuck {
            events.push(.step(projectId: projectId, serverId: serverId), due: time + configuration.timings.stepDuration(operation))
        }
    }

    /// A Nova single-server action (`os-start`, `os-stop`, `reboot`, `lock`, `unlock`).
    func novaAction(projectId: String, serverId: String, action: String, rebootType: String?) throws(SimError) {
        guard let server = projects[projectId]?.servers[serverId] else { throw .nova(404, "Instance \(serverId) could not be found.") }
        let time = now()
        switch action {
        case "lock", "unlock":
            projects[projectId]?.servers[serverId]?.locked = action == "lock"
            projects[projectId]?.servers[serverId]?.updated = time
            return
        default:
            break
        }
        let operation: ServerStateModel.Operation
        switch action {
        case "os-start": operation = .start
        case "os-stop": operation = .stop
        case "reboot": operation = rebootType?.uppercased() == "HARD" ? .hardReboot : .reboot
        default: throw .nova(400, "Unsupported action \(action).")
        }
        if let rejection = ServerStateModel.rejection(of: operation, vmState: server.vmState, taskState: server.taskState, locked: server.locked) {
            throw .nova(409, "Cannot '\(action)' instance \(serverId) while it is in status \(server.status): \(rejection.message)")
        }
        begin(operation, projectId: projectId, serverId: serverId, jobId: nil, subJobIndex: 0, at: time)
    }

    // MARK: Tags

    /// Adds or overwrites tags (`create`), enforcing the write rules (≤10, 36/43 characters).
    func createTags(projectId: String, serverId: String, tags: [SimTag]) throws(SimError) {
        guard var server = projects[projectId]?.servers[serverId] else { throw .serverMissing }
        try validateTags(tags, existing: server.tags)
        for tag in tags {
            if let index = server.tags.firstIndex(where: { $0.key == tag.key }) {
                server.tags[index].value = tag.value
            } else {
                server.tags.append(tag)
            }
        }
        server.updated = now()
        projects[projectId]?.servers[serverId] = server
    }

    /// Deletes tags whose key matches and whose value matches when one is given; idempotent.
    func deleteTags(projectId: String, serverId: String, tags: [(key: String, value: String?)]) throws(SimError) {
        guard var server = projects[projectId]?.servers[serverId] else { throw .serverMissing }
        for tag in tags {
            guard !tag.key.isEmpty, tag.key.count <= 127, (tag.value?.count ?? 0) <= 255 else {
                throw SimError.tagCharset.with(message: "Tag key must be 1-127 characters and value at most 255.")
            }
        }
        server.tags.removeAll { existing in
            tags.contains { $0.key == existing.key && ($0.value == nil || $0.value == "" || $0.value == existing.value) }
        }
        server.updated = now()
        projects[projectId]?.servers[serverId] = server
    }

    /// The write rules of seed S1 T5-76: ≤10 tags, key ≤36 of `A-Z a-z 0-9 - _` (and CJK), value
    /// ≤43 of the same plus `.`, keys unique in the request.
    func validateTags(_ tags: [SimTag], existing: [SimTag]) throws(SimError) {
        var seen = Set<String>()
        for tag in tags {
            guard seen.insert(tag.key).inserted else { throw SimError.duplicateTagKey.with(message: "The tag key \(tag.key) is duplicated.") }
            guard !tag.key.isEmpty, tag.key.count <= 36, tag.key.unicodeScalars.allSatisfy({ Self.isTagCharacter($0, allowDot: false) }) else {
                throw SimError.tagCharset.with(message: "Invalid tag key '\(tag.key)': 1-36 characters of A-Z a-z 0-9 - _.")
            }
            guard tag.value.count <= 43, tag.value.unicodeScalars.allSatisfy({ Self.isTagCharacter($0, allowDot: true) }) else {
                throw SimError.tagCharset.with(message: "Invalid tag value '\(tag.value)': at most 43 characters of A-Z a-z 0-9 - _ .")
            }
        }
        let merged = Set(existing.map(\.key)).union(seen)
        guard merged.count <= 10 else { throw SimError.tooManyTags.with(message: "An ECS can have at most 10 tags; this would make \(merged.count).") }
    }

    static func isTagCharacter(_ scalar: Unicode.Scalar, allowDot: Bool) -> Bool {
        switch scalar.value {
        case 0x41...0x5A, 0x61...0x7A, 0x30...0x39, 0x2D, 0x5F, 0x4E00...0x9FFF: return true
        case 0x2E: return allowDot
        default: return false
        }
    }

    func validateName(_ name: String, count: Int) throws(SimError) {
        let limit = count > 1 ? 59 : 128
        guard !name.isEmpty, name.count <= limit else { throw SimError.nameTooLong.with(message: "The ECS name must be 1-\(limit) characters.") }
        guard name.unicodeScalars.allSatisfy({ Self.isTagCharacter($0, allowDot: true) && $0.value < 0x4E00 }) else {
            throw SimError.nameInvalid.with(message: "The ECS name may contain only letters, digits, _, - and .")
        }
    }
}
