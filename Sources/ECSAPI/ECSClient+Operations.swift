import ECSSigning
import Foundation
import NIOHTTP1

/// The ECS calls the loops and the demo use. Paths and fields follow the API reference (seed S1);
/// see `shared/spec/ecs-api.md` §1 for the index.
extension ECSClient {
    /// The most servers one batch call may name.
    public static let maxServersPerBatch = 1000

    // MARK: Servers

    /// Nova server details, marker-paged (`GET /v2.1/{project_id}/servers/detail`), sent with the
    /// configured microversion (2.26 brings `tags`).
    public func serverDetails(_ query: ServerQuery = ServerQuery()) -> ECSPages<Server> {
        novaServerDetailPages(query) { response in
            let page = try decode(ServerDetailPage.self, from: response, operation: "NovaListServersDetails")
            return (page.servers, page.hasNextLink)
        }
    }

    /// The marker paging of Nova `servers/detail`, whatever decodes each page into servers and
    /// whether a next page is linked.
    func novaServerDetailPages(
        _ query: ServerQuery, decodePage: @escaping @Sendable (APIResponse) throws -> (servers: [Server], hasNextLink: Bool)
    ) -> ECSPages<Server> {
        let limit = configuration.pageSize
        return ECSPages { cursor in
            var items = novaQueryItems(query)
            items.append(.init("limit", String(limit)))
            if case .marker(let marker) = cursor { items.append(.init("marker", marker)) }
            let response = try await send(
                APIRequest(
                    operation: "NovaListServersDetails", method: .GET, path: "\(nova)/servers/detail", query: items,
                    headers: microversionHeaders))
            let (servers, hasNextLink) = try decodePage(response)
            // The API links a next page while more servers follow (digest §2.10): no link, no page.
            let more = hasNextLink && !servers.isEmpty
            return (servers, more ? servers.last.map { .marker($0.id) } : nil)
        }
    }

    /// v1 server details, paged by page number (`GET /v1/{project_id}/cloudservers/detail`,
    /// `offset` = page number from 1).
    public func cloudServerDetails(_ query: ServerQuery = ServerQuery()) -> ECSPages<Server> {
        let limit = configuration.pageSize
        return ECSPages { cursor in
            var pageNumber = 1
            if case .page(let number) = cursor { pageNumber = number }
            var items: [SignableRequest.QueryItem] = [.init("limit", String(limit)), .init("offset", String(pageNumber))]
            if let status = query.status { items.append(.init("status", status)) }
            if let name = query.name { items.append(.init("name", name)) }
            if let flavor = query.flavor { items.append(.init("flavor", flavor)) }
            if let tag = query.tags.first { items.append(.init("tags", tag)) }
            if let tag = query.notTags.first { items.append(.init("not-tags", tag)) }
            let response = try await send(APIRequest(operation: "ListServersDetails", method: .GET, path: "\(v1)/cloudservers/detail", query: items))
            let page = try decode(ServerDetailPage.self, from: response, operation: "ListServersDetails")
            let seen = (pageNumber - 1) * limit + page.servers.count
            let more = !page.servers.isEmpty && (page.count.map { seen < $0 } ?? (page.servers.count >= limit))
            return (page.servers, more ? .page(pageNumber + 1) : nil)
        }
    }

    /// One server, Nova view (`GET /v2.1/{project_id}/servers/{server_id}`).
    public func server(id: String) async throws -> Server {
        let response = try await send(
            APIRequest(operation: "NovaShowServer", method: .GET, path: "\(nova)/servers/\(PercentEncoding.encode(id))", headers: microversionHeaders))
        return try decode(ServerEnvelope.self, from: response, operation: "NovaShowServer").server
    }

    /// One server, v1 view (`GET /v1/{project_id}/cloudservers/{server_id}`).
    public func cloudServer(id: String) async throws -> Server {
        let response = try await send(APIRequest(operation: "ShowServer", method: .GET, path: "\(v1)/cloudservers/\(PercentEncoding.encode(id))"))
        return try decode(ServerEnvelope.self, from: response, operation: "ShowServer").server
    }

