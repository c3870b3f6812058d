import Foundation
import Testing
import WardenCore
import WardenPostgres

/// The writes SQLite makes in one transaction are all or nothing here too.
@Suite(.enabled(if: PostgresHarness.enabled, "set ECS_WARDEN_TEST_POSTGRES_URL (Tests/Postgres/pg-temp.sh) to run"))
struct PostgresTransactionTests {
    /// A job end whose outcome cannot be journaled (here: the sequence row is gone) leaves the
    /// job open and records no server outcome, so the job is closed again later.
    @Test func aJobEndThatCannotBeJournaledChangesNothing() async throws {
        try await PostgresHarness.withStore { store in
            let intent = try await store.append(
                JournalEntry(at: StoreContract.t0, kind: .intent, loop: "schedule", project: "p", action: "stop", servers: ["a"], result: .pending, message: "stop"))
            try await store.watch(WatchedJob(project: "p", jobId: "j1", jobType: nil, source: "warden", registeredAt: StoreContract.t0, intentSeq: intent))
            _ = try await store.client.query("DELETE FROM journal_sequence").collect()
            await #expect(throws: StateStoreError.self) {
                try await store.recordJobEnd(
                    project: "p", jobId: "j1", status: "SUCCESS", jobType: nil, closedAt: StoreContract.t0, beganAt: nil,
                    serverOutcomes: [ServerOutcome(intentSeq: intent, serverId: "a", result: .success, at: StoreContract.t0)],
                    outcome: JournalEntry(at: StoreContract.t0, kind: .outcome, loop: "schedule", result: .success, message: "done", intentSeq: intent))
            }
            #expect(try await store.openJobs().map(\.jobId) == ["j1"])
            #expect(try await store.scheduledStopSuccesses(project: "p").isEmpty)
        }
    }
}
