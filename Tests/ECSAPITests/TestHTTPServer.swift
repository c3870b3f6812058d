import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A real HTTP/1.1 server on 127.0.0.1, port 0, whose every answer a test scripts: a response, a
/// reset connection, a close without answer, or no answer at all. It records what it received.
final class TestHTTPServer: Sendable {
    struct Request: Sendable {
        var method: String
        var uri: String
        var headers: HTTPHeaders
        var body: [UInt8]

        var path: String { String(uri.split(separator: "?", maxSplits: 1).first ?? "") }
        var rawQuery: String { uri.split(separator: "?", maxSplits: 1).dropFirst().first.map(String.init) ?? "" }
        var bodyText: String { String(decoding: body, as: UTF8.self) }
        func header(_ name: String) -> String? { headers.first(name: name) }
    }

    enum Action: Sendable {
        case respond(Int, headers: [(String, String)] = [], body: String = "")
        /// Closes the connection with a TCP reset.
        case reset
        /// Never answers (the client must time out).
        case hang
        /// Sends the head (200, a long Content-Length), then one body byte every `interval`, for ever.
        case drip(interval: Duration)
        /// Closes the connection without an answer.
        case close

        static func json(_ status: Int, _ body: String, headers: [(String, String)] = []) -> Action {
            .respond(status, headers: [("Content-Type", "application/json")] + headers, body: body)
        }
    }

    let port: Int
    private let serverChannel: any Channel
    private let acceptTask: Task<Void, any Error>
    private let log: RequestLog

    var requests: [Request] { log.requests.withLock { $0 } }
    var endpoint: URL { URL(string: "http://127.0.0.1:\(port)")! }

    private init(port: Int, serverChannel: any Channel, acceptTask: Task<Void, any Error>, log: RequestLog) {
        self.port = port
        self.serverChannel = serverChannel
        self.acceptTask = acceptTask
        self.log = log
    }

    /// Starts a server that answers each request with `handler`'s action.
    static func start(_ handler: @escaping @Sendable (Request) async -> Action) async throws -> TestHTTPServer {
        let box = RequestLog()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: 0) { child in
                child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.configureHTTPServerPipeline()
                    return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(wrappingChannelSynchronously: child)
                }
            }
        let port = channel.channel.localAddress?.port ?? 0
        let task = Task {
            try await withThrowingDiscardingTaskGroup { group in
                try await channel.executeThenClose { inbound in
                    for try await connection in inbound {
                        group.addTask {
                            try? await serve(connection, handler: handler, log: box)
                        }
                    }
                }
            }
        }
        return TestHTTPServer(port: port, serverChannel: channel.channel, acceptTask: task, log: box)
    }

    /// Stops accepting and cancels pending answers.
    func shutdown() async {
        try? await serverChannel.close()
        acceptTask.cancel()
        _ = await acceptTask.result
    }

    private final class RequestLog: Sendable {
        let requests = Mutex<[Request]>([])
    }

    private static func serve(
        _ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>,
        handler: @Sendable (Request) async -> Action,
        log: RequestLog
    ) async throws {
        let channel = connection.channel
        try await connection.executeThenClose { inbound, outbound in
            var head: HTTPRequestHead?
            var body: [UInt8] = []
            for try await part in inbound {
                switch part {
                case .head(let requestHead):
                    head = requestHead
                    body = []
                case .body(let buffer):
                    body.append(contentsOf: buffer.readableBytesView)
                case .end:
                    guard let requestHead = head else { continue }
                    let request = Request(method: requestHead.method.rawValue, uri: requestHead.uri, headers: requestHead.headers, body: body)
                    log.requests.withLock { $0.append(request) }
                    switch await handler(request) {
                    case .respond(let status, let headers, let text):
                        var responseHeaders = HTTPHeaders(headers)
                        let bytes = Array(text.utf8)
                        responseHeaders.replaceOrAdd(name: "Content-Length", value: String(bytes.count))
                        try await outbound.write(
                            .head(HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: responseHeaders)))
                        if !bytes.isEmpty { try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: bytes)))) }
                        try await outbound.write(.end(nil))
                    case .reset:
                        // SO_LINGER 0 turns the close into a TCP reset.
                        if let provider = channel as? any SocketOptionProvider {
                            try await provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).get()
                        }
                        return
                    case .close:
                        return
                    case .hang:
                        try await Task.sleep(for: .seconds(600))
                        return
                    case .drip(let interval):
                        var responseHeaders = HTTPHeaders()
                        responseHeaders.add(name: "Content-Length", value: "100000000")
                        responseHeaders.add(name: "Content-Type", value: "application/json")
                        try await outbound.write(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: responseHeaders)))
                        for _ in 0..<100_000 {
                            try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: Array(" ".utf8)))))
                            try await Task.sleep(for: interval)
                        }
                        return
                    }
                }
            }
        }
    }
}

/// Counts calls across concurrent handler invocations.
final class Counter: Sendable {
    private let value = Mutex(0)
    /// Increments and returns the new value (1 for the first call).
    func next() -> Int { value.withLock { $0 += 1; return $0 } }
    var current: Int { value.withLock { $0 } }
}
