import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import Testing

@testable import ECSAPI

/// `ECSClient.collectBody`: one buffer sized from `Content-Length`, the whole body whatever its
/// chunks, and a body over the limit (announced or received) an error, never a crash.
@Suite struct ResponseBodyTests {
    private static func response(contentLength: String?, chunks: [String]) -> HTTPClientResponse {
        var headers = HTTPHeaders()
        if let contentLength { headers.add(name: "Content-Length", value: contentLength) }
        let buffers = chunks.map { ByteBuffer(string: $0) }
        return HTTPClientResponse(status: .ok, headers: headers, body: .stream(Chunks(buffers: buffers)))
    }

    @Test func theChunksAreJoinedInOrder() async throws {
        let body = try await ECSClient.collectBody(of: Self.response(contentLength: "11", chunks: ["hello", " ", "world"]), upTo: 100)
        #expect(String(buffer: body) == "hello world")
        // The buffer was sized once from the announced length.
        #expect(body.capacity >= 11)
        let unannounced = try await ECSClient.collectBody(of: Self.response(contentLength: nil, chunks: ["a", "b"]), upTo: 100)
        #expect(String(buffer: unannounced) == "ab")
    }

    @Test func aLengthOverTheLimitIsRefusedBeforeReading() async throws {
        await #expect(throws: NIOTooManyBytesError.self) {
            _ = try await ECSClient.collectBody(of: Self.response(contentLength: "101", chunks: []), upTo: 100)
        }
    }

    @Test func moreBytesThanTheLimitAreRefusedWhateverTheAnnouncedLength() async throws {
        let chunks = Array(repeating: String(repeating: "x", count: 40), count: 3)
        for announced in [nil, "10", "-5", "not a number"] as [String?] {
            await #expect(throws: NIOTooManyBytesError.self) {
                _ = try await ECSClient.collectBody(of: Self.response(contentLength: announced, chunks: chunks), upTo: 100)
            }
        }
        // Up to the limit exactly is fine, whatever a lying length says.
        let exact = try await ECSClient.collectBody(of: Self.response(contentLength: "-5", chunks: Array(chunks.prefix(2)) + ["x" + String(repeating: "y", count: 19)]), upTo: 100)
        #expect(exact.readableBytes == 100)
    }
}

/// A fixed sequence of body chunks.
private struct Chunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let buffers: [ByteBuffer]

    struct AsyncIterator: AsyncIteratorProtocol {
        var rest: ArraySlice<ByteBuffer>
        mutating func next() async -> ByteBuffer? { rest.popFirst() }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(rest: buffers[...]) }
}
