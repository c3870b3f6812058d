import Foundation
import PostgresNIO
import Testing
import WardenCore
import WardenPostgres

@Suite(.enabled(if: PostgresHarness.enabled, "set ECS_WARDEN_TEST_POSTGRES_URL (Tests/Postgres/pg-temp.sh) to run"))
struct PostgresMigrationTests {
    static func applied(_ store: PostgresStateStore) async throws -> [String] {
        try await store.client.query("SELECT id FROM schema_migrations ORDER BY id").collect().map { try $0.decode(String.self) }
    }

    @Test func reopeningAppliesNothingAndKeepsTheData() async throws {
        try await PostgresHarness.withDatabase { url in
            let seq = try await PostgresStateStore.withStore(url: url, logger: PostgresHarness.logger) { store in
                try await store.append(JournalEntry(at: StoreContract.t0, kind: .event, loop: "quota", message: "kept"))
            }
            try await PostgresStateStore.withStore(url: url, logger: PostgresHarness.logger) { store async throws in
                #expect(try await Self.applied(store) == ["v1", "v2", "v3"])
                #expect(try await store.entry(seq: seq)?.message == "kept")
            }
        }
    }

    /// Three replicas starting at once on an empty database: each opens, the schema is made once.
    @Test func threeReplicasMigrateAnEmptyDatabaseAtOnce() async throws {
        try await PostgresHarness.withDatabase { url in
            try await withThrowingTaskGroup(of: [String].self) { group in
                for _ in 0..<3 {
                    group.addTask {
                        try await PostgresStateStore.withStore(url: url, logger: PostgresHarness.logger) { store in try await Self.applied(store) }
                    }
                }
                for try await applied in group { #expect(applied == ["v1", "v2", "v3"]) }
            }
        }
    }

    @Test func aNewerSchemaIsRefused() async throws {
        try await PostgresHarness.withDatabase { url in
            try await PostgresStateStore.withStore(url: url, logger: PostgresHarness.logger) { store in
                _ = try await store.client.query("INSERT INTO schema_migrations (id) VALUES ('v99-from-the-future')").collect()
            }
            await #expect(throws: StateStoreError.newerSchema(path: url.redacted, unknownMigrations: ["v99-from-the-future"])) {
                try await PostgresStateStore.withStore(url: url, logger: PostgresHarness.logger) { _ in }
            }
        }
    }

    /// Closed sets hold in the database (CHECK) and on read: a value written around the
    /// constraint is an error, never a guess.
    @Test func valuesOutsideClosedSetsAreRefused() async throws {
        try await PostgresHarness.withStore { store in
            let refused = await #expect(throws: PSQLError.self) {
                _ = try await store.client.query(
                    "INSERT INTO journal (seq, at, kind, loop, message, result) VALUES (1, 0, 'event', 'quota', 'm', 'maybe')"
                ).collect()
            }
            #expect(refused?.serverInfo?[.sqlState] == "23514")  // check_violation
            _ = try await store.client.query("ALTER TABLE journal DROP CONSTRAINT journal_result_check").collect()
            _ = try await store.client.query(
                "INSERT INTO journal (seq, at, kind, loop, message, result) VALUES (1, 0, 'event', 'quota', 'm', 'maybe')"
            ).collect()
            await #expect(throws: StateStoreError.undecodable(what: "result", value: "maybe")) { _ = try await store.entry(seq: 1) }
        }
    }
}