    // MARK: Tags

    /// Servers carrying all of `tags` and none of `notTags`, offset-paged
    /// (`POST /v1/{project_id}/servers/resource_instances/action`, action `filter`).
    public func serversByTag(tags: [TagFilter] = [], notTags: [TagFilter] = [], matches: [ResourceMatch] = []) -> ECSPages<TaggedResource> {
        let limit = configuration.pageSize
        return ECSPages { cursor in
            var offset = 0
            if case .offset(let value) = cursor { offset = value }
            let body = TagQueryBody(
                action: "filter", tags: tags.isEmpty ? nil : tags, notTags: notTags.isEmpty ? nil : notTags,
                matches: matches.isEmpty ? nil : matches, limit: String(limit), offset: String(offset))
            let response = try await send(
                APIRequest(
                    operation: "ListServersByTag", method: .POST, path: "\(v1)/servers/resource_instances/action",
                    body: try encode(body), clientToken: ECSClient.makeClientToken()))
            let page = try decode(TaggedResourcePage.self, from: response, operation: "ListServersByTag")
            let next = offset + page.resources.count
            return (page.resources, !page.resources.isEmpty && next < page.totalCount ? .offset(next) : nil)
        }
    }

    /// How many servers match (action `count`).
    public func countServersByTag(tags: [TagFilter] = [], notTags: [TagFilter] = [], matches: [ResourceMatch] = []) async throws -> Int {
        let body = TagQueryBody(
            action: "count", tags: tags.isEmpty ? nil : tags, notTags: notTags.isEmpty ? nil : notTags,
            matches: matches.isEmpty ? nil : matches)
        let response = try await send(
            APIRequest(
                operation: "CountServersByTag", method: .POST, path: "\(v1)/servers/resource_instances/action",
                body: try encode(body), clientToken: ECSClient.makeClientToken()))
        return try decode(TaggedResourcePage.self, from: response, operation: "CountServersByTag").totalCount
    }

    /// Adds (or overwrites) 2D tags on a server (`POST …/servers/{id}/tags/action`, `create`).
    public func addServerTags(serverId: String, tags: [ServerTag]) async throws {
        let body = TagActionBody(action: "create", tags: tags.map { TagActionItem(key: $0.key, value: $0.value) })
        _ = try await send(
            APIRequest(
                operation: "BatchCreateServerTags", method: .POST, path: "\(v1)/servers/\(PercentEncoding.encode(serverId))/tags/action",
                body: try encode(body), clientToken: ECSClient.makeClientToken()))
    }

    /// Deletes 2D tags from a server (`delete`); a nil value deletes the key whatever its value.
    public func deleteServerTags(serverId: String, tags: [(key: String, value: String?)]) async throws {
        let body = TagActionBody(action: "delete", tags: tags.map { TagActionItem(key: $0.key, value: $0.value) })
        _ = try await send(
            APIRequest(
                operation: "BatchDeleteServerTags", method: .POST, path: "\(v1)/servers/\(PercentEncoding.encode(serverId))/tags/action",
                body: try encode(body), clientToken: ECSClient.makeClientToken()))
    }

    /// The 2D tags of one server (`GET /v1/{project_id}/servers/{server_id}/tags`).
    public func serverTags(serverId: String) async throws -> [ServerTag] {
        let response = try await send(
            APIRequest(operation: "ShowServerTags", method: .GET, path: "\(v1)/servers/\(PercentEncoding.encode(serverId))/tags"))
        return try decode(ServerTagList.self, from: response, operation: "ShowServerTags").tags
    }

    /// Every tag key used in the project with its values (`GET /v1/{project_id}/servers/tags`).
    public func projectTags() async throws -> [TagFilter] {
        let response = try await send(APIRequest(operation: "ListServerTags", method: .GET, path: "\(v1)/servers/tags"))
        return try decode(ProjectTagList.self, from: response, operation: "ListServerTags").tags
    }

