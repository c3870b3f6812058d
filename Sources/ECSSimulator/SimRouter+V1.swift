import ECSSigning
import Foundation

/// The ECS v1 routes (`/v1/{project_id}/…`), with the paths of both the API reference
/// (`/servers/…` for tags) and the official SDK (`/cloudservers/…`).
extension SimulatedRegion {
    func routeV1(_ context: APIContext, operation: inout String) throws(SimError) -> SimHTTPResponse {
        let s = context.segments
        let method = context.request.method
        let family = s.first ?? ""
        guard family == "cloudservers" || family == "servers" || family == "jobs" else { throw Self.noSuchAPI }
        switch (method, Array(s.dropFirst())) {
        case ("GET", let rest) where family == "jobs" && rest.count == 1:
            operation = "ShowJob"
            return try showJob(context, jobId: rest[0])
        case ("POST", []) where family == "cloudservers":
            operation = "CreatePostPaidServers"
            return try create(context)
        case ("POST", ["delete"]) where family == "cloudservers":
            operation = "DeleteServers"
            return try batchCall(context, operation: &operation)
        case ("POST", ["action"]) where family == "cloudservers":
            operation = "BatchServerAction"
            return try batchCall(context, operation: &operation)
        case ("GET", ["detail"]) where family == "cloudservers":
            operation = "ListServersDetails"
            return try listCloudServers(context)
        case ("GET", ["limits"]) where family == "cloudservers":
            operation = "ShowServerLimits"
            return limits(context)
        case ("GET", ["flavors"]) where family == "cloudservers":
            operation = "ListFlavors"
            return listFlavors(context)
        case ("GET", ["tags"]):
            operation = "ListServerTags"
            return projectTags(context)
        case ("POST", ["resource_instances", "action"]):
            operation = "ListServersByTag"
            return try tagQuery(context, operation: &operation)
        case ("POST", let rest) where rest.count == 3 && rest[1] == "tags" && rest[2] == "action":
            operation = "BatchServerTagsAction"
            return try tagAction(context, serverId: rest[0], operation: &operation)
        case ("GET", let rest) where rest.count == 2 && rest[1] == "tags":
            operation = "ShowServerTags"
            return try serverTags(context, serverId: rest[0])
        case ("GET", let rest) where rest.count == 1 && family == "cloudservers":
            operation = "ShowServer"
            return try showCloudServer(context, serverId: rest[0])
        default:
            throw Self.noSuchAPI
        }
    }

    /// A v1 path or method no API answers (404; see ``SimError/routeMissing``).
    static let noSuchAPI = SimError.routeMissing

    // MARK: Jobs

    func showJob(_ context: APIContext, jobId: String) throws(SimError) -> SimHTTPResponse {
        let time = now()
        guard let job = jobs[jobId], job.projectId == context.projectId else { throw .invalidJob }
        var json = JSONWriter(capacity: 512 + job.subJobs.count * 300)
        writeJob(job, at: time, into: &json)
        return .json(200, json)
    }

    // MARK: Create, delete, actions

    func create(_ context: APIContext) throws(SimError) -> SimHTTPResponse {
        if let replay = try replayed(context) { return replay }
        let body = try jsonBody(context.request)
        guard let server = body["server"] as? [String: Any] else { throw SimError.invalidParameter.with(message: "server is required.") }
        for field in ["imageRef", "flavorRef", "name", "vpcid"] where (server[field] as? String)?.isEmpty ?? true {
            throw SimError.invalidParameter.with(message: "server.\(field) is required.")
        }
        guard let nics = server["nics"] as? [[String: Any]], !nics.isEmpty, nics.allSatisfy({ $0["subnet_id"] is String }) else {
            throw SimError.invalidParameter.with(message: "server.nics must list at least one NIC with a subnet_id.")
        }
        guard let rootVolume = server["root_volume"] as? [String: Any], rootVolume["volumetype"] is String else {
            throw SimError.invalidParameter.with(message: "server.root_volume.volumetype is required.")
        }
        var tags: [SimTag] = []
        if let serverTags = server["server_tags"] as? [[String: Any]] {
            tags += serverTags.map { SimTag(key: $0["key"] as? String ?? "", value: $0["value"] as? String ?? "") }
        }
        if let dotted = server["tags"] as? [String] {
            tags += dotted.map { text in
                guard let dot = text.firstIndex(of: ".") else { return SimTag(key: text, value: "") }
                return SimTag(key: String(text[..<dot]), value: String(text[text.index(after: dot)...]))
            }
        }
        let count = (server["count"] as? Int) ?? 1
        let spec = CreateSpec(
            name: server["name"] as? String ?? "", flavorId: server["flavorRef"] as? String ?? "", imageRef: server["imageRef"] as? String ?? "",
            availabilityZone: server["availability_zone"] as? String, count: count, tags: tags,
            metadata: (server["metadata"] as? [String: String]) ?? [:], description: server["description"] as? String ?? "",
            keyName: server["key_name"] as? String)
        if body["dry_run"] as? Bool == true {
            try dryRunCreate(context.projectId, spec: spec)
            return SimHTTPResponse(status: 202, headers: [("Content-Type", "application/json")], body: Array("{}".utf8))
        }
        let result = try createServers(projectId: context.projectId, spec: spec)
        var json = JSONWriter()
        json.object { json in
            json.field("job_id", result.jobId)
            json.field("serverIds", result.serverIds)
        }
        return remember(context, .json(200, json))
    }

