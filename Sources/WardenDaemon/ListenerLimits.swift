import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Limits of each listener (metrics, control), so idle or slow clients cannot use up the
/// daemon's file descriptors: a connection idles for at most `idleTimeout`, and at most
/// `maxConnections` are open at once (fewer when the descriptor limit is too low for them).
public struct ListenerLimits: Sendable, Equatable {
    /// A connection is closed when this long passes without a complete request head: after it
    /// was opened, after its last answer, or while a head trickles in (so it is also the header
    /// timeout). An answer being written is never cut.
    public var idleTimeout: TimeInterval
    /// Connections open at once on one listener; a connection over the cap is answered 503 and
    /// closed at once.
    public var maxConnections: Int

    public init(idleTimeout: TimeInterval = 60, maxConnections: Int = 256) {
        self.idleTimeout = idleTimeout
        self.maxConnections = maxConnections
    }

    /// Descriptors left for everything but the listeners' connections: the state store, the
    /// connections to the ECS endpoints, logs, signals, the event loops.
    static let reservedDescriptors = 64
    /// Connections over the cap being answered 503 at once, per listener. Beyond that the
    /// listener stops accepting until some are closed (clients wait in the kernel's backlog), so
    /// a flood of refusals cannot use up the descriptors either.
    static let refusalsInFlight = 8

    /// The cap in force on each of `listeners` listeners under a descriptor limit (nil: none):
    /// the configured one, lowered so that every listener at its cap, with its refusals in
    /// flight, still leaves the reserve. Pure.
    static func effectiveCap(configured: Int, listeners: Int, descriptorLimit: Int?) -> Int {
        guard let limit = descriptorLimit else { return configured }
        return max(1, min(configured, (limit - reservedDescriptors) / max(1, listeners) - refusalsInFlight))
    }

    /// How many connections a listener with this cap holds open at most: served ones and those
    /// being refused (Hummingbird stops accepting beyond it).
    static func acceptLimit(cap: Int) -> Int { cap + refusalsInFlight }

    /// The soft `RLIMIT_NOFILE` of this process; nil when unlimited or unknown.
    static func descriptorLimit() -> Int? {
        #if canImport(Glibc)
            var limits = rlimit()
            guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limits) == 0, limits.rlim_cur != rlim_t.max else { return nil }
            return Int(clamping: limits.rlim_cur)
        #else
            return nil
        #endif
    }
}

/// Counts one listener's open connections against its cap. Reaching the cap is logged once (a
/// warning), and so is the end of the episode, when a connection closes and there is room again.
final class ConnectionCap: Sendable {
    let listener: String
    let limit: Int
    private let logger: Logger
    private let state = Mutex<(open: Int, refusing: Bool, refused: Int)>((0, false, 0))

    init(listener: String, limit: Int, logger: Logger) {
        self.listener = listener
        self.limit = limit
        self.logger = logger
    }

    /// Takes a place for a new connection; false when the listener is at its cap.
    func tryOpen() -> Bool {
        let (admitted, began) = state.withLock { state -> (Bool, Bool) in
            if state.open < limit {
                state.open += 1
                return (true, false)
            }
            state.refused += 1
            defer { state.refusing = true }
            return (false, !state.refusing)
        }
        if began {
            logger.warning(
                "\(listener) listener: \(limit) connections open, its cap; new connections are answered 503 and closed until some close",
                metadata: ["listener": "\(listener)", "max_connections": "\(limit)"])
        }
        return admitted
    }

    /// A connection closed: its place is free again.
    func closed() {
        let refused = state.withLock { state -> Int? in
            state.open -= 1
            guard state.refusing else { return nil }
            state.refusing = false
            defer { state.refused = 0 }
            return state.refused
        }
        if let refused {
            logger.notice(
                "\(listener) listener: below its cap again; accepting connections (\(refused) refused meanwhile)",
                metadata: ["listener": "\(listener)"])
        }
    }

    var openConnections: Int { state.withLock { $0.open } }
}

/// Hummingbird's HTTP/1 child channel behind a connection cap: a connection over the cap gets a
/// plain 503 and is closed, without reaching the router; the others are served with the idle
/// timeout of the `HTTP1Channel` configuration.
struct CappedHTTP1Channel: ServerChildChannel {
    enum Value: ServerChildChannelValue {
        case served(HTTP1Channel.Value)
        case refused(any Channel)

