import Foundation
import Logging
import PostgresNIO
import Testing
import WardenCore
import WardenPostgres

/// The PostgreSQL the tests run against: `ECS_WARDEN_TEST_POSTGRES_URL` (`.ci/run` starts one with
/// `Tests/Postgres/pg-temp.sh`). Without it the PostgreSQL suites are skipped, except in CI
/// (`CI` set), where a missing URL fails them: CI must never pass by skipping.
enum PostgresHarness {
    static let environmentKey = "ECS_WARDEN_TEST_POSTGRES_URL"
    static let logger = Logger(label: "ecs-warden.tests.postgres")

    static var rawURL: String? {
        ProcessInfo.processInfo.environment[environmentKey].flatMap { $0.isEmpty ? nil : $0 }
    }

    static var inCI: Bool {
        guard let ci = ProcessInfo.processInfo.environment["CI"]?.lowercased(), !ci.isEmpty else { return false }
        return ci != "false" && ci != "0"
    }

    /// Whether the suites run: with a URL, or in CI (where they then fail for want of one).
    static var enabled: Bool { rawURL != nil || inCI }

    /// The harness database's URL; a recorded failure in CI without one.
    static func url() throws -> PostgresURL {
        let raw = try #require(
            rawURL, "CI is set but \(environmentKey) is not: start PostgreSQL with Tests/Postgres/pg-temp.sh and export its URL")
        return try PostgresURL(raw)
    }

    /// Runs `body` with a running client on `url`, stopped after.
    static func withClient<T: Sendable>(_ url: PostgresURL, _ body: @Sendable (PostgresClient) async throws -> T) async throws -> T {
        let client = PostgresClient(configuration: try url.clientConfiguration(), backgroundLogger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            return try await body(client)
        }
    }

    /// Runs statements, one after the other, on `url`.
    static func execute(_ url: PostgresURL, _ statements: String...) async throws {
        try await withClient(url) { client in
            for statement in statements { _ = try await client.query(PostgresQuery(unsafeSQL: statement)).collect() }
        }
    }

    /// A fresh, empty database for `body` (a unique name on the harness server), dropped after.
    static func withDatabase<T: Sendable>(_ body: @Sendable (PostgresURL) async throws -> T) async throws -> T {
        let admin = try url()
        let name = "warden_test_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased())"
        try await execute(admin, "CREATE DATABASE \(name)")
        var database = admin
        database.database = name
        do {
            let result = try await body(database)
            try await execute(admin, "DROP DATABASE \(name) WITH (FORCE)")
            return result
        } catch {
            try? await execute(admin, "DROP DATABASE \(name) WITH (FORCE)")
            throw error
        }
    }

    /// A store opened on a fresh database.
    static func withStore<T: Sendable>(
        retention: RetentionPolicy = RetentionPolicy(), _ body: @Sendable (PostgresStateStore) async throws -> T
    ) async throws -> T {
        try await withDatabase { url in
            try await PostgresStateStore.withStore(url: url, retention: retention, logger: logger) { store in try await body(store) }
        }
    }

    /// Makes `fence`'s node the holder of its shard in its epoch for `seconds` more (negative:
    /// expired that long ago), as the lease coordinator would.
    static func holdLease(_ store: PostgresStateStore, _ fence: ShardFence, seconds: Int = 60) async throws {
        _ = try await store.client.query(
            """
            INSERT INTO shard_leases (shard, holder, epoch, expires_at, acquired_at)
            VALUES (\(fence.shard.rawValue), \(fence.node), \(fence.epoch), now() + make_interval(secs => \(Double(seconds))), now())
            ON CONFLICT (shard) DO UPDATE SET holder = EXCLUDED.holder, epoch = EXCLUDED.epoch, expires_at = EXCLUDED.expires_at
            """
        ).collect()
    }
}