    /// Runs the create checks without creating anything.
    private func dryRunCreate(_ projectId: String, spec: CreateSpec) throws(SimError) {
        let snapshot = (projects, jobs, events, random, faults, stuckJobs, failingJobs)
        defer { (projects, jobs, events, random, faults, stuckJobs, failingJobs) = snapshot }
        _ = try createServers(projectId: projectId, spec: spec)
    }

    func batchCall(_ context: APIContext, operation: inout String) throws(SimError) -> SimHTTPResponse {
        let body = try jsonBody(context.request)
        let kind: ServerStateModel.Operation
        let payload: [String: Any]?
        if context.segments.last == "delete" {
            kind = .delete
            payload = body
        } else if let start = body["os-start"] as? [String: Any] {
            kind = .start
            payload = start
            operation = "BatchStartServers"
        } else if let stop = body["os-stop"] as? [String: Any] {
            kind = .stop
            payload = stop
            operation = "BatchStopServers"
            if let type = stop["type"] as? String, !["SOFT", "HARD"].contains(type) {
                throw SimError.invalidParameter.with(message: "os-stop.type must be SOFT or HARD.")
            }
        } else if let reboot = body["reboot"] as? [String: Any] {
            operation = "BatchRebootServers"
            guard let type = reboot["type"] as? String, ["SOFT", "HARD"].contains(type) else {
                throw SimError.invalidParameter.with(message: "reboot.type is required: SOFT or HARD.")
            }
            kind = type == "HARD" ? .hardReboot : .reboot
            payload = reboot
        } else {
            throw SimError.invalidParameter.with(message: "the body must hold one of os-start, os-stop, reboot.")
        }
        // `X-Client-Token` is documented for creation only (seed S3); on these calls the replay is
        // the simulator's assumption, which the `clientTokenReplay` fault turns off.
        let replay = faults.clientTokenReplay
        if replay, let replayed = try replayed(context) { return replayed }
        guard let servers = payload?["servers"] as? [[String: Any]] else {
            throw SimError.invalidParameter.with(message: "servers is required.")
        }
        let ids = servers.compactMap { $0["id"] as? String }
        guard ids.count == servers.count else { throw SimError.invalidParameter.with(message: "every server needs an id.") }
        let jobId = try batch(kind, projectId: context.projectId, serverIds: ids)
        var json = JSONWriter()
        json.object { json in json.field("job_id", jobId) }
        return replay ? remember(context, .json(200, json)) : .json(200, json)
    }

    // MARK: Listing

