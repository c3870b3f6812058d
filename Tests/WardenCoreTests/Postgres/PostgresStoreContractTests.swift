import Foundation
import Testing
import WardenCore
import WardenPostgres

/// The store contract, unchanged, on PostgreSQL: every case on a database of its own.
@Suite(.enabled(if: PostgresHarness.enabled, "set ECS_WARDEN_TEST_POSTGRES_URL (Tests/Postgres/pg-temp.sh) to run"))
struct PostgresStoreContractTests {
    @Test(arguments: StoreContract.allCases) func contract(_ contract: StoreContract) async throws {
        try await PostgresHarness.withStore(retention: RetentionPolicy(journalDays: 30, journalMaxEntries: 1000)) { store in
            try await contract.run(store)
        }
    }
}

extension PostgresStoreContractTests {
    @Test func fenceRoundTrip() async throws {
        try await PostgresHarness.withStore { store in
            try await StoreContract.fenceRoundTrip(store) { fence in try await PostgresHarness.holdLease(store, fence) }
        }
    }
}
