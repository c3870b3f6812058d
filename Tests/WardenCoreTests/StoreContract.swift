import Foundation
import GRDB
import Testing

@testable import WardenCore

/// The contract every `StateStore` implementation passes, written against the protocol only
/// (as fluent-kit's benchmarker is for its drivers). A backend's test suite runs every case on a
/// fresh store of its own (`SQLiteStoreContractTests`; the cluster backend runs it unchanged).
enum StoreContract: String, CaseIterable, Sendable {
    case journalOrderAndCursors
    case concurrentWriters
    case everyResultRoundTrips
    case openIntentsAndCallStates
    case retention
    case episodesOncePerKey
    case firstSeenClocks
    case saleStateTransitions
    case quotaHistoryAndLevels
    case snoozesAndMarks
    case watchedJobs
    case acceptedCallsAndJobEnds
    case savingsWindows
    case batchesAcrossProjects

    static let t0 = Date(timeIntervalSince1970: 1_790_000_000)

    func run(_ store: any StateStore) async throws {
        switch self {
        case .journalOrderAndCursors: try await Self.journalOrderAndCursors(store)
        case .concurrentWriters: try await Self.concurrentWriters(store)
        case .everyResultRoundTrips: try await Self.everyResultRoundTrips(store)
        case .openIntentsAndCallStates: try await Self.openIntentsAndCallStates(store)
        case .retention: try await Self.retention(store)
        case .episodesOncePerKey: try await Self.episodesOncePerKey(store)
        case .firstSeenClocks: try await Self.firstSeenClocks(store)
        case .saleStateTransitions: try await Self.saleStateTransitions(store)
        case .quotaHistoryAndLevels: try await Self.quotaHistoryAndLevels(store)
        case .snoozesAndMarks: try await Self.snoozesAndMarks(store)
        case .watchedJobs: try await Self.watchedJobs(store)
        case .acceptedCallsAndJobEnds: try await Self.acceptedCallsAndJobEnds(store)
        case .savingsWindows: try await Self.savingsWindows(store)
        case .batchesAcrossProjects: try await Self.batchesAcrossProjects(store)
        }
    }

    static func event(_ message: String, at offset: TimeInterval = 0, kind: JournalEntry.Kind = .event, fence: ShardFence? = nil) -> JournalEntry {
        JournalEntry(at: t0.addingTimeInterval(offset), kind: kind, loop: "quota", message: message, fence: fence)
    }

    static func journalOrderAndCursors(_ store: any StateStore) async throws {
        #expect(try await store.lastSequence() == 0)
        var seqs: [Int64] = []
        for index in 0..<10 { seqs.append(try await store.append(event("e\(index)", kind: index % 3 == 0 ? .dryRun : .event))) }
        #expect(seqs == seqs.sorted() && Set(seqs).count == 10)
        #expect(try await store.lastSequence() == seqs.last)
        // Following with a cursor visits every entry once, in order.
        var seen: [String] = []
        var cursor: Int64 = 0
        while true {
            let page = try await store.journal(since: cursor, limit: 3)
            guard let last = page.last else { break }
            seen += page.map(\.message)
            cursor = last.seq
        }
        #expect(seen == (0..<10).map { "e\($0)" })
        #expect(try await store.journal(since: 0, limit: 100, kinds: [.dryRun]).map(\.message) == ["e0", "e3", "e6", "e9"])
        #expect(try await store.journal(since: seqs[8], limit: 100).map(\.seq) == [seqs[9]])
        let one = try #require(try await store.entry(seq: seqs[4]))
        #expect(one.message == "e4" && one.at == t0 && one.kind == .event)
        #expect(try await store.entry(seq: seqs[9] + 100) == nil)
    }

    static func concurrentWriters(_ store: any StateStore) async throws {
        let seqs = try await withThrowingTaskGroup(of: [Int64].self) { group in
            for writer in 0..<8 {
                group.addTask {
                    var mine: [Int64] = []
                    for index in 0..<25 { mine.append(try await store.append(event("w\(writer)-\(index)"))) }
                    return mine
                }
            }
            var all: [Int64] = []
            for try await mine in group {
                #expect(mine == mine.sorted())
                all += mine
            }
            return all
        }
        #expect(Set(seqs).count == 200)
        #expect(try await store.journal(since: 0, limit: 1000).count == 200)
        #expect(try await store.lastSequence() == seqs.max())
    }

