import Foundation

/// The scenario-control API under `/_sim/` (no authentication; the simulator listens on loopback).
/// Documented in `docs/simulator.md`.
extension SimulatedRegion {
    func handleAdmin(_ request: SimHTTPRequest, segments: [String]) -> SimHTTPResponse {
        do {
            return try routeAdmin(request, segments: segments)
        } catch let error as SimError {
            return adminError(error.httpStatus, error.message)
        } catch {
            return adminError(400, "\(error)")
        }
    }

    private func adminError(_ status: Int, _ message: String) -> SimHTTPResponse {
        var json = JSONWriter()
        json.object { json in json.field("error", message) }
        return .json(status, json)
    }

    private func ok() -> SimHTTPResponse {
        var json = JSONWriter()
        json.object { json in json.field("ok", true) }
        return .json(200, json)
    }

    private func object(_ request: SimHTTPRequest) throws -> [String: Any] {
        guard !request.body.isEmpty else { return [:] }
        guard let object = try JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any] else {
            throw SimError(400, "", "the body must be a JSON object")
        }
        return object
    }

    private func encodable<T: Encodable>(_ value: T) throws -> SimHTTPResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return SimHTTPResponse(status: 200, headers: [("Content-Type", "application/json")], body: Array(try encoder.encode(value)))
    }

    private func routeAdmin(_ request: SimHTTPRequest, segments: [String]) throws -> SimHTTPResponse {
        switch (request.method, segments) {
        case ("GET", ["state"]):
            let time = now()
            var json = JSONWriter()
            json.object { json in
                json.field("region", configuration.region)
                json.field("availability_zones", configuration.availabilityZones)
                json.field("time", SimTime.format(time, .milliseconds))
                json.field("speed", clock.speed)
                json.field("servers", serverCount())
                json.field("pending_transitions", events.count)
                json.field("jobs", jobs.count)
                json.field("requests_logged", requestLogEnd)
                json.field("sub_job_failures_injected", subJobFailuresInjected.values.reduce(0, +))
                json.key("projects")
                json.array { json in
                    for id in projects.keys.sorted() {
                        json.object { json in
                            json.field("id", id)
                            json.field("name", projects[id]?.name ?? "")
                            json.field("servers", projects[id]?.servers.count ?? 0)
                        }
                    }
                }
                json.field("flavors", flavorOrder)
            }
            return .json(200, json)
        case ("GET", ["requests"]):
            let since = Int(request.queryValue("since") ?? "0") ?? 0
            let records = requests(since: since)
            var json = JSONWriter(capacity: records.count * 120 + 64)
            json.object { json in
                json.key("requests")
                json.array { json in
                    for record in records {
                        json.object { json in
                            json.field("method", record.method)
                            json.field("path", record.path)
                            json.field("status", record.status)
                            json.field("time", record.time)
                            json.field("operation", record.operation)
                            json.field("project_id", record.projectId)
                        }
                    }
                }
                json.field("next", requestLogEnd)
            }
            return .json(200, json)
        case ("DELETE", ["requests"]):
            clearRequestLog()
            return ok()
        case ("GET", ["faults"]):
            return try encodable(faults)
        case ("PUT", ["faults"]):
            setFaults(try JSONDecoder().decode(SimFaults.self, from: Data(request.body.isEmpty ? Array("{}".utf8) : request.body)))
            throttleBuckets.removeAll()
            return try encodable(faults)
        case ("POST", ["jobs", "stick"]):
            faults.stickNextJobs = try object(request)["count"] as? Int ?? 1
            return ok()
        case ("POST", ["jobs", "fail"]):
            let body = try object(request)
            faults.failNextJobs = body["count"] as? Int ?? 1
            faults.failNextJobsCode = body["error_code"] as? String
            return ok()
        case ("POST", ["jobs", "release"]):
            releaseStuckJobs()
            return ok()
        case ("POST", ["clock"]):
            let body = try object(request)
            if let speed = body["speed"] as? Double { setSpeed(speed) }
            if let advance = body["advance"] as? Double { advanceTime(by: advance) }
            var json = JSONWriter()
            json.object { json in
                json.field("time", SimTime.format(now(), .milliseconds))
                json.field("speed", clock.speed)
            }
            return .json(200, json)
        case ("POST", ["tokens", "revoke"]):
            revokeTokens()
            return ok()
        case ("GET", let s) where s.count == 3 && s[0] == "projects" && s[2] == "quota":
            guard let quota = quota(projectId: s[1]) else { throw SimError(404, "", "unknown project \(s[1])") }
            return try encodable(quota)
        case ("PUT", let s) where s.count == 3 && s[0] == "projects" && s[2] == "quota":
            guard var quota = quota(projectId: s[1]) else { throw SimError(404, "", "unknown project \(s[1])") }
            let body = try object(request)
            if let value = body["instances"] as? Int { quota.instances = value }
            if let value = body["cores"] as? Int { quota.cores = value }
            if let value = body["ramMB"] as? Int ?? body["ram"] as? Int { quota.ramMB = value }
            if let value = body["serverGroups"] as? Int { quota.serverGroups = value }
            if let value = body["securityGroups"] as? Int { quota.securityGroups = value }
            if let value = body["floatingIps"] as? Int { quota.floatingIps = value }
            try setQuota(projectId: s[1], quota: quota)
            return try encodable(quota)
        case ("POST", let s) where s.count == 3 && s[0] == "projects" && s[2] == "servers":
            let body = try object(request)
            guard projects[s[1]] != nil else { throw SimError(404, "", "unknown project \(s[1])") }
            let tags = (body["tags"] as? [String: String] ?? [:]).sorted { $0.key < $1.key }.map { SimTag(key: $0.key, value: $0.value) }
            let id = seedServer(
                projectId: s[1], name: body["name"] as? String ?? "sim-server", flavorId: body["flavor"] as? String ?? flavorOrder.first ?? "",
                availabilityZone: body["availability_zone"] as? String, running: body["running"] as? Bool ?? true, tags: tags,
                id: body["id"] as? String)
            var json = JSONWriter()
            json.object { json in json.field("id", id) }
            return .json(201, json)
        case ("GET", let s) where s.count == 4 && s[0] == "projects" && s[2] == "servers":
            guard let server = inspectServer(projectId: s[1], serverId: s[3]) else { throw SimError(404, "", "unknown server \(s[3])") }
            var json = JSONWriter()
            json.object { json in
                json.field("status", server.status)
                json.field("vm_state", server.vmState)
                json.field("task_state", server.taskState)
                json.field("tags", server.tags.map(\.novaString))
            }
            return .json(200, json)
        case ("PUT", let s) where s.count == 5 && s[0] == "projects" && s[2] == "servers" && s[4] == "state":
            let body = try object(request)
            let taskState: String?? = body.keys.contains("task_state") ? .some(body["task_state"] as? String) : .none
            try setServerState(
                projectId: s[1], serverId: s[3], vmState: body["vm_state"] as? String, taskState: taskState, locked: body["locked"] as? Bool,
                hostStatus: body["host_status"] as? String)
            return ok()
        case ("PUT", let s) where s.count == 3 && s[0] == "flavors" && s[2] == "sale":
            let body = try object(request)
            try setSaleState(flavorId: s[1], az: body["az"] as? String, state: body["status"] as? String)
            var json = JSONWriter()
            json.object { json in json.field("os_extra_specs", flavors[s[1]]?.extraSpecs ?? [:]) }
            return .json(200, json)
        case ("PUT", let s) where s.count == 3 && s[0] == "flavors" && s[2] == "extra_specs":
            let body = try object(request)
            guard let key = body["key"] as? String else { throw SimError(400, "", "key is required") }
            try setExtraSpec(flavorId: s[1], key: key, value: body["value"] as? String)
            return ok()
        default:
            throw SimError(404, "", "no admin route \(request.method) /_sim/\(segments.joined(separator: "/"))")
        }
    }
}
