import Foundation
import Hummingbird
import NIOCore
import WardenCore

/// Everything the HTTP layer reads or drives. Built by the daemon; the HTTP layer holds no state.
public struct ControlBackend: Sendable {
    public var context: WardenContext
    public var supervisor: Supervisor
    public var loops: [ReconcileLoop]
    public var quota: QuotaWatch
    public var stuck: StuckTaskDetector
    public var flavors: FlavorSaleTracker
    public var scheduler: AutoStopScheduler
    /// The bearer token of mutating calls; nil refuses every mutating call.
    public var token: String?
    /// Reloads the configuration; returns nil on success or why it was rejected.
    public var reload: @Sendable () async -> String?
    /// True once the configuration is loaded and the store open (loops checked separately).
    public var started: @Sendable () -> Bool
    public var version: String
    /// Whether the journal can be written; nil when not tracked. Not ready while it cannot.
    public var storeHealth: StoreHealth?
    /// Answers `GET /v1/cluster`: the leases in cluster mode, one node owning all otherwise.
    public var cluster: any ClusterStatusSource
    /// Cluster mode: pauses and run-now requests go through PostgreSQL to every node.
    public var clusterControl: (any ClusterControl)?
    /// Cluster mode: why the node is not ready (it cannot renew its leases), or nil.
    public var clusterProblem: @Sendable () -> String? = { nil }

    public init(
        context: WardenContext, supervisor: Supervisor, loops: [ReconcileLoop], quota: QuotaWatch, stuck: StuckTaskDetector,
        flavors: FlavorSaleTracker, scheduler: AutoStopScheduler, token: String?, reload: @escaping @Sendable () async -> String?,
        started: @escaping @Sendable () -> Bool, version: String
    ) {
        self.context = context
        self.supervisor = supervisor
        self.loops = loops
        self.quota = quota
        self.stuck = stuck
        self.flavors = flavors
        self.scheduler = scheduler
        self.token = token
        self.reload = reload
        self.started = started
        self.version = version
        self.cluster = SingleNodeStatus(node: ProcessInfo.processInfo.hostName, shards: { context.shards })
    }

    func loop(_ name: String) -> ReconcileLoop? { loops.first { $0.name == name } }
}

/// A JSON error answer: `{"error": {"code": "…", "message": "…"}}`.
struct APIError: Error {
    var status: HTTPResponse.Status
    var code: String
    var message: String

    static func notFound(_ message: String) -> APIError { APIError(status: .notFound, code: "not_found", message: message) }
    static func badRequest(_ message: String) -> APIError { APIError(status: .badRequest, code: "bad_request", message: message) }
    static func conflict(_ message: String) -> APIError { APIError(status: .conflict, code: "conflict", message: message) }
    static func unavailable(_ message: String) -> APIError { APIError(status: .serviceUnavailable, code: "unavailable", message: message) }
}

/// Builds the routers: `/metrics`, `/healthz`, `/readyz` and the control API under `/v1/`.
public enum WardenRoutes {
    /// The metrics listener's router (also serves the health checks).
    public static func metricsRouter(backend: ControlBackend) -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: JSONErrorMiddleware())
        addHealth(router, backend: backend)
        router.get("/metrics") { _, _ -> Response in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            // The parts (mostly families' cached texts) go straight into the body: one copy.
            let parts = backend.context.metrics.expositionParts()
            var body = ByteBuffer()
            body.reserveCapacity(parts.reduce(0) { $0 + $1.count })
            for part in parts { body.writeBytes(part) }
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: body))
        }
        return router
    }

    /// The control API's router (also serves the health checks).
    public static func controlRouter(backend: ControlBackend) -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: JSONErrorMiddleware())
        router.add(middleware: BearerTokenMiddleware(token: backend.token))
        addHealth(router, backend: backend)
        ControlRoutes(backend: backend).register(on: router)
        return router
    }

    static func addHealth(_ router: Router<BasicRequestContext>, backend: ControlBackend) {
        router.get("/healthz") { _, _ -> Response in
            let alive = await backend.supervisor.allAlive()
            return try json(alive ? .ok : .serviceUnavailable, ["status": alive ? "alive" : "not alive", "summary": await backend.supervisor.summaryLine()])
        }
        router.get("/readyz") { _, _ -> Response in
            let started = backend.started()
            let loopsReady = await backend.supervisor.allReady()
            let storeProblem = backend.storeHealth?.problem
            let clusterProblem = backend.clusterProblem()
            let ready = started && loopsReady && storeProblem == nil && clusterProblem == nil
            var reasons: [String] = []
            if !started { reasons.append("configuration or store not ready") }
            if let storeProblem { reasons.append(storeProblem) }
            if let clusterProblem { reasons.append(clusterProblem) }
            if !loopsReady {
                let stale = await backend.supervisor.statuses().filter { $0.lastSuccess == nil && !$0.paused }.map(\.name)
                reasons.append("loops without a recent successful pass: \(stale.joined(separator: ", "))")
            }
            return try json(ready ? .ok : .serviceUnavailable, ["status": ready ? "ready" : "not ready", "reasons": reasons.joined(separator: "; ")])
        }
    }
}

/// Encodes a JSON answer.
func json<T: Encodable>(_ status: HTTPResponse.Status, _ value: T) throws -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = .iso8601
    var headers = HTTPFields()
    headers[.contentType] = "application/json"
    return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: Array(try encoder.encode(value)))))
}

/// Every error becomes `{"error": {"code", "message"}}` with a 4xx/5xx; nothing leaks a stack.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return try errorResponse(error.status, error.code, error.message)
        } catch let error as HTTPError {
            let code = error.status == .notFound ? "not_found" : error.status == .methodNotAllowed ? "method_not_allowed" : "bad_request"
            let message = error.status == .notFound ? "no such route: \(request.method) \(request.uri.path)" : (error.body ?? "\(error.status)")
            return try errorResponse(error.status, code, message)
        } catch is DecodingError {
            return try errorResponse(.badRequest, "bad_request", "the body is not the expected JSON")
        } catch is NIOTooManyBytesError {
            return try errorResponse(.contentTooLarge, "too_large", "the body is larger than the server accepts")
        } catch {
            return try errorResponse(.internalServerError, "internal", "\(error)")
        }
    }

    func errorResponse(_ status: HTTPResponse.Status, _ code: String, _ message: String) throws -> Response {
        try json(status, ["error": ["code": code, "message": message]])
    }
}

/// Mutating calls (anything but GET, HEAD and the read-only `POST /v1/preflight`) need
/// `Authorization: Bearer <token>`.
struct BearerTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String?
    /// POSTs that change nothing and are cheap (a question with a body).
    static var readOnlyPosts: Set<String> { ["/v1/preflight"] }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if request.method == .get || request.method == .head || Self.readOnlyPosts.contains(request.uri.path) { return try await next(request, context) }
        guard let token, !token.isEmpty else {
            throw APIError(status: .unauthorized, code: "unauthorized", message: "mutating calls are disabled: no control token is configured")
        }
        let header = request.headers[.authorization] ?? ""
        // The scheme name is case-insensitive (RFC 7235).
        let presented = header.lowercased().hasPrefix("bearer ") ? String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces) : ""
        guard Self.constantTimeEqual(presented, token) else {
            throw APIError(status: .unauthorized, code: "unauthorized", message: "a valid bearer token is required for this call")
        }
        return try await next(request, context)
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        var difference = UInt8(x.count == y.count ? 0 : 1)
        for index in 0..<min(x.count, y.count) { difference |= x[index] ^ y[index] }
        return difference == 0
    }
}