    static func everyResultRoundTrips(_ store: any StateStore) async throws {
        for result in ActionResult.allCases {
            let seq = try await store.append(
                JournalEntry(
                    at: t0, kind: .outcome, loop: "schedule", project: "p", subject: "s", action: "stop", clientToken: "t", jobId: "j",
                    servers: ["a", "b\u{00E9}"], result: result, message: "m", intentSeq: 1, boundary: t0, retryOf: 7))
            let read = try #require(try await store.entry(seq: seq))
            #expect(read.result == result)
            #expect(read.servers == ["a", "b\u{00E9}"] && read.boundary == t0 && read.retryOf == 7 && read.clientToken == "t" && read.jobId == "j")
        }
    }

    static func openIntentsAndCallStates(_ store: any StateStore) async throws {
        func intent(_ loop: String, _ servers: [String]) async throws -> Int64 {
            try await store.append(
                JournalEntry(at: t0, kind: .intent, loop: loop, project: "p", subject: "office", action: "stop", servers: servers, result: .pending, message: "stop"))
        }
        func close(_ seq: Int64, _ result: ActionResult) async throws {
            try await store.append(
                JournalEntry(at: t0.addingTimeInterval(1), kind: .outcome, loop: "schedule", result: result, message: result.rawValue, intentSeq: seq))
        }
        let open = try await intent("schedule", ["a"])
        let refused = try await intent("schedule", ["b"])
        let accepted = try await intent("schedule", ["c", "d"])
        let unknown = try await intent("schedule", ["e"])
        let other = try await intent("stuck", ["f"])
        try await close(refused, .refused)
        try await close(accepted, .accepted)
        try await close(accepted, .partial)
        try await close(unknown, .unknown)
        let dry = try await store.append(JournalEntry(at: t0, kind: .dryRun, loop: "schedule", project: "p", subject: "office", action: "stop", servers: ["g"], message: "dry"))
        try await store.recordServerOutcomes([
            ServerOutcome(intentSeq: accepted, serverId: "c", result: .success, at: t0),
            ServerOutcome(intentSeq: accepted, serverId: "d", result: .failed, errorCode: "Ecs.0603", retryAt: t0.addingTimeInterval(60), at: t0),
        ])
        // Idempotent per intent and server.
        try await store.recordServerOutcomes([ServerOutcome(intentSeq: accepted, serverId: "c", result: .success, at: t0)])
        #expect(try await store.openIntents(loop: nil).map(\.seq) == [open, other])
        #expect(try await store.openIntents(loop: "schedule").map(\.seq) == [open])
        #expect(try await store.outcomes(of: accepted).map(\.result) == [.accepted, .partial])
        let calls = try await store.calls(loop: "schedule", since: t0)
        #expect(calls.map(\.intent.seq) == [open, refused, accepted, unknown, dry])
        #expect(calls.map(\.state) == [.open, .refused, .accepted, .ambiguous, .accepted])
        let failed = try #require(calls[2].serverOutcomes["d"])
        #expect(failed.result == .failed && failed.errorCode == "Ecs.0603" && failed.retryAt == t0.addingTimeInterval(60))
        #expect(calls[2].serverOutcomes.count == 2)
        #expect(try await store.calls(loop: "schedule", since: t0.addingTimeInterval(1)).isEmpty)
    }

    static func retention(_ store: any StateStore) async throws {
        let now = t0.addingTimeInterval(100 * 86_400)
        let oldEvent = try await store.append(event("old"))
        let oldOpen = try await store.append(JournalEntry(at: t0, kind: .intent, loop: "schedule", servers: ["a"], result: .pending, message: "open"))
        let oldClosed = try await store.append(JournalEntry(at: t0, kind: .intent, loop: "schedule", servers: ["b"], result: .pending, message: "closed"))
        try await store.append(JournalEntry(at: t0, kind: .outcome, loop: "schedule", result: .success, message: "done", intentSeq: oldClosed))
        try await store.recordServerOutcomes([ServerOutcome(intentSeq: oldClosed, serverId: "b", result: .success, at: t0)])
        let recent = try await store.append(event("recent", at: 100 * 86_400 - 60))
        try await store.appendQuotaSamples(project: "p", samples: [QuotaSample(resource: "instances", used: 1, limit: 10)], at: t0)
        try await store.prune(now: now)
        // Whatever the policy, an open intent stays and is still open; the rest went with age.
        let left = try await store.journal(since: 0, limit: 100).map(\.seq)
        #expect(left.contains(oldOpen) && left.contains(recent))
        #expect(!left.contains(oldEvent) && !left.contains(oldClosed))
        #expect(try await store.openIntents(loop: nil).map(\.seq) == [oldOpen])
        #expect(try await store.quotaHistory(project: "p", resource: "instances", since: t0).isEmpty)
    }

