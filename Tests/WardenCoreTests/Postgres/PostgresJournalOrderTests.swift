import Foundation
import Synchronization
import Testing
import WardenCore
import WardenPostgres

/// Cursors over the shared journal: with writers on several connections (and nodes), a reader
/// following `journal(since:)` must never skip an entry committed after it read past its number.
@Suite(.enabled(if: PostgresHarness.enabled, "set ECS_WARDEN_TEST_POSTGRES_URL (Tests/Postgres/pg-temp.sh) to run"), .timeLimit(.minutes(1)))
struct PostgresJournalOrderTests {
    /// What a task of the cursor test returns: the numbers a writer was given, or those the follower saw.
    enum Part: Sendable {
        case written([Int64])
        case followed([Int64])
    }

    @Test func concurrentFencedAndUnfencedAppendsKeepCursorsGapFree() async throws {
        try await PostgresHarness.withDatabase { url in
            // Three stores (three nodes' clients) on one database; each writer alternates fenced
            // writes (a transaction of several round trips) and single-statement events.
            let writers: Int64 = 6
            let perWriter: Int64 = 40
            try await PostgresStateStore.withStore(url: url, logger: PostgresHarness.logger) { reader in
                let fence = ShardFence(shard: .project("p"), node: "a", epoch: 1)
                try await PostgresHarness.holdLease(reader, fence, seconds: 600)
                let written = try await withThrowingTaskGroup(of: Part.self) { group in
                    for node in 0..<3 {
                        group.addTask {
                            try await PostgresStateStore.withStore(url: url, logger: PostgresHarness.logger) { store in
                                try await withThrowingTaskGroup(of: [Int64].self) { writersGroup in
                                    for writer in 0..<Int(writers / 3) {
                                        writersGroup.addTask {
                                            var mine: [Int64] = []
                                            for index in 0..<Int(perWriter) {
                                                mine.append(
                                                    try await store.append(
                                                        JournalEntry(
                                                            at: StoreContract.t0, kind: .event, loop: "quota", message: "n\(node)-w\(writer)-\(index)",
                                                            fence: index % 2 == 0 ? fence : nil)))
                                            }
                                            return mine
                                        }
                                    }
                                    return .written(try await writersGroup.reduce(into: []) { $0 += $1 })
                                }
                            }
                        }
                    }
                    // The follower: pages through the journal while the writers run, until it has
                    // passed the last number (numbers are dense: one per append).
                    group.addTask {
                        var seen: [Int64] = []
                        var cursor: Int64 = 0
                        while cursor < writers * perWriter {
                            let page = try await reader.journal(since: cursor, limit: 7)
                            seen += page.map(\.seq)
                            cursor = page.last?.seq ?? cursor
                            if page.isEmpty { try await Task.sleep(for: .milliseconds(2)) }
                        }
                        return .followed(seen)
                    }
                    var written: [Int64] = []
                    var followed: [Int64] = []
                    for try await part in group {
                        switch part {
                        case .written(let seqs): written += seqs
                        case .followed(let seqs): followed = seqs
                        }
                    }
                    // Every entry the writers were told about was seen by the follower, once, in order.
                    #expect(followed == written.sorted())
                    return written
                }
                #expect(Set(written).count == Int(writers * perWriter))
                #expect(written.sorted() == Array(1...(writers * perWriter)))
                #expect(try await reader.lastSequence() == writers * perWriter)
            }
        }
    }

    /// Numbers are never reused, even when pruning removed the newest entries.
    @Test func sequenceNumbersAreNotReusedAfterPruning() async throws {
        try await PostgresHarness.withStore(retention: RetentionPolicy(journalDays: 1, journalMaxEntries: 10)) { store in
            let old = try await store.append(JournalEntry(at: StoreContract.t0, kind: .event, loop: "quota", message: "old"))
            try await store.prune(now: StoreContract.t0.addingTimeInterval(10 * 86_400))
            #expect(try await store.entry(seq: old) == nil)
            let next = try await store.append(JournalEntry(at: StoreContract.t0, kind: .event, loop: "quota", message: "new"))
            #expect(next > old)
        }
    }
}
