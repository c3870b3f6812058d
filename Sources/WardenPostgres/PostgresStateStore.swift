import Foundation
import Logging
import PostgresNIO
import WardenCore

/// The shared state store of cluster mode: the same `StateStore` contract as `SQLiteStateStore`
/// (the contract suite runs against both), on PostgreSQL through postgres-nio's `PostgresClient`,
/// one file per concern (`PostgresStateStore+Journal.swift`, `+Migrations`, `+ServerStates`, …).
///
/// **Running it.** `PostgresClient` is a swift-service-lifecycle `Service`: its `run()` must be
/// running (in a task of the caller's task group, or in a `ServiceGroup`) for as long as the store
/// is used — before `run()` starts, and after it ends, no query is answered. Either
///
/// ```swift
/// let url = try PostgresURL(secret)
/// let client = try PostgresStateStore.makeClient(url: url, logger: logger)
/// // group.addTask { await client.run() }   (or add `client` to the ServiceGroup, first)
/// let store = try await PostgresStateStore.open(client: client, location: url.redacted, logger: logger)
/// ```
///
/// or `PostgresStateStore.withStore(url:…) { store in … }`, which does both around `body`.
/// The lease coordinator shares the same client.
///
/// **Semantics kept from SQLite.** App dates are `double precision` Unix seconds (SQLite's REAL),
/// so they round-trip exactly; results and kinds are held to their closed sets by CHECK
/// constraints on write and refused on read; the writes SQLite makes in one transaction are one
/// transaction here too. Lease and membership times are the database's own (`timestamptz`,
/// `now()`).
///
/// **Journal order.** Sequence numbers come from a one-row counter updated inside the appending
/// transaction: its row lock is held until commit, so entry n commits before n + 1 is even
/// allocated, and a reader following `journal(since:)` never sees a number skipped by a row
/// committed later (a `bigserial` could commit out of order). Unlike `MAX(seq) + 1`, numbers are
/// never reused after pruning (as SQLite's AUTOINCREMENT).
///
/// **Fenced writes.** A journal entry with a `fence` (append, `recordAccepted`, the outcome of
/// `recordJobEnd`) is written in a transaction that first locks its lease row `FOR SHARE` where
/// the node still holds the shard in that epoch and the lease has not expired by `now()`; with
/// no such row it throws `ShardError.fenced` and writes nothing. The shared lock keeps a takeover
/// (which updates the row) waiting until the write has committed. Entries without a fence (a
/// single node, events) are written unfenced.
///
/// **Errors.** `StateStoreError.newerSchema` for a database migrated by a newer ecs-warden,
/// `StateStoreError.undecodable` for a value outside a closed set, `ShardError.fenced` for a
/// refused write, `PostgresStoreError` for everything the server or the connection said.
public final class PostgresStateStore: StateStore {
    /// The client every query goes through (shared with the lease coordinator).
    public let client: PostgresClient
    /// The database URL without its password.
    public let location: String
    public let retention: RetentionPolicy
    /// The longest a call may wait for a connection and its answer before it fails with
    /// `PostgresStoreError` (`isTimeout`). postgres-nio's pool retries an unreachable server for
    /// about a minute before failing a request; a loop must learn sooner.
    public let operationTimeout: Duration
    let logger: Logger

    private init(client: PostgresClient, location: String, retention: RetentionPolicy, operationTimeout: Duration, logger: Logger) {
        self.client = client
        self.location = location
        self.retention = retention
        self.operationTimeout = operationTimeout
        self.logger = logger
    }

    /// Opens the store on a client whose `run()` is running: refuses a newer schema and applies
    /// the migrations this version knows (once, even when several replicas start together).
    public static func open(
        client: PostgresClient, location: String, retention: RetentionPolicy = RetentionPolicy(), operationTimeout: Duration = .seconds(10),
        logger: Logger
    ) async throws -> PostgresStateStore {
        let store = PostgresStateStore(client: client, location: location, retention: retention, operationTimeout: operationTimeout, logger: logger)
        try await store.migrate()
        return store
    }

    /// A client for `url` (TLS per its `sslmode`, certificates verified unless told otherwise).
    /// Run it (`client.run()`) before opening the store on it.
    public static func makeClient(url: PostgresURL, verifyCertificates: Bool = true, logger: Logger) throws -> PostgresClient {
        PostgresClient(configuration: try url.clientConfiguration(verifyCertificates: verifyCertificates), backgroundLogger: logger)
    }