    static func episodesOncePerKey(_ store: any StateStore) async throws {
        #expect(try await store.beginEpisode("server/main/a", loop: "stuck", at: t0))
        #expect(try await store.beginEpisode("server/main/a", loop: "stuck", at: t0) == false)
        #expect(try await store.beginEpisode("server/main/b", loop: "stuck", at: t0))
        #expect(try await store.beginEpisode("server/mainx/c", loop: "stuck", at: t0))
        #expect(try await store.beginEpisode("server/main/a", loop: "schedule", at: t0) == false)
        #expect(try await store.endEpisodes(loop: "stuck", prefix: "server/main/", keeping: ["server/main/b"]) == ["server/main/a"])
        #expect(try await store.endEpisodes(loop: "stuck", prefix: "server/main_/", keeping: []).isEmpty)
        #expect(try await store.endEpisode("server/mainx/c"))
        #expect(try await store.endEpisode("server/mainx/c") == false)
        #expect(try await store.beginEpisode("server/main/a", loop: "stuck", at: t0))
    }

    static func firstSeenClocks(_ store: any StateStore) async throws {
        let first = try await store.firstSeen(
            project: "p", states: [.init(serverId: "a", status: "ACTIVE", taskState: "powering-off"), .init(serverId: "b", status: "BUILD", taskState: nil)],
            now: t0)
        #expect(first == ["a": t0, "b": t0])
        let later = t0.addingTimeInterval(600)
        let second = try await store.firstSeen(
            project: "p", states: [.init(serverId: "a", status: "ACTIVE", taskState: "powering-off"), .init(serverId: "b", status: "BUILD", taskState: "spawning")],
            now: later)
        #expect(second == ["a": t0, "b": later])
        // A server no longer listed is forgotten: seen again, its clock starts again.
        _ = try await store.firstSeen(project: "p", states: [.init(serverId: "b", status: "BUILD", taskState: "spawning")], now: later)
        let third = try await store.firstSeen(project: "p", states: [.init(serverId: "a", status: "ACTIVE", taskState: "powering-off")], now: later)
        #expect(third == ["a": later])
        // Projects are apart.
        #expect(try await store.firstSeen(project: "q", states: [.init(serverId: "a", status: "ACTIVE", taskState: "powering-off")], now: t0) == ["a": t0])
    }

    static func saleStateTransitions(_ store: any StateStore) async throws {
        let key = SaleKey(az: "az1", flavor: "s3.small.2")
        let other = SaleKey(az: "az2", flavor: "s3.small.2")
        let first = try await store.recordSaleStates(region: "r", states: [key: "normal", other: "normal"], at: t0)
        #expect(first.map(\.from) == [nil, nil] && first.map(\.to) == ["normal", "normal"])
        #expect(try await store.recordSaleStates(region: "r", states: [key: "normal", other: "normal"], at: t0.addingTimeInterval(10)).isEmpty)
        let sold = try await store.recordSaleStates(region: "r", states: [key: "sellout", other: "normal"], at: t0.addingTimeInterval(20))
        #expect(sold == [SaleTransition(region: "r", az: "az1", flavor: "s3.small.2", from: "normal", to: "sellout", at: t0.addingTimeInterval(20))])
        #expect(try await store.saleStates(region: "r")[key] == SaleStateSince(state: "sellout", since: t0.addingTimeInterval(20)))
        #expect(try await store.saleStates(region: "elsewhere").isEmpty)
        // A flavor no longer listed: a transition to `absent`, never a silent deletion.
        let gone = try await store.recordSaleStates(region: "r", states: [key: "sellout"], at: t0.addingTimeInterval(30))
        #expect(gone == [SaleTransition(region: "r", az: "az2", flavor: "s3.small.2", from: "normal", to: SaleStateResolver.absent, at: t0.addingTimeInterval(30))])
        #expect(try await store.saleStates(region: "r")[other] == nil)
        let since = try await store.saleTransitions(region: "r", since: t0.addingTimeInterval(1), limit: 10)
        #expect(since.map(\.to) == ["sellout", SaleStateResolver.absent])
        #expect(try await store.saleTransitions(region: nil, since: nil, limit: 2).map(\.to) == ["sellout", SaleStateResolver.absent])
    }

