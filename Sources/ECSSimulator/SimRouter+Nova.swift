import Foundation

/// The native OpenStack Nova routes (`/v2.1/{project_id}/…`, and `/v2/…` as an alias), with
/// microversion gating and Nova fault bodies.
extension SimulatedRegion {
    func routeNova(_ context: APIContext, operation: inout String) throws(SimError) -> SimHTTPResponse {
        let request = context.request
        let version = Microversion(
            headerValue: faults.ignoreMicroversion ? nil : request.header("X-OpenStack-Nova-API-Version") ?? request.header("OpenStack-API-Version"))
        switch (request.method, context.segments) {
        case ("GET", ["servers", "detail"]):
            operation = "NovaListServersDetails"
            return try listNovaServers(context, version: version, detail: true)
        case ("GET", ["servers"]):
            operation = "NovaListServers"
            return try listNovaServers(context, version: version, detail: false)
        case ("GET", let s) where s.count == 2 && s[0] == "servers":
            operation = "NovaShowServer"
            _ = now()
            guard let server = projects[context.projectId]?.servers[s[1]] else { throw .nova(404, "Instance \(s[1]) could not be found.") }
            var json = JSONWriter(capacity: 3000)
            json.object { json in
                json.key("server")
                writeNovaServer(server, projectId: context.projectId, base: context.base, version: version, into: &json)
            }
            return .json(200, json)
        case ("POST", let s) where s.count == 3 && s[0] == "servers" && s[2] == "action":
            let body = try jsonBody(request)
            guard let action = body.keys.first, body.count == 1 else { throw .nova(400, "The body must hold exactly one action.") }
            operation = "NovaServerAction"
            let rebootType = (body["reboot"] as? [String: Any])?["type"] as? String
            if action == "reboot", rebootType.map({ !["SOFT", "HARD"].contains($0) }) ?? true {
                throw .nova(400, "reboot.type must be SOFT or HARD.")
            }
            try novaAction(projectId: context.projectId, serverId: s[1], action: action, rebootType: rebootType)
            return SimHTTPResponse(status: 202)
        case ("GET", let s) where s.count >= 3 && s[0] == "servers" && s[2] == "os-instance-actions":
            operation = s.count == 3 ? "NovaListInstanceActions" : "NovaShowInstanceAction"
            return try instanceActions(context, serverId: s[1], requestId: s.count == 4 ? s[3] : nil)
        case ("GET", let s) where s.count == 3 && s[0] == "servers" && s[2] == "tags":
            operation = "NovaListServerTags"
            guard version.atLeast(26) else { throw .nova(404, "The tags API needs microversion 2.26 or later.") }
            guard let server = projects[context.projectId]?.servers[s[1]] else { throw .nova(404, "Instance \(s[1]) could not be found.") }
            var json = JSONWriter()
            json.object { json in json.field("tags", server.tags.map(\.novaString)) }
            return .json(200, json)
        case ("GET", ["limits"]):
            operation = "NovaShowLimits"
            var json = JSONWriter()
            if let project = projects[context.projectId] {
                json.object { json in
                    json.key("limits")
                    json.object { json in
                        json.key("rate")
                        json.array { _ in }
                        json.key("absolute")
                        writeAbsoluteLimits(project, into: &json)
                    }
                }
            }
            return .json(200, json)
        case ("GET", ["os-availability-zone"]):
            operation = "NovaListAvailabilityZones"
            var json = JSONWriter()
            json.object { json in
                json.key("availabilityZoneInfo")
                json.array { json in
                    for zone in configuration.availabilityZones {
                        json.object { json in
                            json.field("hosts", nil as String?)
                            json.key("zoneState")
                            json.object { json in json.field("available", true) }
                            json.field("zoneName", zone)
                        }
                    }
                }
            }
            return .json(200, json)
        case ("GET", let s) where s.first == "flavors":
            operation = "NovaListFlavors"
            return try novaFlavors(context, segments: Array(s.dropFirst()))
        default:
            throw .nova(404, "The resource could not be found.")
        }
    }

