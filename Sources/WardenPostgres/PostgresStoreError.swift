import Foundation
import PostgresNIO
import WardenCore

/// Why the PostgreSQL store could not do what it was asked: a bad URL, or the server's own answer
/// (its message and SQLSTATE, so logs and `/readyz` say what PostgreSQL said; postgres-nio's own
/// error text is deliberately generic). A fenced write is `ShardError.fenced`, a newer schema
/// `StateStoreError.newerSchema`, a value outside a closed set `StateStoreError.undecodable`.
public struct PostgresStoreError: Error, CustomStringConvertible, Equatable {
    private enum Code: Equatable {
        case invalidURL
        case server(sqlState: String?)
        case connection
        case timedOut
    }

    private let code: Code
    /// What went wrong, in words.
    public let message: String

    private init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The SQLSTATE of a server error (e.g. `40001`, `57P01`), nil for anything else.
    public var sqlState: String? {
        if case .server(let state) = code { return state }
        return nil
    }

    /// True for a URL that cannot be used (fix the configuration; retrying will not help).
    public var isInvalidURL: Bool { code == .invalidURL }

    /// True when the server did not answer within the store's operation timeout (down,
    /// unreachable, or every connection busy).
    public var isTimeout: Bool { code == .timedOut }

    /// A call that got no answer in time.
    static func timedOut(location: String, after timeout: Duration) -> PostgresStoreError {
        PostgresStoreError(.timedOut, "state database \(location): no answer within \(timeout)")
    }

    /// A pooled connection found closed before a query was sent on it (nothing was sent).
    static let connectionClosed = PostgresStoreError(.connection, "the connection was closed by the server before the query was sent")

    /// A URL that cannot be used.
    public static func invalidURL(_ reason: String) -> PostgresStoreError { PostgresStoreError(.invalidURL, "invalid PostgreSQL URL: \(reason)") }

    public var description: String {
        switch code {
        case .invalidURL, .connection, .timedOut: return message
        case .server(let state): return state.map { "\(message) (SQLSTATE \($0))" } ?? message
        }
    }

    /// The store's error for anything postgres-nio threw at `location`; errors of our own pass through.
    static func wrap(_ error: any Error, location: String) -> any Error {
        switch error {
        case let error as PSQLError:
            if let info = error.serverInfo {
                let detail = info[.detail].map { ": \($0)" } ?? ""
                return PostgresStoreError(.server(sqlState: info[.sqlState]), "state database \(location): \(info[.message] ?? "error")\(detail)")
            }
            return PostgresStoreError(.connection, "state database \(location): \(error.code)")
        case let error as PostgresDecodingError:
            return StateStoreError.undecodable(what: "column \(error.columnName)", value: "\(error.postgresType)")
        case is StateStoreError, is ShardError, is PostgresStoreError, is CancellationError:
            return error
        default:
            // The pool's own errors (a circuit breaker tripped, the pool shut down…).
            return PostgresStoreError(.connection, "state database \(location): \(error)")
        }
    }
}