    static func quotaHistoryAndLevels(_ store: any StateStore) async throws {
        for step in 0..<3 {
            try await store.appendQuotaSamples(
                project: "p", samples: [QuotaSample(resource: "cores", used: 10 * step, limit: 100), QuotaSample(resource: "ram", used: step, limit: nil)],
                at: t0.addingTimeInterval(Double(step) * 60))
        }
        #expect(try await store.quotaHistory(project: "p", resource: "cores", since: t0.addingTimeInterval(30)) == [
            QuotaReading(at: t0.addingTimeInterval(60), used: 10), QuotaReading(at: t0.addingTimeInterval(120), used: 20),
        ])
        #expect(try await store.quotaLevels(project: "p").isEmpty)
        try await store.setQuotaLevel(project: "p", resource: "cores", level: "warning")
        try await store.setQuotaLevel(project: "p", resource: "cores", level: "critical")
        #expect(try await store.quotaLevels(project: "p") == ["cores": "critical"])
    }

    static func snoozesAndMarks(_ store: any StateStore) async throws {
        try await store.snooze(Snooze(project: "p", serverId: "a", until: t0.addingTimeInterval(3600), reason: "demo"))
        try await store.snooze(Snooze(project: "p", serverId: "b", until: t0.addingTimeInterval(60), reason: "short"))
        try await store.snooze(Snooze(project: "p", serverId: "b", until: t0.addingTimeInterval(7200), reason: "longer"))
        #expect(try await store.activeSnoozes(at: t0.addingTimeInterval(120)).map(\.reason) == ["demo", "longer"])
        #expect(try await store.unsnooze(project: "p", serverId: "a"))
        #expect(try await store.unsnooze(project: "p", serverId: "a") == false)
        #expect(try await store.activeSnoozes(at: t0.addingTimeInterval(7300)).isEmpty)
        #expect(try await store.lastHandledBoundary(schedule: "office", project: "p") == nil)
        try await store.setLastHandledBoundary(schedule: "office", project: "p", boundary: t0)
        try await store.setLastHandledBoundary(schedule: "office", project: "p", boundary: t0.addingTimeInterval(86_400))
        #expect(try await store.lastHandledBoundary(schedule: "office", project: "p") == t0.addingTimeInterval(86_400))
        #expect(try await store.lastHandledBoundary(schedule: "office", project: "q") == nil)
    }

    static func watchedJobs(_ store: any StateStore) async throws {
        let job = WatchedJob(project: "p", jobId: "j1", jobType: nil, source: "warden", registeredAt: t0, intentSeq: 3)
        try await store.watch(job)
        try await store.watch(WatchedJob(project: "p", jobId: "j1", jobType: "other", source: "external", registeredAt: t0, intentSeq: nil))
        try await store.watch(WatchedJob(project: "p", jobId: "j2", jobType: nil, source: "external", registeredAt: t0.addingTimeInterval(1), intentSeq: nil))
        #expect(try await store.openJobs() == [job, WatchedJob(project: "p", jobId: "j2", jobType: nil, source: "external", registeredAt: t0.addingTimeInterval(1), intentSeq: nil)])
        try await store.updateJob(project: "p", jobId: "j1", status: "RUNNING", jobType: "batchStopServers", closedAt: nil, beganAt: t0)
        let running = try #require(try await store.openJobs().first)
        #expect(running.status == "RUNNING" && running.jobType == "batchStopServers" && running.beganAt == t0 && running.intentSeq == 3)
        try await store.updateJob(project: "p", jobId: "j1", status: "SUCCESS", jobType: nil, closedAt: t0.addingTimeInterval(5), beganAt: nil)
        #expect(try await store.openJobs().map(\.jobId) == ["j2"])
    }
}

