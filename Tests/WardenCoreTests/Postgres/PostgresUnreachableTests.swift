import Foundation
import Testing
import WardenCore
import WardenPostgres

/// A server that cannot be reached fails the store's calls within its operation timeout (the
/// pool alone retries for about a minute). Needs no database: nothing listens on port 1.
@Suite struct PostgresUnreachableTests {
    @Test func anUnreachableServerFailsWithinTheOperationTimeout() async throws {
        let url = try PostgresURL("postgres://warden:secret@127.0.0.1:1/state?sslmode=disable")
        let started = ContinuousClock.now
        let error = await #expect(throws: PostgresStoreError.self) {
            try await PostgresStateStore.withStore(url: url, operationTimeout: .milliseconds(500), logger: PostgresHarness.logger) { _ in }
        }
        // Well below the pool's own minute of retries, with room for a loaded machine (5.7 s seen
        // with the suite running beside six busy loops on two cores).
        #expect(ContinuousClock.now - started < .seconds(20))
        #expect(error?.isTimeout == true)
        #expect(error?.description.contains("secret") == false)
        #expect(error?.description.contains("127.0.0.1:1") == true)
    }
}
