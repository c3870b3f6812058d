import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Why a `ctl` command failed, and the exit code scripts can rely on.
public enum CtlError: Error, CustomStringConvertible, Equatable {
    /// The daemon answered with an error (4xx/5xx): exit 1.
    case refused(status: Int, code: String?, message: String)
    /// The daemon could not be reached (refused connection, timeout, a bad URL): exit 3.
    case unreachable(url: String, reason: String)
    /// The answer was not what the control API sends: exit 1.
    case unexpectedAnswer(String)

    /// 1 refused or failed call, 3 daemon unreachable (2 is usage, from the argument parser).
    public var exitCode: Int32 {
        switch self {
        case .refused, .unexpectedAnswer: return 1
        case .unreachable: return 3
        }
    }

    public var description: String {
        switch self {
        case .refused(let status, let code, let message): return "the daemon refused the call: HTTP \(status)\(code.map { " \($0)" } ?? ""): \(message)"
        case .unreachable(let url, let reason): return "cannot reach the daemon at \(url): \(reason)"
        case .unexpectedAnswer(let what): return "unexpected answer: \(what)"
        }
    }
}

/// A small client of the control API: one call, its body, its errors classified.
public struct CtlClient: Sendable {
    /// `http://127.0.0.1:9465` or `unix:/run/ecs-warden/control.sock`.
    public var url: String
    public var token: String?
    public var timeout: Duration

    public init(url: String, token: String?, timeout: Duration = .seconds(120)) {
        self.url = url
        self.token = token
        self.timeout = timeout
    }

    /// The full URL of a request (a unix socket as `http+unix://`).
    public func address(of request: CtlRequest) -> String {
        if url.hasPrefix("unix:") {
            let socket = String(url.dropFirst(5))
            return "http+unix://" + CtlPercentEncoding.encode(socket) + request.target
        }
        var base = url
        while base.hasSuffix("/") { base.removeLast() }
        return base + request.target
    }

    /// Sends the request; returns the answer's body. Throws `CtlError`.
    public func send(_ request: CtlRequest) async throws -> Data {
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { _ = client.shutdown { _ in } }
        var http = HTTPClientRequest(url: address(of: request))
        http.method = HTTPMethod(rawValue: request.method.rawValue)
        if request.isMutating, let token { http.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body = request.body {
            http.headers.add(name: "Content-Type", value: "application/json")
            http.body = .bytes(ByteBuffer(bytes: Array(body)))
        }
        let status: Int
        let data: Data
        do {
            let response = try await client.execute(http, timeout: .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000))
            status = Int(response.status.code)
            data = Data(try await response.body.collect(upTo: 64 << 20).readableBytesView)
        } catch {
            throw CtlError.unreachable(url: url, reason: "\(error)")
        }
        guard status < 400 else {
            let decoded = try? JSONDecoder().decode(APIErrorBody.self, from: data)
            throw CtlError.refused(status: status, code: decoded?.error.code, message: decoded?.error.message ?? String(decoding: data.prefix(300), as: UTF8.self))
        }
        return data
    }

    struct APIErrorBody: Decodable {
        struct Detail: Decodable {
            var code: String
            var message: String
        }
        var error: Detail
    }
}