    // MARK: Actions and jobs

    /// Starts, stops or reboots up to 1,000 servers (`POST /v1/{project_id}/cloudservers/action`).
    ///
    /// - Parameter clientToken: the idempotency token, sent as `X-Client-Token` on every attempt.
    ///   Journal it before the call to recognise the job after a crash.
    /// - Parameter notAfter: no attempt starts at or after this instant and none runs past it (a
    ///   shard's lease deadline in cluster mode).
    public func batchAction(
        _ action: BatchServerAction, serverIds: [String], clientToken: String = ECSClient.makeClientToken(), notAfter: ContinuousClock.Instant? = nil
    ) async throws -> JobAccepted {
        try checkBatch(serverIds, operation: action.operationName)
        let body = BatchActionBody(action: action, servers: serverIds.map(ServerIdentifier.init(id:)))
        let response = try await send(
            APIRequest(
                operation: action.operationName, method: .POST, path: "\(v1)/cloudservers/action", body: try encode(body),
                clientToken: clientToken, notAfter: notAfter))
        return try decodeJobAccepted(response, operation: action.operationName)
    }

    /// The status of an asynchronous job (`GET /v1/{project_id}/jobs/{job_id}`).
    public func job(id: String) async throws -> Job {
        let response = try await send(APIRequest(operation: "ShowJob", method: .GET, path: "\(v1)/jobs/\(PercentEncoding.encode(id))"))
        return try decode(Job.self, from: response, operation: "ShowJob")
    }

    /// Creates servers, pay-per-use (`POST /v1/{project_id}/cloudservers`). With `dryRun` the API only
    /// checks the request and answers 202 without a job; the result is then nil.
    @discardableResult
    public func createServers(_ server: ServerCreateRequest, dryRun: Bool = false, clientToken: String = ECSClient.makeClientToken()) async throws -> JobAccepted? {
        let body = CreateServersBody(server: server, dryRun: dryRun ? true : nil)
        let response = try await send(
            APIRequest(operation: "CreatePostPaidServers", method: .POST, path: "\(v1)/cloudservers", body: try encode(body), clientToken: clientToken))
        if dryRun { return nil }
        return try decodeJobAccepted(response, operation: "CreatePostPaidServers")
    }

    /// Deletes up to 1,000 servers (`POST /v1/{project_id}/cloudservers/delete`).
    public func deleteServers(
        ids: [String], deletePublicIP: Bool? = nil, deleteVolume: Bool? = nil, clientToken: String = ECSClient.makeClientToken()
    ) async throws -> JobAccepted {
        try checkBatch(ids, operation: "DeleteServers")
        let body = DeleteServersBody(servers: ids.map(ServerIdentifier.init(id:)), deletePublicip: deletePublicIP, deleteVolume: deleteVolume)
        let response = try await send(
            APIRequest(operation: "DeleteServers", method: .POST, path: "\(v1)/cloudservers/delete", body: try encode(body), clientToken: clientToken))
        return try decodeJobAccepted(response, operation: "DeleteServers")
    }

    // MARK: Quotas and flavors

    /// The tenant's quotas and usage (`GET /v1/{project_id}/cloudservers/limits`).
    public func limits() async throws -> TenantLimits {
        let response = try await send(APIRequest(operation: "ShowServerLimits", method: .GET, path: "\(v1)/cloudservers/limits"))
        return try decode(TenantLimits.self, from: response, operation: "ShowServerLimits")
    }

    /// Flavors with `os_extra_specs` (`GET /v1/{project_id}/cloudservers/flavors`). With an AZ, the
    /// API lists only flavors orderable there (normal, obt, promotion).
    public func flavors(availabilityZone: String? = nil) async throws -> [Flavor] {
        let query: [SignableRequest.QueryItem] = availabilityZone.map { [.init("availability_zone", $0)] } ?? []
        let response = try await send(APIRequest(operation: "ListFlavors", method: .GET, path: "\(v1)/cloudservers/flavors", query: query))
        return try decode(FlavorList.self, from: response, operation: "ListFlavors").flavors
    }