    /// Runs a client for `url`, opens the store on it, runs `body` with the store, then stops the
    /// client (tools, tests and one-shot commands; the daemon runs the client in its own group).
    public static func withStore<T: Sendable>(
        url: PostgresURL, verifyCertificates: Bool = true, retention: RetentionPolicy = RetentionPolicy(), operationTimeout: Duration = .seconds(10),
        logger: Logger, _ body: @Sendable (PostgresStateStore) async throws -> T
    ) async throws -> T {
        let client = try makeClient(url: url, verifyCertificates: verifyCertificates, logger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            let store = try await open(client: client, location: url.redacted, retention: retention, operationTimeout: operationTimeout, logger: logger)
            return try await body(store)
        }
    }

    // MARK: Running queries

    /// Runs `body` on a pooled connection, within `operationTimeout`; postgres-nio's errors become the store's.
    func withConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await bounded { [client] in try await client.withConnection { connection in try await body(connection) } }
    }

    /// Runs `body` in one transaction (rolled back when it throws), within `operationTimeout`;
    /// the error `body` threw is the one the caller sees (a fence stays `ShardError.fenced`).
    ///
    /// Not postgres-nio's `withTransaction`: that one sends its ROLLBACK even on a connection the
    /// server has just closed, and such a query never gets an answer (see `rows`). Here every
    /// statement, BEGIN, COMMIT and ROLLBACK included, goes through `rows`' check, and a
    /// connection whose rollback failed is closed rather than lent again mid-transaction.
    func withTransaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await bounded { [client, logger] in
            try await client.withConnection { connection in
                try await connection.run("BEGIN", logger: logger)
                let value: T
                do {
                    value = try await body(connection)
                } catch {
                    do {
                        try await connection.run("ROLLBACK", logger: logger)
                    } catch {
                        try? await connection.close()
                    }
                    throw error
                }
                try await connection.run("COMMIT", logger: logger)
                return value
            }
        }
    }

    /// Runs `operation`, failing it after `operationTimeout`: the wait for a connection is
    /// cancelled then (a query already sent is answered first; the server ends a transaction
    /// left idle, see `PostgresURL.clientConfiguration`). A write that timed out may still have
    /// committed: to the journal's rules that is an intent without an outcome, never a lost call.
    private func bounded<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        let timeout = operationTimeout
        do {
            return try await withTimeout(timeout, operation)
        } catch is ClusterTimeout {
            throw PostgresStoreError.timedOut(location: location, after: timeout)
        } catch {
            throw PostgresStoreError.wrap(error, location: location)
        }
    }
}


extension PostgresConnection {
    /// The rows of `query`, read to the end.
    ///
    /// A connection the server has closed (`pg_terminate_backend`, a restart) is refused here:
    /// postgres-nio 1.33 writes a query to a closed channel without a promise, and its answer
    /// never comes (upstream #487, reverted in #501) — not even the store's timeout can end that
    /// wait, since the call does not react to cancellation. The pool may still lend such a
    /// connection for a moment after it closed; this check makes the call fail instead, and the
    /// pool replaces the connection. (A close between this check and the write remains possible.)
    func rows(_ query: PostgresQuery, logger: Logger) async throws -> [PostgresRandomAccessRow] {
        if isClosed { throw PostgresStoreError.connectionClosed }
        return try await self.query(query, logger: logger).collect().map { $0.makeRandomAccess() }
    }

    /// Runs a statement whose rows (if any) are not needed.
    func run(_ query: PostgresQuery, logger: Logger) async throws {
        _ = try await rows(query, logger: logger)
    }
}

extension PostgresRandomAccessRow {
    /// The value of `column`.
    func value<T: PostgresDecodable>(_ column: String, as type: T.Type = T.self) throws -> T {
        try self[column].decode(T.self)
    }

    /// A date stored as Unix seconds.
    func date(_ column: String) throws -> Date {
        Date(timeIntervalSince1970: try value(column, as: Double.self))
    }

    /// A date stored as Unix seconds, or NULL.
    func optionalDate(_ column: String) throws -> Date? {
        try value(column, as: Double?.self).map(Date.init(timeIntervalSince1970:))
    }

    /// A value of a closed set: one the set does not know is an error, never a guess.
    func closed<T: RawRepresentable>(_ column: String, as type: T.Type = T.self) throws -> T where T.RawValue == String {
        let raw = try value(column, as: String.self)
        guard let known = T(rawValue: raw) else { throw StateStoreError.undecodable(what: column, value: raw) }
        return known
    }
}