    /// `GET /v1/{project_id}/cloudservers/detail`: `offset` is a page number from 1, `limit` ≤ 1000
    /// (default 25); `count` is the number of matches; newest first, as the Nova listing (not in the
    /// seeds: the simulator's choice).
    func listCloudServers(_ context: APIContext) throws(SimError) -> SimHTTPResponse {
        _ = now()
        let request = context.request
        let limit = Int(request.queryValue("limit") ?? "25") ?? -1
        guard (0...1000).contains(limit) else { throw SimError.invalidParameter.with(message: "limit must be between 0 and 1000.") }
        var page = Int(request.queryValue("offset") ?? "1") ?? -1
        guard page >= 0 else { throw SimError.invalidParameter.with(message: "offset must be a page number of 1 or more.") }
        page = max(page, 1)
        let filter = try ServerFilter(request: request)
        guard let project = projects[context.projectId] else { throw .forbidden }
        var matched = 0
        var json = JSONWriter(capacity: limit * 2600 + 64)
        json.object { json in
            json.key("servers")
            json.array { json in
                let first = (page - 1) * limit
                for id in project.listingOrder {
                    guard let server = project.servers[id], filter.matches(server) else { continue }
                    if matched >= first && matched < first + limit { writeCloudServer(server, projectId: context.projectId, into: &json) }
                    matched += 1
                }
            }
            json.field("count", matched)
        }
        return .json(200, json)
    }

    func showCloudServer(_ context: APIContext, serverId: String) throws(SimError) -> SimHTTPResponse {
        _ = now()
        guard let server = projects[context.projectId]?.servers[serverId] else { throw .serverMissing }
        var json = JSONWriter(capacity: 3000)
        json.object { json in
            json.key("server")
            writeCloudServer(server, projectId: context.projectId, into: &json)
        }
        return .json(200, json)
    }

    func limits(_ context: APIContext) -> SimHTTPResponse {
        var json = JSONWriter()
        if let project = projects[context.projectId] {
            json.object { json in
                json.key("absolute")
                writeAbsoluteLimits(project, into: &json)
            }
        }
        return .json(200, json)
    }

    /// With `availability_zone`, only flavors orderable there (normal, obt, promotion) are listed.
    func listFlavors(_ context: APIContext) -> SimHTTPResponse {
        let az = context.request.queryValue("availability_zone").flatMap { $0.isEmpty ? nil : $0 }
        var json = JSONWriter(capacity: flavorOrder.count * 900)
        json.object { json in
            json.key("flavors")
            json.array { json in
                for id in flavorOrder {
                    guard let flavor = flavors[id] else { continue }
                    if let az, !flavor.isOrderable(in: az) { continue }
                    writeFlavor(flavor, projectId: context.projectId, base: context.base, into: &json)
                }
            }
        }
        return .json(200, json)
    }

    // MARK: Tags

    func projectTags(_ context: APIContext) -> SimHTTPResponse {
        var values: [String: Set<String>] = [:]
        for server in projects[context.projectId]?.servers.values ?? [:].values {
            for tag in server.tags { values[tag.key, default: []].insert(tag.value) }
        }
        var json = JSONWriter()
        json.object { json in
            json.key("tags")
            json.array { json in
                for key in values.keys.sorted() {
                    json.object { json in
                        json.field("key", key)
                        json.field("values", values[key, default: []].sorted())
                    }
                }
            }
        }
        return .json(200, json)
    }

    func serverTags(_ context: APIContext, serverId: String) throws(SimError) -> SimHTTPResponse {
        guard let server = projects[context.projectId]?.servers[serverId] else { throw .serverMissing }
        var json = JSONWriter()
        json.object { json in
            json.key("tags")
            json.array { json in
                for tag in server.tags {
                    json.object { json in
                        json.field("key", tag.key)
                        json.field("value", tag.value)
                    }
                }
            }
        }
        return .json(200, json)
    }

    func tagAction(_ context: APIContext, serverId: String, operation: inout String) throws(SimError) -> SimHTTPResponse {
        let body = try jsonBody(context.request)
        guard let tagList = body["tags"] as? [[String: Any]] else { throw SimError.invalidParameter.with(message: "tags is required.") }
        switch body["action"] as? String {
        case "create":
            operation = "BatchCreateServerTags"
            try createTags(
                projectId: context.projectId, serverId: serverId,
                tags: tagList.map { SimTag(key: $0["key"] as? String ?? "", value: $0["value"] as? String ?? "") })
        case "delete":
            operation = "BatchDeleteServerTags"
            try deleteTags(projectId: context.projectId, serverId: serverId, tags: tagList.map { ($0["key"] as? String ?? "", $0["value"] as? String) })
        default:
            throw SimError.invalidParameter.with(message: "action must be create or delete (lower case).")
        }
        return SimHTTPResponse(status: 204)
    }