extension StoreContract {
    static func acceptedCallsAndJobEnds(_ store: any StateStore) async throws {
        let intent = try await store.append(
            JournalEntry(at: t0, kind: .intent, loop: "schedule", project: "p", subject: "office", action: "stop", servers: ["a", "b"], result: .pending, message: "stop"))
        let job = WatchedJob(project: "p", jobId: "j1", jobType: nil, source: "warden", registeredAt: t0, intentSeq: intent)
        let accepted = try await store.recordAccepted(
            JournalEntry(at: t0, kind: .outcome, loop: "schedule", project: "p", jobId: "j1", result: .accepted, message: "job j1", intentSeq: intent),
            watch: job)
        #expect(accepted > intent)
        #expect(try await store.openJobs() == [job])
        #expect(try await store.calls(loop: "schedule", since: t0).map(\.state) == [.accepted])
        let end = t0.addingTimeInterval(30)
        try await store.recordJobEnd(
            project: "p", jobId: "j1", status: "SUCCESS", jobType: "batchStopServers", closedAt: end, beganAt: t0.addingTimeInterval(1),
            serverOutcomes: [
                ServerOutcome(intentSeq: intent, serverId: "a", result: .success, at: end),
                ServerOutcome(intentSeq: intent, serverId: "b", result: .failed, errorCode: "Ecs.0603", retryAt: end.addingTimeInterval(60), at: end),
            ],
            outcome: JournalEntry(at: end, kind: .outcome, loop: "schedule", project: "p", jobId: "j1", result: .partial, message: "partial", intentSeq: intent))
        #expect(try await store.openJobs().isEmpty)
        #expect(try await store.outcomes(of: intent).map(\.result) == [.accepted, .partial])
        let call = try #require(try await store.calls(loop: "schedule", since: t0).first)
        #expect(call.state == .accepted && call.serverOutcomes.count == 2 && call.serverOutcomes["b"]?.retryAt == end.addingTimeInterval(60))
        #expect(try await store.scheduledStopSuccesses(project: "p") == ["a": end])
        #expect(try await store.scheduledStopSuccesses(project: "q").isEmpty)
    }

