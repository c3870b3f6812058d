import Foundation
import PostgresNIO
import Testing
import WardenCore
import WardenPostgres

/// Backends terminated under the store (`pg_terminate_backend`, as an administrator or a failover
/// does): calls on the dead connections fail fast until the pool has replaced them, then the store
/// goes on, with nothing lost or written twice.
///
/// Opt-in (`ECS_WARDEN_TEST_POSTGRES_CHAOS=1`): it passed 260 runs in a row here, but an earlier
/// run hung once, somewhere after the termination, where it was not logged (postgres-nio 1.33.2
/// never answers a query sent on a connection closing at that moment, and no cancellation ends
/// that wait), and a hung `swift test` would stall CI. The steps are logged now, so a hang shows
/// where it stopped.
@Suite(
    .enabled(if: PostgresHarness.rawURL != nil && ProcessInfo.processInfo.environment["ECS_WARDEN_TEST_POSTGRES_CHAOS"] == "1", "set ECS_WARDEN_TEST_POSTGRES_CHAOS=1"),
    .timeLimit(.minutes(1)))
struct PostgresReconnectTests {
    static func step(_ text: String) { PostgresHarness.logger.info("reconnect test: \(text)") }

    @Test func terminatedBackendsAreReplaced() async throws {
        try await PostgresHarness.withDatabase { url in
            Self.step("database created")
            try await PostgresStateStore.withStore(url: url, logger: PostgresHarness.logger) { store in
                Self.step("store open")
                let fence = ShardFence(shard: .project("p"), node: "a", epoch: 1)
                try await PostgresHarness.holdLease(store, fence, seconds: 600)
                // Several pooled connections, all idle.
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for index in 0..<4 { group.addTask { _ = try await store.append(StoreContract.event("before \(index)")) } }
                    try await group.waitForAll()
                }
                let admin = try PostgresHarness.url()
                let terminated = try await PostgresHarness.withClient(admin) { client in
                    try await client.query(
                        "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity WHERE datname = \(url.database) AND pid <> pg_backend_pid()"
                    ).collect().first?.decode(Int64.self) ?? 0
                }
                #expect(terminated >= 1)
                Self.step("terminated \(terminated) backends")
                // Calls on dead connections fail (the server's notice, the closed socket, or
                // found closed before sending) until the pool has replaced them; then calls
                // succeed again — fenced ones (a transaction) and single statements alike.
                var failures = 0
                var written: [String] = []
                let deadline = ContinuousClock.now + .seconds(10)
                while written.count < 6 && ContinuousClock.now < deadline {
                    let message = "after \(written.count + failures)"
                    Self.step("append '\(message)'")
                    do {
                        _ = try await store.append(StoreContract.event(message, fence: written.count % 2 == 0 ? fence : nil))
                        written.append(message)
                    } catch is PostgresStoreError {
                        failures += 1
                        try await Task.sleep(for: .milliseconds(20))
                    }
                }
                #expect(written.count == 6, "\(failures) failures")
                let messages = try await store.journal(since: 0, limit: 100).map(\.message)
                #expect(messages.filter { $0.hasPrefix("before") }.count == 4)
                #expect(messages.filter { $0.hasPrefix("after") } == written)
                Self.step("checked; closing the store")
            }
            Self.step("store closed")
        }
        Self.step("database dropped")
    }
}
