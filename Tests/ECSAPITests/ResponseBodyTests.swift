import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import Testing

@testable import ECSAPI

/// `ResponseBodyCollector`, through a real HTTP exchange: the whole body in order, and a body over
/// the limit an error at once (from its announced length), never a crash or a long read.
@Suite struct ResponseBodyTests {
    private static func collect(_ action: TestHTTPServer.Action, limit: Int) async throws -> (head: HTTPResponseHead, body: ByteBuffer) {
        let server = try await TestHTTPServer.start { _ in action }
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            let request = try HTTPClient.Request(url: "http://127.0.0.1:\(server.port)/page", method: .GET)
            let answer = try await client.execute(request: request, delegate: ResponseBodyCollector(limit: limit), deadline: .now() + .seconds(10))
                .futureResult.get()
            try await client.shutdown()
            await server.shutdown()
            return answer
        } catch {
            try await client.shutdown()
            await server.shutdown()
            throw error
        }
    }

    @Test func theWholeBodyIsCollectedUpToTheLimit() async throws {
        let text = String(repeating: "0123456789", count: 10)
        let answer = try await Self.collect(.respond(200, body: text), limit: 100)
        #expect(answer.head.status == .ok)
        #expect(String(buffer: answer.body) == text)
        let empty = try await Self.collect(.respond(204), limit: 100)
        #expect(empty.body.readableBytes == 0)
    }

    @Test func aBodyOverTheLimitIsRefused() async throws {
        await #expect(throws: NIOTooManyBytesError.self) {
            _ = try await Self.collect(.respond(200, body: String(repeating: "x", count: 101)), limit: 100)
        }
    }

    @Test func anAnnouncedLengthOverTheLimitIsRefusedBeforeTheBodyComes() async throws {
        // The head announces 100,000,000 bytes, then one byte a second: refused on the head.
        let started = ContinuousClock.now
        await #expect(throws: NIOTooManyBytesError.self) {
            _ = try await Self.collect(.drip(interval: .seconds(1)), limit: 1 << 20)
        }
        // The body would take 100,000,000 s: refused on the head, with room for a loaded machine.
        #expect(ContinuousClock.now - started < .seconds(20))
    }
}