    static func savingsWindows(_ store: any StateStore) async throws {
        let small = try await store.openSavingsWindow(
            SavingsWindow(project: "p", serverId: "a", schedule: "office", flavor: "s3.small.1", vcpus: 1, ramMB: 1024, openedAt: t0, countedUntil: t0))
        let large = try await store.openSavingsWindow(
            SavingsWindow(
                project: "p", serverId: "b", schedule: "office", flavor: "c6.large.2", vcpus: 2, ramMB: 4096, openedAt: t0.addingTimeInterval(600),
                countedUntil: t0.addingTimeInterval(600)))
        #expect(small.id > 0 && large.id != small.id && small.serverId == "a")
        #expect(try await store.openSavingsWindows(project: "p").map(\.id) == [small.id, large.id])
        try await store.closeSavingsWindow(id: small.id, at: t0.addingTimeInterval(3600))
        // Closing again changes nothing: the first close stands.
        try await store.closeSavingsWindow(id: small.id, at: t0.addingTimeInterval(7200))
        try await store.markSavingsCounted(id: large.id, until: t0.addingTimeInterval(1200))
        var counted = large
        counted.countedUntil = t0.addingTimeInterval(1200)
        #expect(try await store.openSavingsWindows(project: "p") == [counted])
        #expect(try await store.openSavingsWindows(project: "q").isEmpty)
        #expect(try await store.latestSavingsWindowStart(project: "p") == ["a": t0, "b": t0.addingTimeInterval(600)])
        // The overlap with [t0 + 1800, t0 + 4200]: the closed window to its close, the open one to the end.
        #expect(try await store.savings(since: t0.addingTimeInterval(1800), until: t0.addingTimeInterval(4200)) == [
            SavingsTotal(schedule: "office", flavor: "c6.large.2", serverSeconds: 2400, vcpuSeconds: 4800, ramMBSeconds: 2400 * 4096),
            SavingsTotal(schedule: "office", flavor: "s3.small.1", serverSeconds: 1800, vcpuSeconds: 1800, ramMBSeconds: 1800 * 1024),
        ])
        #expect(try await store.savings(since: t0.addingTimeInterval(-100), until: t0).isEmpty)
    }

    /// A journal entry's fence is stored and read back on every journal write path (an entry
    /// without one stays without). `hold` makes the backend accept the fence: PostgreSQL checks
    /// it against a lease row; one SQLite node has nothing to check it against.
    static func fenceRoundTrip(_ store: any StateStore, holding hold: (ShardFence) async throws -> Void) async throws {
        let fence = ShardFence(shard: .project("p"), node: "warden-a", epoch: 3)
        try await hold(fence)
        let intent = try await store.append(
            JournalEntry(at: t0, kind: .intent, loop: "schedule", project: "p", action: "stop", servers: ["a"], result: .pending, message: "stop", fence: fence))
        try await store.append(event("unfenced"))
        let job = WatchedJob(project: "p", jobId: "j1", jobType: nil, source: "warden", registeredAt: t0, intentSeq: intent)
        try await store.recordAccepted(
            JournalEntry(at: t0, kind: .outcome, loop: "schedule", project: "p", jobId: "j1", result: .accepted, message: "job", intentSeq: intent, fence: fence),
            watch: job)
        try await store.recordJobEnd(
            project: "p", jobId: "j1", status: "SUCCESS", jobType: nil, closedAt: t0, beganAt: nil,
            serverOutcomes: [ServerOutcome(intentSeq: intent, serverId: "a", result: .success, at: t0)],
            outcome: JournalEntry(at: t0, kind: .outcome, loop: "schedule", project: "p", jobId: "j1", result: .success, message: "done", intentSeq: intent, fence: fence))
        #expect(try await store.journal(since: 0, limit: 10).map(\.fence) == [fence, nil, fence, fence])
        #expect(try await store.entry(seq: intent)?.fence == fence)
        #expect(try await store.calls(loop: "schedule", since: t0).first?.intent.fence == fence)
    }

    /// The per-pass forms the loops use: one call covers many projects, resources, keys or windows,
    /// and answers exactly what the one-at-a-time forms would.
    static func batchesAcrossProjects(_ store: any StateStore) async throws {
        // Episodes: only new keys are reported begun; ending by several prefixes keeps the rest.
        #expect(try await store.beginEpisodes(["tag-error/p/a", "tag-error/q/b", "tag-error/p/a"], loop: "schedule", at: t0) == ["tag-error/p/a", "tag-error/q/b"])
        #expect(try await store.beginEpisodes(["tag-error/p/a", "tag-error/p/c", "tag-error/px/d"], loop: "schedule", at: t0) == ["tag-error/p/c", "tag-error/px/d"])
        #expect(try await store.beginEpisodes([], loop: "schedule", at: t0).isEmpty)
        #expect(
            try await store.endEpisodes(loop: "schedule", prefixes: ["tag-error/p/", "tag-error/q/"], keeping: ["tag-error/p/c"])
                == ["tag-error/p/a", "tag-error/q/b"])
        // A prefix does not claim a longer project name, and another loop's keys are untouched.
        #expect(try await store.endEpisodes(loop: "stuck", prefixes: ["tag-error/px/"], keeping: []).isEmpty)
        #expect(try await store.endEpisodes(loop: "schedule", prefixes: ["tag-error/"], keeping: []) == ["tag-error/p/c", "tag-error/px/d"])

        // Quota history of several resources in one read; a resource without samples is empty.
        try await store.appendQuotaSamples(project: "p", samples: [QuotaSample(resource: "cores", used: 1, limit: 10), QuotaSample(resource: "ram", used: 5, limit: nil)], at: t0)
        try await store.appendQuotaSamples(project: "p", samples: [QuotaSample(resource: "cores", used: 2, limit: 10)], at: t0.addingTimeInterval(60))
        try await store.appendQuotaSamples(project: "q", samples: [QuotaSample(resource: "cores", used: 9, limit: 10)], at: t0)
        let history = try await store.quotaHistory(project: "p", resources: ["cores", "ram", "instances"], since: t0)
        #expect(history["cores"]?.map(\.used) == [1, 2])
        #expect(history["ram"]?.map(\.used) == [5])
        #expect(history["instances"] ?? [] == [])
        #expect(try await store.quotaHistory(project: "p", resources: ["cores"], since: t0.addingTimeInterval(1))["cores"]?.map(\.used) == [2])

        // Marks of several projects written in one call and read in one.
        let refused = try await store.setLastHandledBoundaries([
            BoundaryMark(schedule: "office", project: "p", boundary: t0, fence: nil),
            BoundaryMark(schedule: "lab", project: "p", boundary: t0.addingTimeInterval(60), fence: nil),
            BoundaryMark(schedule: "office", project: "q", boundary: t0.addingTimeInterval(120), fence: nil),
        ])
        #expect(refused.isEmpty)
        _ = try await store.setLastHandledBoundaries([BoundaryMark(schedule: "office", project: "p", boundary: t0.addingTimeInterval(86_400), fence: nil)])
        #expect(
            try await store.handledBoundaries(projects: ["p", "q", "r"]) == [
                ScheduleMarkKey(schedule: "office", project: "p"): t0.addingTimeInterval(86_400),
                ScheduleMarkKey(schedule: "lab", project: "p"): t0.addingTimeInterval(60),
                ScheduleMarkKey(schedule: "office", project: "q"): t0.addingTimeInterval(120),
            ])
        #expect(try await store.handledBoundaries(projects: ["q"]).keys.map(\.project) == ["q"])
        #expect(try await store.handledBoundaries(projects: []).isEmpty)

        // Savings: windows of several projects, their progress written in one transaction.
        let a = try await store.openSavingsWindow(
            SavingsWindow(project: "p", serverId: "a", schedule: "office", flavor: "s3.small.1", vcpus: 1, ramMB: 1024, openedAt: t0, countedUntil: t0))
        let b = try await store.openSavingsWindow(
            SavingsWindow(project: "q", serverId: "b", schedule: "office", flavor: "s3.small.1", vcpus: 1, ramMB: 1024, openedAt: t0, countedUntil: t0))
        #expect(Set(try await store.openSavingsWindows(projects: ["p", "q"]).map(\.id)) == [a.id, b.id])
        try await store.recordSavingsProgress(counted: [a.id: t0.addingTimeInterval(300), b.id: t0.addingTimeInterval(300)], closed: [b.id: t0.addingTimeInterval(300)])
        let open = try await store.openSavingsWindows(projects: ["p", "q"])
        #expect(open.map(\.id) == [a.id] && open.first?.countedUntil == t0.addingTimeInterval(300))
        #expect(try await store.latestSavingsWindowStart(projects: ["p", "q", "r"]) == ["p": ["a": t0], "q": ["b": t0]])
        #expect(try await store.scheduledStopSuccesses(projects: ["p", "q"]).isEmpty)
    }
}