    /// The region's availability zones (`GET /v2.1/{project_id}/os-availability-zone`), available ones only.
    public func availabilityZones() async throws -> [String] {
        let response = try await send(APIRequest(operation: "NovaListAvailabilityZones", method: .GET, path: "\(nova)/os-availability-zone"))
        let list = try decode(AvailabilityZoneList.self, from: response, operation: "NovaListAvailabilityZones")
        return list.availabilityZoneInfo.filter { $0.zoneState?.available ?? true }.map(\.zoneName)
    }

    // MARK: Instance actions

    /// The operation history of one server (`GET /v2.1/{project_id}/servers/{id}/os-instance-actions`).
    public func instanceActions(serverId: String) async throws -> [InstanceAction] {
        let response = try await send(
            APIRequest(
                operation: "NovaListInstanceActions", method: .GET, path: "\(nova)/servers/\(PercentEncoding.encode(serverId))/os-instance-actions",
                headers: microversionHeaders))
        return try decode(InstanceActionList.self, from: response, operation: "NovaListInstanceActions").instanceActions
    }

    /// One operation of a server with its events.
    public func instanceAction(serverId: String, requestId: String) async throws -> InstanceAction {
        let response = try await send(
            APIRequest(
                operation: "NovaShowInstanceAction", method: .GET,
                path: "\(nova)/servers/\(PercentEncoding.encode(serverId))/os-instance-actions/\(PercentEncoding.encode(requestId))",
                headers: microversionHeaders))
        return try decode(InstanceActionEnvelope.self, from: response, operation: "NovaShowInstanceAction").instanceAction
    }

    // MARK: Helpers

    var microversionHeaders: [SignableRequest.Header] {
        [
            .init("X-OpenStack-Nova-API-Version", configuration.novaMicroversion),
            .init("OpenStack-API-Version", "compute \(configuration.novaMicroversion)"),
        ]
    }

    func novaQueryItems(_ query: ServerQuery) -> [SignableRequest.QueryItem] {
        var items: [SignableRequest.QueryItem] = []
        if let status = query.status { items.append(.init("status", status)) }
        if let name = query.name { items.append(.init("name", name)) }
        if let flavor = query.flavor { items.append(.init("flavor", flavor)) }
        if !query.tags.isEmpty { items.append(.init("tags", query.tags.joined(separator: ","))) }
        if !query.notTags.isEmpty { items.append(.init("not-tags", query.notTags.joined(separator: ","))) }
        if let since = query.changesSince { items.append(.init("changes-since", ECSTimestamp.formatSeconds(since))) }
        return items
    }

    func checkBatch(_ ids: [String], operation: String) throws {
        guard !ids.isEmpty else {
            throw ECSError(kind: .invalidRequest, message: "a batch names no server", operation: operation, isRetryable: false)
        }
        guard ids.count <= ECSClient.maxServersPerBatch else {
            throw ECSError(
                kind: .invalidRequest, message: "a batch names \(ids.count) servers; the API allows \(ECSClient.maxServersPerBatch)",
                operation: operation, isRetryable: false)
        }
    }

    /// A `{"job_id"}` answer; a 2xx without one is malformed (throttling hides as 202 + error).
    func decodeJobAccepted(_ response: APIResponse, operation: String) throws -> JobAccepted {
        let accepted = try decode(JobAccepted.self, from: response, operation: operation)
        guard !accepted.jobId.isEmpty else {
            throw ECSError(
                kind: .malformedResponse, httpStatus: response.status, message: "the answer carries an empty job_id",
                requestId: response.requestId, operation: operation, isRetryable: false)
        }
        return accepted
    }
}