    /// `resource_instances/action`: `filter` pages by string `limit`/`offset`; `count` only counts.
    func tagQuery(_ context: APIContext, operation: inout String) throws(SimError) -> SimHTTPResponse {
        let body = try jsonBody(context.request)
        let action = body["action"] as? String
        guard action == "filter" || action == "count" else { throw SimError.invalidParameter.with(message: "action must be filter or count.") }
        if action == "count" { operation = "CountServersByTag" }
        func filters(_ name: String) throws(SimError) -> [(key: String, values: [String])] {
            guard let raw = body[name] else { return [] }
            if let keys = raw as? [String] { return keys.map { ($0, []) } }
            guard let list = raw as? [[String: Any]] else { throw SimError.invalidParameter.with(message: "\(name) must be a list of {key, values}.") }
            var seen = Set<String>()
            var result: [(key: String, values: [String])] = []
            for item in list {
                guard let key = item["key"] as? String, !key.isEmpty, key.count <= 127, seen.insert(key).inserted else {
                    throw SimError.invalidParameter.with(message: "\(name): every key must be 1-127 characters and unique.")
                }
                let values = item["values"] as? [String] ?? []
                guard values.allSatisfy({ $0.count <= 255 }), Set(values).count == values.count else {
                    throw SimError.invalidParameter.with(message: "\(name): values must be unique and at most 255 characters.")
                }
                result.append((key, values))
            }
            return result
        }
        let tags = try filters("tags")
        let notTags = try filters("not_tags")
        let nameMatch = (body["matches"] as? [[String: Any]])?.first { $0["key"] as? String == "resource_name" }?["value"] as? String
        func number(_ name: String, default value: Int, max: Int) throws(SimError) -> Int {
            guard let raw = body[name] else { return value }
            let text = raw as? String ?? (raw as? Int).map(String.init) ?? ""
            guard let parsed = Int(text), parsed >= 0, parsed <= max else {
                throw SimError.invalidParameter.with(message: "\(name) must be a number string between 0 and \(max).")
            }
            return parsed
        }
        let limit = try number("limit", default: 1000, max: 1000)
        let offset = try number("offset", default: 0, max: Int.max)
        guard let project = projects[context.projectId] else { throw .forbidden }
        func has(_ server: SimServer, _ filter: (key: String, values: [String])) -> Bool {
            server.tags.contains { $0.key == filter.key && (filter.values.isEmpty || filter.values.contains($0.value)) }
        }
        var total = 0
        var json = JSONWriter(capacity: action == "filter" ? limit * 200 + 64 : 32)
        json.object { json in
            if action == "filter" {
                json.key("resources")
                json.array { json in
                    for id in project.order {
                        guard let server = project.servers[id], tags.allSatisfy({ has(server, $0) }), !notTags.contains(where: { has(server, $0) }),
                            nameMatch.map({ server.name.contains($0) }) ?? true
                        else { continue }
                        if total >= offset && total < offset + limit {
                            json.object { json in
                                json.field("resource_id", server.id)
                                json.field("resource_detail", nil as String?)
                                json.key("tags")
                                json.array { json in
                                    for tag in server.tags {
                                        json.object { json in
                                            json.field("key", tag.key)
                                            json.field("value", tag.value)
                                        }
                                    }
                                }
                                json.field("resource_name", server.name)
                            }
                        }
                        total += 1
                    }
                }
            } else {
                total = project.order.reduce(0) { count, id in
                    guard let server = project.servers[id] else { return count }
                    let matches = tags.allSatisfy({ has(server, $0) }) && !notTags.contains(where: { has(server, $0) }) && (nameMatch.map { server.name.contains($0) } ?? true)
                    return count + (matches ? 1 : 0)
                }
            }
            json.field("total_count", total)
        }
        return .json(200, json)
    }
}

/// The server filters shared by the v1 and Nova listings.
struct ServerFilter {
    var status: String?
    var name: String?
    var flavor: String?
    /// Nova 1D tag strings (`key=value`) a server must all carry.
    var tags: [String]
    var notTags: [String]
    var changesSince: Double?
    /// Nothing matches (a Nova `status` outside the documented options below microversion 2.38).
    var matchesNothing = false