/// The contract on the embedded backend, in memory and on disk.
@Suite struct SQLiteStoreContractTests {
    @Test(arguments: StoreContract.allCases) func inMemory(_ contract: StoreContract) async throws {
        try await contract.run(try SQLiteStateStore.inMemory(retention: RetentionPolicy(journalDays: 30, journalMaxEntries: 1000)))
    }

    @Test(arguments: StoreContract.allCases) func onDisk(_ contract: StoreContract) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("warden-contract-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await contract.run(try SQLiteStateStore.open(directory: directory, retention: RetentionPolicy(journalDays: 30, journalMaxEntries: 1000)))
    }

    @Test func fenceRoundTrip() async throws {
        try await StoreContract.fenceRoundTrip(try SQLiteStateStore.inMemory()) { _ in }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("warden-fence-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await StoreContract.fenceRoundTrip(try SQLiteStateStore.open(directory: directory)) { _ in }
    }

    /// A state file of schema v3 (before fences) opens: its entries read without a fence, new
    /// ones keep theirs.
    @Test func aVersion3DatabaseGainsFences() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("warden-v3-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do {
            let queue = try DatabaseQueue(path: directory + "/state.sqlite")
            try SQLiteStateStore.migrator.migrate(queue, upTo: "v3")
            try await queue.write { db in
                try db.execute(sql: "INSERT INTO journal (seq, at, kind, loop, message) VALUES (1, 0, 'event', 'quota', 'before')")
            }
        }
        let store = try SQLiteStateStore.open(directory: directory)
        let fence = ShardFence(shard: .project("p"), node: "warden-a", epoch: 1)
        let seq = try await store.append(JournalEntry(at: StoreContract.t0, kind: .event, loop: "quota", message: "after", fence: fence))
        #expect(try await store.journal().map(\.fence) == [nil, fence])
        #expect(seq == 2)
    }
}