    /// Marker-paged Nova listing: `limit` (default 25, at most 1000), `marker` = last id seen;
    /// `servers_links` with `rel: next` only when more servers follow.
    func listNovaServers(_ context: APIContext, version: Microversion, detail: Bool) throws(SimError) -> SimHTTPResponse {
        _ = now()
        let request = context.request
        guard let limitValue = Int(request.queryValue("limit") ?? "25"), limitValue >= 0 else { throw .nova(400, "limit must be a positive integer.") }
        let limit = min(limitValue, 1000)
        var filter = try ServerFilter(request: request)
        // Seed S1 §6.2.4 T6-31 / §6.2.5 T6-36 `status`: a value outside the listed options gives an
        // empty list in microversion 2.37 (and, the simulator's choice, below it) and HTTP 400 from
        // 2.38 on.
        if let status = filter.status, !Self.filterableStatuses.contains(status) {
            if version.atLeast(38) { throw .nova(400, "Invalid status value \(status).") }
            filter.matchesNothing = true
        }
        guard let project = projects[context.projectId] else { throw .forbidden }
        // Newest first (reverse order of created_at, seed S1 §6.2.4/§6.2.5): `order` is walked
        // backwards, from the server before the marker.
        var startIndex = project.order.count - 1
        if let marker = request.queryValue("marker") {
            guard let index = project.order.firstIndex(of: marker) else { throw .nova(400, "marker [\(marker)] not found") }
            startIndex = index - 1
        }
        var json = JSONWriter(capacity: detail ? limit * 2800 + 256 : limit * 300 + 256)
        var written = 0
        var lastId: String?
        var more = false
        json.object { json in
            json.key("servers")
            json.array { json in
                var index = startIndex
                while index >= 0 {
                    let id = project.order[index]
                    index -= 1
                    guard let server = project.servers[id], filter.matches(server) else { continue }
                    if written == limit {
                        more = true
                        break
                    }
                    if detail {
                        writeNovaServer(server, projectId: context.projectId, base: context.base, version: version, into: &json)
                    } else {
                        json.object { json in
                            json.field("id", server.id)
                            json.field("name", server.name)
                            json.key("links")
                            json.array { json in
                                json.object { json in
                                    json.field("rel", "self")
                                    json.field("href", "\(context.base)/v2.1/\(context.projectId)/servers/\(server.id)")
                                }
                            }
                        }
                    }
                    written += 1
                    lastId = server.id
                }
            }
            if more, let lastId {
                json.key("servers_links")
                json.array { json in
                    json.object { json in
                        json.field("rel", "next")
                        let path = detail ? "servers/detail" : "servers"
                        json.field("href", "\(context.base)/v2.1/\(context.projectId)/\(path)?limit=\(limit)&marker=\(lastId)")
                    }
                }
            }
        }
        return .json(200, json)
    }

    /// The `status` options of seed S1 §6.2.4 T6-31 / §6.2.5 T6-36, exactly.
    static let filterableStatuses: Set<String> = [
        "ACTIVE", "BUILD", "ERROR", "HARD_REBOOT", "MIGRATING", "REBOOT", "REBUILD", "RESIZE", "REVERT_RESIZE", "SHUTOFF", "VERIFY_RESIZE",
    ]

    /// The operation history of a server, newest first; generated servers show their create.
    func instanceActions(_ context: APIContext, serverId: String, requestId: String?) throws(SimError) -> SimHTTPResponse {
        _ = now()
        guard let server = projects[context.projectId]?.servers[serverId] else { throw .nova(404, "Instance \(serverId) could not be found.") }
        var actions = server.actions
        if actions.isEmpty || actions.first?.action != "create" && !actions.contains(where: { $0.action == "create" }) {
            actions.insert(
                SimInstanceAction(
                    action: "create", requestId: "req-" + FleetGenerator.volumeId(for: server.id + "create"), start: server.created,
                    finish: server.launchedAt ?? server.created, event: "compute_build_and_run_instance", result: "Success"), at: 0)
        }
        var json = JSONWriter()
        if let requestId {
            guard let action = actions.first(where: { $0.requestId == requestId }) else {
                throw .nova(404, "Action \(requestId) for instance \(serverId) could not be found.")
            }
            json.object { json in
                json.key("instanceAction")
                writeInstanceAction(action, serverId: serverId, projectId: context.projectId, withEvents: true, into: &json)
            }
        } else {
            json.object { json in
                json.key("instanceActions")
                json.array { json in
                    for action in actions.reversed() {
                        writeInstanceAction(action, serverId: serverId, projectId: context.projectId, withEvents: false, into: &json)
                    }
                }
            }
        }
        return .json(200, json)
    }

    /// Nova flavors: list, detail, one flavor, its extra specs.
    func novaFlavors(_ context: APIContext, segments: [String]) throws(SimError) -> SimHTTPResponse {
        func write(_ flavor: SimFlavor, detail: Bool, into json: inout JSONWriter) {
            json.object { json in
                json.field("id", flavor.id)
                json.field("name", flavor.id)
                json.key("links")
                json.array { json in
                    json.object { json in
                        json.field("rel", "self")
                        json.field("href", "\(context.base)/v2.1/\(context.projectId)/flavors/\(flavor.id)")
                    }
                }
                if detail {
                    json.field("vcpus", flavor.vcpus)
                    json.field("ram", flavor.ramMB)
                    json.field("disk", 0)
                    json.field("swap", "")
                    json.field("OS-FLV-EXT-DATA:ephemeral", 0)
                    json.field("OS-FLV-DISABLED:disabled", false)
                    json.field("rxtx_factor", 1.0)
                    json.field("os-flavor-access:is_public", true)
                }
            }
        }
        var json = JSONWriter()
        switch segments.count {
        case 0:
            json.object { json in
                json.key("flavors")
                json.array { json in
                    for id in flavorOrder { if let flavor = flavors[id] { write(flavor, detail: false, into: &json) } }
                }
            }
        case 1 where segments.first == "detail":
            json.object { json in
                json.key("flavors")
                json.array { json in
                    for id in flavorOrder { if let flavor = flavors[id] { write(flavor, detail: true, into: &json) } }
                }
            }
        case 1:
            guard let flavor = flavors[segments[0]] else { throw .nova(404, "Flavor \(segments[0]) could not be found.") }
            json.object { json in
                json.key("flavor")
                write(flavor, detail: true, into: &json)
            }
        case 2 where segments[1] == "os-extra_specs":
            guard let flavor = flavors[segments[0]] else { throw .nova(404, "Flavor \(segments[0]) could not be found.") }
            json.object { json in json.field("extra_specs", flavor.extraSpecs) }
        default:
            throw .nova(404, "The resource could not be found.")
        }
        return .json(200, json)
    }
}
