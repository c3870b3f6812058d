import ECSSigning
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// Serves a `SimulatedRegion` over HTTP/1.1 (keep-alive) on a host and port (0 = any free port).
///
/// Built directly on SwiftNIO so injected faults can act on the connection itself: a dropped
/// connection is a TCP reset, added latency delays the answer.
public final class SimulatorServer: Sendable {
    /// The region behind the server.
    public let region: SimulatedRegion
    /// The bound host.
    public let host: String
    /// The bound port.
    public let port: Int
    private let serverChannel: any Channel
    private let acceptTask: Task<Void, any Error>

    /// `http://host:port`.
    public var endpoint: String { "http://\(host):\(port)" }

    private init(region: SimulatedRegion, host: String, port: Int, serverChannel: any Channel, acceptTask: Task<Void, any Error>) {
        self.region = region
        self.host = host
        self.port = port
        self.serverChannel = serverChannel
        self.acceptTask = acceptTask
    }

    /// Binds and starts serving.
    public static func start(region: SimulatedRegion, host: String = "127.0.0.1", port: Int = 0) async throws -> SimulatorServer {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: host, port: port) { child in
                child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(wrappingChannelSynchronously: child)
                }
            }
        let boundPort = channel.channel.localAddress?.port ?? port
        let task = Task {
            try await withThrowingDiscardingTaskGroup { group in
                try await channel.executeThenClose { inbound in
                    for try await connection in inbound {
                        group.addTask {
                            try? await serve(connection, region: region)
                        }
                    }
                }
            }
        }
        return SimulatorServer(region: region, host: host, port: boundPort, serverChannel: channel.channel, acceptTask: task)
    }

    /// Stops accepting connections and ends the open ones.
    public func shutdown() async {
        try? await serverChannel.close()
        acceptTask.cancel()
        _ = await acceptTask.result
    }

    /// Waits until the server stops (for the standalone executable).
    public func wait() async {
        _ = await acceptTask.result
    }

    private static func serve(_ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, region: SimulatedRegion) async throws {
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
                    let uri = requestHead.uri
                    let split = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
                    let request = SimHTTPRequest(
                        method: requestHead.method.rawValue,
                        path: split.first.map(String.init) ?? "/",
                        rawQuery: split.count > 1 ? String(split[1]) : "",
                        headers: requestHead.headers.map { SignableRequest.Header($0.name, $0.value) },
                        body: body)
                    let response = await region.handle(request)
                    if response.delay > .zero { try await Task.sleep(for: response.delay) }
                    if response.dropConnection {
                        if let provider = channel as? any SocketOptionProvider {
                            try? await provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).get()
                        }
                        return
                    }
                    var headers = HTTPHeaders(response.headers)
                    headers.replaceOrAdd(name: "Content-Length", value: String(response.body.count))
                    if !requestHead.isKeepAlive { headers.replaceOrAdd(name: "Connection", value: "close") }
                    try await outbound.write(
                        .head(HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: response.status), headers: headers)))
                    if !response.body.isEmpty {
                        try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: response.body))))
                    }
                    try await outbound.write(.end(nil))
                    if !requestHead.isKeepAlive { return }
                }
            }
        }
    }
}