        var channel: any Channel {
            switch self {
            case .served(let value): return value.channel
            case .refused(let channel): return channel
            }
        }
    }

    let http: HTTP1Channel
    let cap: ConnectionCap

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let cap = self.cap
        guard cap.tryOpen() else {
            return channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(RefusingHandler(listener: cap.listener, limit: cap.limit))
                return .refused(channel)
            }
        }
        channel.closeFuture.whenComplete { _ in cap.closed() }
        return http.setup(channel: channel, logger: logger).map { .served($0) }
    }

    func handle(value: Value, logger: Logger) async {
        switch value {
        case .served(let value): await http.handle(value: value, logger: logger)
        case .refused: return
        }
    }

    /// The server builder for `Application(router:server:)`.
    static func builder(limits: ListenerLimits, cap: ConnectionCap) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            CappedHTTP1Channel(
                http: HTTP1Channel(responder: responder, configuration: .init(idleTimeout: .milliseconds(Int64(limits.idleTimeout * 1000)))), cap: cap)
        }
    }
}

/// Answers a connection over the cap with a 503 (the JSON error shape of the API) and closes it.
final class RefusingHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let answer: String
    private var answered = false

    init(listener: String, limit: Int) {
        let body =
            #"{"error":{"code":"too_many_connections","message":"the \#(listener) listener has \#(limit) connections open, its cap; try again later"}}"#
        answer =
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nRetry-After: 1\r\nConnection: close\r\n\r\n\(body)"
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { refuse(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        refuse(context)
        context.fireChannelActive()
    }

    /// Whatever the client sends is dropped.
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    private func refuse(_ context: ChannelHandlerContext) {
        guard !answered else { return }
        answered = true
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: answer))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}

/// Sits first in a listener's server channel and logs an `accept()` that fails for want of
/// descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM): one error line when it begins, one
/// notice when a connection is accepted again, and under a flood that makes it come and go, at most
/// one error line a minute (the next one counts the episodes in between). NIO's accept backoff,
/// after it, retries a second later, so the listener neither stops nor spins; connections wait in
/// the kernel's backlog meanwhile.
final class AcceptFailureReporter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = any Channel
    typealias InboundOut = any Channel

    static let exhaustionCodes: Set<Int32> = [EMFILE, ENFILE, ENOBUFS, ENOMEM]
    static let quietPeriod: TimeAmount = .seconds(60)

    private let listener: String
    private let logger: Logger
    /// Accepts are failing now.
    private var failing = false
    /// The current episode's beginning was logged (so its end is logged too).
    private var logged = false
    private var lastLogged: NIODeadline?
    /// Episodes not logged since the last line.
    private var unlogged = 0

    init(listener: String, logger: Logger) {
        self.listener = listener
        self.logger = logger
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? IOError, Self.exhaustionCodes.contains(error.errnoCode), !failing {
            failing = true
            let now = context.eventLoop.now
            if let last = lastLogged, now - last < Self.quietPeriod {
                logged = false
                unlogged += 1
            } else {
                logged = true
                lastLogged = now
                let since = unlogged > 0 ? " (\(unlogged) more times since the last such line)" : ""
                unlogged = 0
                logger.error(
                    "\(listener) listener: cannot accept connections: \(StartupError.reason(errno: error.errnoCode))\(since); retrying every second until descriptors free up",
                    metadata: ["listener": "\(listener)", "descriptor_limit": "\(ListenerLimits.descriptorLimit().map(String.init) ?? "unlimited")"])
            }
        }
        context.fireErrorCaught(error)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if failing {
            failing = false
            if logged { logger.notice("\(listener) listener: accepting connections again", metadata: ["listener": "\(listener)"]) }
        }
        context.fireChannelRead(data)
    }

    /// Puts a reporter first in a bound listener's pipeline.
    static func install(on channel: any Channel, listener: String, logger: Logger) async {
        try? await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.addHandler(AcceptFailureReporter(listener: listener, logger: logger), position: .first)
        }.get()
    }
}
