import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import Synchronization

/// Collects an answer's head and whole body on the connection's event loop, into one buffer sized
/// from `Content-Length` (up to `reservedAtMost`: a hostile length reserves no more than that
/// before the bytes come). A listing page (~2 MB of JSON) arrives in dozens of socket reads;
/// streaming each read to an async consumer woke a thread per read, and growing the buffer read by
/// read copied the page several times. More than `limit` bytes, announced or received, fails the
/// request with `NIOTooManyBytesError` (the connection is not read further).
final class ResponseBodyCollector: HTTPClientResponseDelegate, Sendable {
    typealias Response = (head: HTTPResponseHead, body: ByteBuffer)

    private struct Collected {
        var head: HTTPResponseHead?
        var body = ByteBuffer()
    }

    private let limit: Int
    private let collected = Mutex(Collected())

    /// The most reserved from an announced length before the body comes (a page of 1,000 server
    /// details is ~2 MB; a larger body grows the buffer as it arrives).
    static let reservedAtMost = 8 << 20

    init(limit: Int) {
        self.limit = limit
    }

    func didReceiveHead(task: HTTPClient.Task<Response>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        // 204 and 304 answers have no body, whatever length they repeat.
        let hasBody = head.status != .noContent && head.status != .notModified
        let announced = hasBody ? head.headers.first(name: "Content-Length").flatMap { Int($0) } : nil
        if let announced, announced > limit { return task.eventLoop.makeFailedFuture(NIOTooManyBytesError(maxBytes: limit)) }
        collected.withLock { collected in
            collected.head = head
            collected.body = ByteBufferAllocator().buffer(capacity: max(0, min(announced ?? 0, limit, Self.reservedAtMost)))
        }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Response>, _ part: ByteBuffer) -> EventLoopFuture<Void> {
        let fits = collected.withLock { collected in
            guard collected.body.readableBytes + part.readableBytes <= limit else { return false }
            var part = part
            collected.body.writeBuffer(&part)
            return true
        }
        return fits ? task.eventLoop.makeSucceededVoidFuture() : task.eventLoop.makeFailedFuture(NIOTooManyBytesError(maxBytes: limit))
    }

    func didFinishRequest(task: HTTPClient.Task<Response>) throws -> Response {
        try collected.withLock { collected in
            guard let head = collected.head else { throw HTTPClientError.remoteConnectionClosed }
            return (head, collected.body)
        }
    }
}