    /// An unparseable `changes-since` is refused with 400 `Ecs.0005` (a Nova fault on Nova routes).
    init(request: SimHTTPRequest) throws(SimError) {
        status = request.queryValue("status").map { $0.uppercased() }
        name = request.queryValue("name")
        flavor = request.queryValue("flavor")
        tags = request.queryValue("tags").map { $0.split(separator: ",").map(String.init) } ?? []
        notTags = request.queryValue("not-tags").map { $0.split(separator: ",").map(String.init) } ?? []
        if let since = request.queryValue("changes-since") {
            guard let time = Self.parseTime(since) else {
                throw SimError.invalidParameter.with(
                    message: "changes-since \(since) is not a time in the format CCYY-MM-DDThh:mm:ss+/-hh:mm (ISO 8601, e.g. 2018-01-17T03:03:32Z).")
            }
            changesSince = time
        }
    }

    func matches(_ server: SimServer) -> Bool {
        if matchesNothing { return false }
        if let status, server.status != status { return false }
        if let name, !server.name.contains(name) { return false }
        if let flavor, !server.flavorId.contains(flavor) { return false }
        if !tags.isEmpty {
            let carried = Set(server.tags.map(\.novaString))
            if !tags.allSatisfy(carried.contains) { return false }
        }
        if !notTags.isEmpty {
            let carried = Set(server.tags.map(\.novaString))
            if notTags.allSatisfy(carried.contains) { return false }
        }
        // "ECSs with statuses updated later than the timestamp" (seed S1 §6.2.4 T6-31): strictly later.
        if let changesSince, server.updated <= changesSince { return false }
        return true
    }

    /// Parses `CCYY-MM-DDThh:mm:ss` with an optional fraction and a zone `Z`, `+hh:mm`, `-hh:mm`
    /// (or `±hhmm`, `±hh`) — the format of seed S1 §6.2.4 T6-31 / §6.2.5 T6-36 — into Unix
    /// seconds, the offset applied (`10:30:00+01:00` is 09:30 UTC). No zone at all is read as UTC
    /// (the simulator's choice). Anything else is nil.
    static func parseTime(_ text: String) -> Double? {
        let bytes = Array(text.utf8)
        func number(_ from: Int, _ count: Int) -> Int64? {
            guard from + count <= bytes.count else { return nil }
            var value: Int64 = 0
            for byte in bytes[from..<(from + count)] {
                guard byte >= 48 && byte <= 57 else { return nil }
                value = value * 10 + Int64(byte - 48)
            }
            return value
        }
        func byte(_ index: Int) -> UInt8? { index < bytes.count ? bytes[index] : nil }
        guard bytes.count >= 19, byte(4) == UInt8(ascii: "-"), byte(7) == UInt8(ascii: "-"), byte(10) == UInt8(ascii: "T") || byte(10) == UInt8(ascii: "t"),
            byte(13) == UInt8(ascii: ":"), byte(16) == UInt8(ascii: ":"),
            let year = number(0, 4), let month = number(5, 2), let day = number(8, 2),
            let hour = number(11, 2), let minute = number(14, 2), let second = number(17, 2),
            (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        var index = 19
        var fraction = 0.0
        if byte(index) == UInt8(ascii: ".") {
            index += 1
            var scale = 0.1
            let start = index
            while let digit = byte(index), digit >= 48 && digit <= 57 {
                fraction += Double(digit - 48) * scale
                scale /= 10
                index += 1
            }
            guard index > start else { return nil }
        }
        var offset: Int64 = 0
        switch byte(index) {
        case nil:
            break
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            index += 1
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            let sign: Int64 = byte(index) == UInt8(ascii: "-") ? -1 : 1
            index += 1
            guard let hours = number(index, 2), hours < 24 else { return nil }
            index += 2
            var minutes: Int64 = 0
            if byte(index) == UInt8(ascii: ":") { index += 1 }
            if index < bytes.count {
                guard let parsed = number(index, 2), parsed < 60 else { return nil }
                minutes = parsed
                index += 2
            }
            offset = sign * (hours * 3600 + minutes * 60)
        default:
            return nil
        }
        guard index == bytes.count else { return nil }
        let days = CivilTime.daysFromCivil(year: year, month: month, day: day)
        return Double(days * 86_400 + hour * 3600 + minute * 60 + second - offset) + fraction
    }
}
