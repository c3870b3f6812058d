import ECSSigning
import Foundation

/// One HTTP request as the simulator receives it.
public struct SimHTTPRequest: Sendable {
    public var method: String
    /// The path as sent (percent-escapes intact).
    public var path: String
    /// The query string as sent, without `?`.
    public var rawQuery: String
    public var headers: [SignableRequest.Header]
    public var body: [UInt8]

    public init(method: String, path: String, rawQuery: String = "", headers: [SignableRequest.Header] = [], body: [UInt8] = []) {
        self.method = method
        self.path = path
        self.rawQuery = rawQuery
        self.headers = headers
        self.body = body
    }

    /// The first header named `name` (any case).
    public func header(_ name: String) -> String? {
        let lowered = name.lowercased()
        return headers.first { $0.name.lowercased() == lowered }?.value
    }

    /// Decoded query parameters.
    var query: [SignableRequest.QueryItem] { PercentEncoding.parseQuery(rawQuery) }

    func queryValue(_ name: String) -> String? { query.first { $0.name == name }?.value }
}

/// The simulator's answer: a response, or a dropped connection.
public struct SimHTTPResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]
    /// Reset the connection instead of answering.
    public var dropConnection = false
    /// Wait this long before answering (injected latency).
    public var delay: Duration = .zero

    public init(status: Int, headers: [(String, String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    static func json(_ status: Int, _ writer: JSONWriter) -> SimHTTPResponse {
        SimHTTPResponse(status: status, headers: [("Content-Type", "application/json")], body: writer.bytes)
    }
}

/// A routed API call: which operation, and the context it runs in.
struct APIContext {
    var request: SimHTTPRequest
    var segments: [String]
    var projectId: String
    var base: String
    var requestId: String
}

extension SimulatedRegion {
    /// Answers one HTTP request: admin API, IAM tokens, version documents, and the ECS API with
    /// authentication, injected faults, flow control and the request log.
    public func handle(_ request: SimHTTPRequest) -> SimHTTPResponse {
        let requestId = newRequestId()
        var operation = ""
        var projectId: String?
        var response = route(request, requestId: requestId, operation: &operation, projectId: &projectId)
        response.headers.append(("X-Request-Id", requestId))
        response.headers.append(("X-Openstack-Request-Id", "req-" + requestId))
        if !request.path.hasPrefix("/_sim") {
            log(
                SimRequestRecord(
                    method: request.method, path: request.path, status: response.dropConnection ? 0 : response.status,
                    time: Date().timeIntervalSince1970, operation: operation, projectId: projectId))
            if faults.latencyMs > 0 { response.delay = .milliseconds(Int64(faults.latencyMs)) }
        }
        return response
    }

    private func route(_ request: SimHTTPRequest, requestId: String, operation: inout String, projectId: inout String?) -> SimHTTPResponse {
        let segments = request.path.split(separator: "/", omittingEmptySubsequences: true).map { PercentEncoding.decode(String($0)) }
        if segments.first == "_sim" { return handleAdmin(request, segments: Array(segments.dropFirst())) }
        if segments.isEmpty || (segments.count == 1 && ["v2", "v2.1"].contains(segments[0])) {
            operation = "ListVersions"
            return versions(segments: segments, base: baseURL(request))
        }
        if segments == ["v3", "auth", "tokens"] {
            operation = "CreateIAMToken"
            return issueToken(request, requestId: requestId)
        }
        switch faultDecision() {
        case .drop:
            var dropped = SimHTTPResponse(status: 0)
            dropped.dropConnection = true
            return dropped
        case .fail(let error):
            return errorResponse(error, requestId: requestId)
        case .proceed:
            break
        }
        guard segments.count >= 3, ["v1", "v2", "v2.1"].contains(segments[0]) else {
            return errorResponse(.nova(404, "The resource could not be found."), requestId: requestId)
        }
        let project = segments[1]
        projectId = project
        let isNova = segments[0] != "v1"
        if let error = authenticate(request, projectId: project, nova: isNova) {
            return errorResponse(error, requestId: requestId)
        }
        if let throttled = throttle(projectId: project) {
            return errorResponse(throttled, requestId: requestId)
        }
        let context = APIContext(request: request, segments: Array(segments.dropFirst(2)), projectId: project, base: baseURL(request), requestId: requestId)
        do {
            return try isNova ? routeNova(context, operation: &operation) : routeV1(context, operation: &operation)
        } catch {
            return errorResponse(isNova && error.shape == .ecs ? .nova(error.httpStatus, error.message) : error, requestId: requestId)
        }
    }

    func errorResponse(_ error: SimError, requestId: String) -> SimHTTPResponse {
        SimHTTPResponse(status: error.httpStatus, headers: [("Content-Type", "application/json")], body: error.body(requestId: requestId))
    }

    func baseURL(_ request: SimHTTPRequest) -> String {
        "http://" + (request.header("Host") ?? "localhost")
    }

    // MARK: Authentication

    /// Checks the token or the AK/SK signature, and that the caller may act on `projectId`.
    func authenticate(_ request: SimHTTPRequest, projectId: String, nova: Bool) -> SimError? {
        guard projects[projectId] != nil else {
            return SimError.forbidden.with(message: "You do not have permission to perform this operation on project \(projectId).")
        }
        if let token = request.header("X-Auth-Token") {
            guard let entry = tokens[token], entry.expiresAt > Date().timeIntervalSince1970 else { return .invalidToken }
            return entry.projectId == projectId ? nil : .projectMismatch
        }
        guard request.header("Authorization") != nil else {
            return SimError.signature("the request carries neither X-Auth-Token nor an AK/SK signature")
        }
        do {
            try verifier.verify(
                method: request.method, path: request.path, rawQuery: request.rawQuery, headers: request.headers, body: request.body,
                now: Date())
        } catch let rejection {
            return SimError.signature("\(rejection)")
        }
        if let headerProject = request.header("X-Project-Id"), headerProject != projectId {
            return .projectMismatch.with(message: "X-Project-Id \(headerProject) mismatches with project_id in url.")
        }
        return nil
    }

    /// `POST /v3/auth/tokens`: password auth scoped to a project (by id or name) → 201 + X-Subject-Token.
    func issueToken(_ request: SimHTTPRequest, requestId: String) -> SimHTTPResponse {
        guard request.method == "POST" else { return errorResponse(.nova(405, "Method not allowed."), requestId: requestId) }
        func iamError(_ status: Int, _ message: String) -> SimHTTPResponse {
            var json = JSONWriter()
            json.object { json in
                json.key("error")
                json.object { json in
                    json.field("code", status)
                    json.field("message", message)
                    json.field("title", status == 401 ? "Unauthorized" : "Bad Request")
                }
            }
            return .json(status, json)
        }
        guard let object = try? JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any],
            let auth = object["auth"] as? [String: Any],
            let identity = auth["identity"] as? [String: Any],
            let password = identity["password"] as? [String: Any],
            let user = password["user"] as? [String: Any],
            let name = user["name"] as? String, let secret = user["password"] as? String
        else { return iamError(400, "The request body is not a password authentication.") }
        guard configuration.iamUsers[name] == secret else { return iamError(401, "The username or password is wrong.") }
        let scope = (auth["scope"] as? [String: Any])?["project"] as? [String: Any]
        let scopedId = (scope?["id"] as? String) ?? (scope?["name"] as? String).flatMap { projectIdsByName[$0] }
        guard let projectId = scopedId, projects[projectId] != nil else { return iamError(400, "The token must be scoped to a known project.") }
        let token = "MII" + random.hex32() + random.hex32()
        let expires = Date().timeIntervalSince1970 + 86_400
        tokens[token] = (projectId, expires)
        var json = JSONWriter()
        json.object { json in
            json.key("token")
            json.object { json in
                json.field("expires_at", SimTime.format(expires, .microsecondsNoZone) + "Z")
                json.field("issued_at", SimTime.format(Date().timeIntervalSince1970, .microsecondsNoZone) + "Z")
                json.field("methods", ["password"])
                json.key("project")
                json.object { json in
                    json.field("id", projectId)
                    json.field("name", projects[projectId]?.name ?? "")
                }
                json.key("user")
                json.object { json in
                    json.field("name", name)
                    json.field("id", FleetGenerator.userId)
                }
            }
        }
        var response = SimHTTPResponse.json(201, json)
        response.headers.append(("X-Subject-Token", token))
        return response
    }

    /// Revokes every issued token (tests of token refresh).
    public func revokeTokens() { tokens.removeAll() }

    // MARK: Version documents

    func versions(segments: [String], base: String) -> SimHTTPResponse {
        var json = JSONWriter()
        func v21(_ json: inout JSONWriter) {
            json.field("id", "v2.1")
            json.key("links")
            json.array { json in
                json.object { json in
                    json.field("rel", "self")
                    json.field("href", "\(base)/v2.1/")
                }
            }
            json.field("min_version", "2.1")
            json.field("version", "2.60")
            json.field("status", "CURRENT")
            json.field("updated", "2013-07-23T11:33:21Z")
        }
        json.object { json in
            if segments.isEmpty {
                json.key("versions")
                json.array { json in
                    json.object { json in
                        json.field("id", "v2.0")
                        json.key("links")
                        json.array { json in
                            json.object { json in
                                json.field("rel", "self")
                                json.field("href", "\(base)/v2/")
                            }
                        }
                        json.field("min_version", "")
                        json.field("version", "")
                        json.field("status", "SUPPORTED")
                        json.field("updated", "2011-01-21T11:33:21Z")
                    }
                    json.object { json in v21(&json) }
                }
            } else {
                json.key("version")
                json.object { json in v21(&json) }
            }
        }
        return .json(200, json)
    }

    // MARK: Helpers for routes

    /// The body as a JSON object; an empty or malformed body is a 400 of the route's family.
    func jsonBody(_ request: SimHTTPRequest) throws(SimError) -> [String: Any] {
        guard !request.body.isEmpty else { throw .emptyBody }
        guard let object = try? JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any] else {
            throw SimError.invalidParameter.with(message: "request body is illegal.")
        }
        return object
    }

    /// Replays the stored answer of an `X-Client-Token` already seen, or refuses a token reused for
    /// another request; nil when the request is new.
    func replayed(_ context: APIContext) throws(SimError) -> SimHTTPResponse? {
        guard let token = context.request.header("X-Client-Token"), !token.isEmpty,
            let seen = projects[context.projectId]?.clientTokens[token]
        else { return nil }
        guard seen.fingerprint == fingerprint(context.request) else {
            throw SimError.invalidParameter.with(message: "X-Client-Token \(token) was already used for a different request.")
        }
        return SimHTTPResponse(status: seen.status, headers: [("Content-Type", "application/json")], body: seen.body)
    }

    /// Remembers a successful answer under the request's `X-Client-Token`.
    func remember(_ context: APIContext, _ response: SimHTTPResponse) -> SimHTTPResponse {
        if let token = context.request.header("X-Client-Token"), !token.isEmpty, (200..<300).contains(response.status) {
            projects[context.projectId]?.clientTokens[token] = (fingerprint(context.request), response.status, response.body)
        }
        return response
    }

    private func fingerprint(_ request: SimHTTPRequest) -> [UInt8] {
        Array(request.method.utf8) + [0] + Array(request.path.utf8) + [0] + request.body
    }
}
