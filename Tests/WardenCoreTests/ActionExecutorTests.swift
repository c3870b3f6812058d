import ECSAPI
import ECSSimulator
import Foundation
import GRDB
import Testing

@testable import WardenCore

/// The action executor against the simulator over HTTP: each class of answer, job following to
/// per-server outcomes, recovery, and the scheduler's retries of failed sub-jobs through it.
@Suite struct ActionExecutorTests {
    func intent(_ servers: [String], at now: Date, boundary: Date? = stopBoundary) -> ActionIntent {
        ActionIntent(loop: .schedule, action: .stop, project: "main", servers: servers, subject: "office", boundary: boundary, description: "stop", at: now)
    }

    @Test func acceptedCallIsFollowedToPerServerOutcomes() async throws {
        try await WardenHarness.with(clockStart: monday) { h in
            let ids = [await h.addServer("web-1"), await h.addServer("web-2")]
            let executor = ActionExecutor(context: h.context)
            let result = try await executor.perform(intent(ids, at: stopBoundary), client: h.context.projects[0].client, dryRun: false)
            guard case .accepted(let seq, let jobId) = result else {
                Issue.record("expected accepted, got \(result)")
                return
            }
            let entry = try #require(try await h.context.store.entry(seq: seq))
            #expect(entry.kind == .intent && entry.result == .pending && entry.boundary == stopBoundary && entry.clientToken != nil)
            await h.settle()
            let report = await executor.followJobs(projects: h.context.projects, now: stopBoundary.addingTimeInterval(30))
            #expect(report.followed == 1 && report.closed == 1)
            #expect(try await h.context.store.outcomes(of: seq).map(\.result) == [.accepted, .success])
            let call = try #require(try await h.context.store.calls(loop: "schedule", since: monday).first)
            #expect(call.state == .accepted)
            #expect(Set(call.serverOutcomes.keys) == Set(ids))
            #expect(call.serverOutcomes.values.allSatisfy { $0.result == .success })
            #expect(try await h.context.store.openJobs().isEmpty)
            let exposition = h.context.metrics.exposition()
            #expect(exposition.contains(#"ecs_warden_schedule_actions_total{schedule="office",action="stop",result="success"} 2"#))
            #expect(jobId.isEmpty == false)
        }
    }

    @Test func refusalClosesTheIntentAndNoAnswerLeavesItOpen() async throws {
        try await WardenHarness.with(clockStart: monday) { h in
            let id = await h.addServer("web-1")
            let executor = ActionExecutor(context: h.context)
            let client = h.context.projects[0].client
            // A clear refusal (a 4xx with an error code): nothing done, intent closed `refused`.
            let refused = try await executor.perform(intent(["no-such-server"], at: stopBoundary), client: client, dryRun: false)
            guard case .refused(let refusedSeq, _) = refused else {
                Issue.record("expected refused, got \(refused)")
                return
            }
            #expect(try await h.context.store.outcomes(of: refusedSeq).map(\.result) == [.refused])
            // Connections dropped: the call may have been carried out; the intent stays open.
            await h.region.setFaults({ var f = SimFaults(); f.dropRate = 1.0; return f }())
            let dropped = try await executor.perform(intent([id], at: stopBoundary), client: client, dryRun: false)
            guard case .noAnswer(let openSeq, _) = dropped else {
                Issue.record("expected no answer, got \(dropped)")
                return
            }
            #expect(try await h.context.store.openIntents().map(\.seq) == [openSeq])
            #expect(dropped.mayHaveActed && !refused.mayHaveActed)
        }
    }

    @Test func dryRunJournalsAndShutdownSendsNothing() async throws {
        try await WardenHarness.with(clockStart: monday) { h in
            let id = await h.addServer("web-1")
            let executor = ActionExecutor(context: h.context)
            let client = h.context.projects[0].client
            let dry = try await executor.perform(intent([id], at: stopBoundary), client: client, dryRun: true)
            guard case .dryRun = dry else {
                Issue.record("expected dry-run, got \(dry)")
                return
            }
            h.context.mutationGate.close()
            let late = try await executor.perform(intent([id], at: stopBoundary), client: client, dryRun: false)
            #expect(late == .notSent(reason: "shutdown has begun"))
            #expect(await h.operations().contains("BatchStopServers") == false)
            #expect(try await h.context.store.journal(kinds: [.intent]).isEmpty)
        }
    }

    @Test func anUnknownStoredResultIsRefused() async throws {
        let store = try SQLiteStateStore.inMemory()
        // On write: the CHECK constraint.
        await #expect(throws: (any Error).self) {
            try await store.database.write { db in
                try db.execute(
                    sql: "INSERT INTO journal (at, kind, loop, servers, result, message) VALUES (0, 'outcome', 'schedule', '[]', 'acceptd', 'typo')")
            }
        }
        // On read (a row that got past the constraint): an error naming it, never a guess.
        try await store.database.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA ignore_check_constraints = ON")
            try db.execute(sql: "INSERT INTO journal (at, kind, loop, servers, result, message) VALUES (0, 'outcome', 'schedule', '[]', 'acceptd', 'typo')")
            try db.execute(sql: "PRAGMA ignore_check_constraints = OFF")
        }
        do {
            _ = try await store.journal()
            Issue.record("an unknown result must not be read")
        } catch let error as StateStoreError {
            #expect(error.description.contains("acceptd"))
        }
    }
}

@Suite struct FailedSubJobRetryTests {
    /// Sub-jobs fail with `Ecs.0603` ("try again 1 minute later"): the servers are planned again
    /// once the minute has passed, under a new intent and token, once and only once.
    @Test func retryableFailureIsRetriedOnceAndOnlyOnce() async throws {
        try await WardenHarness.with(settings: settings([officeHours()]), clockStart: monday) { h in
            let ids = [await h.addServer("web-1", tags: ["warden-schedule": "office"]), await h.addServer("web-2", tags: ["warden-schedule": "office"])]
            let scheduler = AutoStopScheduler(context: h.context)
            let follower = JobFollower(context: h.context)
            await h.region.setFaults({ var f = SimFaults(); f.failNextJobs = 2; f.failNextJobsCode = "Ecs.0603"; return f }())
            _ = try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(1))
            await h.settle()
            _ = try await follower.reconcile(now: stopBoundary.addingTimeInterval(10))
            for id in ids { #expect(await h.status(id) == "ACTIVE") }
            // Before the code's wait: held, the loop asks to look again when it ends.
            let waiting = try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(30))
            #expect(waiting.actions == 0)
            #expect(scheduler.latestPlan()?.skips.filter { $0.reason == "retry_wait" }.count == 2)
            #expect(waiting.wakeAt == stopBoundary.addingTimeInterval(70))
            // After it: one retry, a new intent naming the first, a new token.
            let retry = try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(71))
            #expect(retry.actions == 2)
            let intents = try await h.context.store.journal(kinds: [.intent])
            #expect(intents.count == 2)
            #expect(intents[1].retryOf == intents[0].seq)
            #expect(intents[1].clientToken != intents[0].clientToken)
            await h.settle()
            _ = try await follower.reconcile(now: stopBoundary.addingTimeInterval(80))
            // The retry failed too (the fault covered two jobs): not retried again.
            let exhausted = try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(200))
            #expect(exhausted.actions == 0)
            #expect(scheduler.latestPlan()?.skips.filter { $0.reason == "retry_exhausted" }.count == 2)
            #expect(await h.region.requests().filter { $0.operation == "BatchStopServers" }.count == 2)
            let exposition = h.context.metrics.exposition()
            #expect(exposition.contains(#"ecs_warden_schedule_actions_total{schedule="office",action="stop",result="retrying"} 2"#))
            #expect(exposition.contains(#"ecs_warden_schedule_actions_total{schedule="office",action="stop",result="failed"} 2"#))
        }
    }

    @Test func retryThatSucceedsConvergesAndAPersonsStartInBetweenWins() async throws {
        try await WardenHarness.with(settings: settings([officeHours()]), clockStart: monday) { h in
            let ids = [await h.addServer("web-1", tags: ["warden-schedule": "office"]), await h.addServer("web-2", tags: ["warden-schedule": "office"])]
            let scheduler = AutoStopScheduler(context: h.context)
            let follower = JobFollower(context: h.context)
            await h.region.setFaults({ var f = SimFaults(); f.failNextJobs = 1; f.failNextJobsCode = "Ecs.0603"; return f }())
            _ = try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(1))
            await h.settle()
            _ = try await follower.reconcile(now: stopBoundary.addingTimeInterval(10))
            // A person stops web-2 by hand meanwhile: only web-1 is retried.
            _ = try await h.context.projects[0].client.batchAction(.stop(.soft), serverIds: [ids[1]])
            await h.settle()
            let mark = await h.logCount()
            let retry = try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(75))
            #expect(retry.actions == 1)
            let calls = await h.region.requests(since: mark).filter { $0.operation == "BatchStopServers" }
            #expect(calls.count == 1)
            await h.settle()
            _ = try await follower.reconcile(now: stopBoundary.addingTimeInterval(90))
            for id in ids { #expect(await h.status(id) == "SHUTOFF") }
            // Converged: nothing more.
            let after = try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(300))
            #expect(after.actions == 0)
        }
    }

    /// Part of a batch fails (the simulator fails the sub-jobs of chosen servers with `Ecs.0603`):
    /// only those are retried, after the wait, and every server ends stopped, none called twice
    /// but the retried ones.
    @Test func partOfABatchFailsAndOnlyThoseServersAreRetried() async throws {
        try await WardenHarness.with(settings: settings([officeHours()]), clockStart: monday) { h in
            var ids: [String] = []
            for index in 0..<6 { ids.append(await h.addServer("web-\(index)", tags: ["warden-schedule": "office"])) }
            let failing = Set(ids.prefix(2))
            await h.region.setFaults({ var f = SimFaults(); f.failSubJobServers = Array(failing); return f }())
            let scheduler = AutoStopScheduler(context: h.context)
            let follower = JobFollower(context: h.context)
            _ = try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(1))
            await h.settle()
            _ = try await follower.reconcile(now: stopBoundary.addingTimeInterval(10))
            let first = try #require(try await h.context.store.journal(kinds: [.intent]).first)
            #expect(try await h.context.store.outcomes(of: first.seq).map(\.result) == [.accepted, .partial])
            let retry = try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(71))
            #expect(retry.actions == 2)
            let stops = await h.region.requests().filter { $0.operation == "BatchStopServers" }
            #expect(stops.count == 2)
            await h.settle()
            _ = try await follower.reconcile(now: stopBoundary.addingTimeInterval(80))
            for id in ids { #expect(await h.status(id) == "SHUTOFF") }
            let intents = try await h.context.store.journal(kinds: [.intent])
            #expect(Set(intents[1].servers) == failing)
            #expect(try await h.context.store.outcomes(of: intents[1].seq).map(\.result) == [.accepted, .success])
        }
    }

    /// A start refused for lack of capacity (`Ecs.0319`) is retried after 2, then 4 minutes (a
    /// growing wait), counted as `capacity`, and the server ends running once capacity is back.
    @Test func aStartWithoutCapacityIsRetriedWithBackoffAndReportedAsCapacity() async throws {
        let startBoundary = utc("2026-11-24T07:00:00Z")
        try await WardenHarness.with(settings: settings([officeHours()]), clockStart: monday) { h in
            let id = await h.addServer("web-1", running: false, tags: ["warden-schedule": "office"])
            let other = await h.addServer("web-2", running: false, tags: ["warden-schedule": "office"])
            await h.region.setFaults({ var f = SimFaults(); f.failSubJobServers = [id]; f.failSubJobCode = "Ecs.0319"; f.failSubJobTimes = 2; return f }())
            let scheduler = AutoStopScheduler(context: h.context)
            let follower = JobFollower(context: h.context)
            func pass(_ offset: TimeInterval) async throws -> ReconcileReport {
                let report = try await scheduler.reconcile(now: startBoundary.addingTimeInterval(offset))
                await h.settle()
                _ = try await follower.reconcile(now: startBoundary.addingTimeInterval(offset + 5))
                return report
            }
            let actions = [
                try await pass(1).actions,  // both started; web-1 fails for lack of capacity
                try await pass(100).actions,  // before 2 minutes: nothing
                try await pass(130).actions,  // first retry: fails again
                try await pass(300).actions,  // the second wait is 4 minutes: nothing
                try await pass(380).actions,  // second retry: capacity is back
            ]
            #expect(actions == [2, 0, 1, 0, 1])
            #expect(await h.status(other) == "ACTIVE")
            #expect(await h.status(id) == "ACTIVE")
            let exposition = h.context.metrics.exposition()
            #expect(exposition.contains(#"ecs_warden_schedule_actions_total{schedule="office",action="start",result="capacity"} 2"#))
            #expect(exposition.contains(#"ecs_warden_schedule_actions_total{schedule="office",action="start",result="success"} 2"#))
            #expect(!exposition.contains(#"action="start",result="failed""#))
        }
    }

    @Test func permanentFailureIsNotRetried() async throws {
        try await WardenHarness.with(settings: settings([officeHours()]), clockStart: monday) { h in
            let id = await h.addServer("web-1", tags: ["warden-schedule": "office"])
            let scheduler = AutoStopScheduler(context: h.context)
            await h.region.setFaults({ var f = SimFaults(); f.failNextJobs = 1; f.failNextJobsCode = "Ecs.0100"; return f }())
            _ = try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(1))
            await h.settle()
            _ = try await JobFollower(context: h.context).reconcile(now: stopBoundary.addingTimeInterval(10))
            let later = try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(600))
            #expect(later.actions == 0)
            #expect(await h.status(id) == "ACTIVE")
            #expect(await h.region.requests().filter { $0.operation == "BatchStopServers" }.count == 1)
            #expect(try await h.events(action: "job-failed").count == 1)
        }
    }
}

@Suite struct PerMinuteBudgetTests {
    /// The API reference: at most 1,000 servers stopped per minute. With a limit of 2, five servers
    /// are stopped 2 + 2 + 1 over three minutes, and the plan says when the rest waits.
    @Test func stopsAreSpreadOverMinutes() async throws {
        let limits = AutoStopLimits(perMinuteLimit: 2)
        try await WardenHarness.with(settings: settings([officeHours()], limits: limits), clockStart: monday) { h in
            for index in 1...5 { await h.addServer("web-\(index)", tags: ["warden-schedule": "office"]) }
            let scheduler = AutoStopScheduler(context: h.context)
            let first = try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(1))
            #expect(first.actions == 2)
            #expect(first.moreWork == false)
            #expect(first.wakeAt == stopBoundary.addingTimeInterval(61))
            let plan = try #require(scheduler.latestPlan())
            #expect(plan.waitingForBudget == 3)
            #expect(plan.skips.filter { $0.reason == "per_minute_budget" }.count == 3)
            let early = try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(30))
            #expect(early.actions == 0)
            let second = try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(62))
            #expect(second.actions == 2)
            let third = try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(123))
            #expect(third.actions == 1)
            await h.settle()
            #expect(await h.region.requests().filter { $0.operation == "BatchStopServers" }.count == 3)
        }
    }

    @Test func budgetIsPerProjectAndActionOverASlidingMinute() {
        let now = stopBoundary.addingTimeInterval(30)
        let calls = [
            JournaledCall(project: "a", schedule: "office", action: .stop, at: stopBoundary, servers: ["1", "2", "3"], state: .accepted),
            JournaledCall(project: "a", schedule: "office", action: .stop, at: stopBoundary.addingTimeInterval(-61), servers: ["4"], state: .accepted),
            JournaledCall(project: "a", schedule: "office", action: .stop, at: stopBoundary, servers: ["5"], state: .refused),
        ]
        var budget = PerMinuteBudget(calls: calls, limit: 5, now: now)
        #expect(budget.take(4, project: "a", action: .stop, dryRun: false) == 2)
        #expect(budget.take(4, project: "a", action: .start, dryRun: false) == 4)
        #expect(budget.take(9, project: "b", action: .stop, dryRun: false) == 5)
        #expect(budget.freesAt(project: "a", action: .stop, dryRun: false) == stopBoundary.addingTimeInterval(60))
    }
}

@Suite struct StoreMigrationTests {
    /// A state file of the previous release (schema v1, free-text results) opens, keeps its journal,
    /// and its results are read as the closed set (`error` was a refusal, `fail` a failed job).
    @Test func aVersion1DatabaseOpensAndKeepsItsJournal() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("warden-v1-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do {
            let queue = try DatabaseQueue(path: directory + "/state.sqlite")
            try SQLiteStateStore.migrator.migrate(queue, upTo: "v1")
            try await queue.write { db in
                for (seq, kind, result, intent) in [(1, "intent", "pending", nil), (2, "outcome", "error", 1), (3, "intent", "pending", nil), (4, "outcome", "fail", 3), (5, "outcome", "fail", 3)] as [(Int, String, String, Int?)] {
                    try db.execute(
                        sql: "INSERT INTO journal (seq, at, kind, loop, project, subject, action, servers, result, message, intent_seq) VALUES (?, ?, ?, 'schedule', 'main', 'office', 'stop', '[\"s1\"]', ?, 'old', ?)",
                        arguments: [seq, Double(seq), kind, result, intent])
                }
                // v1 pruned its newest entry (its AUTOINCREMENT counter stays at 5).
                try db.execute(sql: "DELETE FROM journal WHERE seq = 5")
            }
        }
        let store = try SQLiteStateStore.open(directory: directory)
        let entries = try await store.journal()
        #expect(entries.map(\.seq) == [1, 2, 3, 4])
        // Sequence numbers continue from v1's counter, even past rows v1 had already pruned.
        #expect(try await store.append(JournalEntry(at: Date(), kind: .event, loop: "quota", message: "after")) == 6)
        #expect(entries.map(\.result) == [.pending, .refused, .pending, .failed])
        #expect(entries[0].servers == ["s1"])
        let calls = try await store.calls(loop: "schedule", since: Date(timeIntervalSince1970: 0))
        #expect(calls.map(\.state) == [.refused, .accepted])
    }

    @Test func episodesAreReportedOnceAcrossRestarts() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("warden-ep-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let now = Date(timeIntervalSince1970: 1_790_000_000)
        do {
            let store = try SQLiteStateStore.open(directory: directory)
            #expect(try await store.beginEpisode("server/main/a/ACTIVE/powering-off", loop: "stuck", at: now))
            #expect(try await store.beginEpisode("server/main/a/ACTIVE/powering-off", loop: "stuck", at: now) == false)
            #expect(try await store.beginEpisode("server/mainx/b/ACTIVE/", loop: "stuck", at: now))
        }
        let reopened = try SQLiteStateStore.open(directory: directory)
        #expect(try await reopened.beginEpisode("server/main/a/ACTIVE/powering-off", loop: "stuck", at: now) == false)
        #expect(try await reopened.endEpisodes(loop: "stuck", prefix: "server/main/", keeping: []) == ["server/main/a/ACTIVE/powering-off"])
        // `_` in a project name is not a wildcard: ending main_'s episodes leaves mainx's alone.
        #expect(try await reopened.endEpisodes(loop: "stuck", prefix: "server/main_/", keeping: []).isEmpty)
        #expect(try await reopened.beginEpisode("server/mainx/b/ACTIVE/", loop: "stuck", at: now) == false)
    }
}

/// What the schedules saved: a stop window opens when the scheduled stop succeeded and counts
/// server-, vCPU- and RAM-seconds per schedule and flavor; a server a person starts inside the
/// window stops counting (at the next pass).
@Suite struct SavingsTests {
    @Test func aStopWindowCountsUntilAPersonStartsTheServer() async throws {
        try await WardenHarness.with(settings: settings([officeHours()]), clockStart: monday) { h in
            let kept = await h.addServer("web-1", tags: ["warden-schedule": "office"])
            let restarted = await h.addServer("web-2", tags: ["warden-schedule": "office"])
            _ = try await FlavorSaleTracker(context: h.context).reconcile(now: stopBoundary)
            let size = try #require(h.context.flavorCatalogue.size(of: "s3.small.2"))
            let scheduler = AutoStopScheduler(context: h.context)
            let follower = JobFollower(context: h.context)
            _ = try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(1))
            await h.settle()
            _ = try await follower.reconcile(now: stopBoundary.addingTimeInterval(10))
            _ = try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(70))
            // A person starts web-2 in the night.
            _ = try await h.context.projects[0].client.batchAction(.start, serverIds: [restarted])
            await h.settle()
            _ = try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(130))
            _ = try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(190))
            #expect(await h.status(kept) == "SHUTOFF")
            let totals = try await h.context.store.savings(since: stopBoundary, until: stopBoundary.addingTimeInterval(190))
            let office = try #require(totals.first { $0.schedule == "office" && $0.flavor == "s3.small.2" })
            // web-1: 10 → 190 s; web-2: 10 → 130 s (the pass that saw it running).
            #expect(office.serverSeconds == 180 + 120)
            #expect(office.vcpuSeconds == Double(300 * size.vcpus))
            #expect(office.ramMBSeconds == Double(300 * size.ramMB))
            let exposition = h.context.metrics.exposition()
            #expect(exposition.contains(#"ecs_warden_schedule_stopped_server_seconds_total{schedule="office",flavor="s3.small.2"} 300"#))
            // The next pass adds web-1's time only.
            _ = try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(250))
            #expect(h.context.metrics.exposition().contains(#"ecs_warden_schedule_stopped_server_seconds_total{schedule="office",flavor="s3.small.2"} 360"#))
        }
    }
}

/// What counts as a refusal for sure (the intent is closed) and what may have been carried out (the
/// intent stays open and recovery decides from the servers).
@Suite struct RefusalClassificationTests {
    func error(_ kind: ECSError.Kind, _ status: Int?, attempts: Int = 1) -> ECSError {
        ECSError(kind: kind, httpStatus: status, message: "x", operation: "BatchStopServers", isRetryable: false, attempts: attempts)
    }

    @Test func onlyAClearAnswerIsARefusal() {
        #expect(ActionExecutor.isClearRefusal(error(.api, 400)))
        #expect(ActionExecutor.isClearRefusal(error(.authentication, 401)))
        #expect(ActionExecutor.isClearRefusal(error(.throttled, 429)))
        #expect(ActionExecutor.isClearRefusal(error(.invalidRequest, nil)))
        // A gateway may have passed the call on; a 2xx could not be read; no answer at all.
        #expect(!ActionExecutor.isClearRefusal(error(.api, 500)))
        #expect(!ActionExecutor.isClearRefusal(error(.api, 502)))
        #expect(!ActionExecutor.isClearRefusal(error(.malformedResponse, 200)))
        #expect(!ActionExecutor.isClearRefusal(error(.timeout, nil)))
        #expect(!ActionExecutor.isClearRefusal(error(.transport, nil)))
        // A refusal after earlier attempts (one may have timed out after the cloud took it).
        #expect(!ActionExecutor.isClearRefusal(error(.api, 400, attempts: 2)))
    }

    @Test func aServerErrorLeavesTheIntentOpen() async throws {
        try await WardenHarness.with(clockStart: monday) { h in
            let id = await h.addServer("web-1")
            await h.region.setFaults({ var f = SimFaults(); f.errorRate = 1.0; f.errorStatus = 500; return f }())
            let result = try await ActionExecutor(context: h.context).perform(
                ActionIntent(loop: .schedule, action: .stop, project: "main", servers: [id], subject: "office", boundary: stopBoundary, description: "stop", at: stopBoundary),
                client: h.context.projects[0].client, dryRun: false)
            guard case .noAnswer(let seq, _) = result else {
                Issue.record("a 500 must leave the intent open, got \(result)")
                return
            }
            #expect(try await h.context.store.openIntents().map(\.seq) == [seq])
        }
    }

    @Test func youngCallsOutliveTheEntryCountAndCommitsAreSynchronous() async throws {
        let store = try SQLiteStateStore.inMemory(retention: RetentionPolicy(journalDays: 90, journalMaxEntries: 1, keepCallsFor: 3600))
        let now = Date(timeIntervalSince1970: 1_795_400_000)
        let intent = try await store.append(JournalEntry(at: now, kind: .intent, loop: "schedule", servers: ["a"], result: .pending, message: "stop"))
        try await store.append(JournalEntry(at: now, kind: .outcome, loop: "schedule", result: .success, message: "done", intentSeq: intent))
        for index in 0..<5 { try await store.append(JournalEntry(at: now, kind: .event, loop: "quota", message: "e\(index)")) }
        try await store.prune(now: now.addingTimeInterval(60))
        let left = try await store.journal(since: 0, limit: 100)
        #expect(left.filter { $0.kind != .event }.map(\.seq) == [intent, intent + 1])
        #expect(left.filter { $0.kind == .event }.count == 1)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("warden-sync-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let onDisk = try SQLiteStateStore.open(directory: directory)
        #expect(try await onDisk.database.write { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") } == 2)
    }

    /// Observations (quota samples and levels, first-seen times, sale states) commit without their own
    /// sync; the connection is FULL again afterwards, also when the write fails, so an intent written
    /// next is synced.
    @Test func observationWritesLeaveTheConnectionSynchronous() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("warden-sync-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try SQLiteStateStore.open(directory: directory)
        let now = Date(timeIntervalSince1970: 1_795_400_000)
        try await store.appendQuotaSamples(project: "p", samples: [QuotaSample(resource: "instances", used: 1, limit: 10)], at: now)
        try await store.setQuotaLevel(project: "p", resource: "instances", level: "warning")
        _ = try await store.firstSeen(project: "p", states: [ServerStateSighting(serverId: "s", status: "ACTIVE", taskState: nil)], now: now)
        #expect(try await store.database.write { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") } == 2)
        await #expect(throws: (any Error).self) {
            try await store.writeObservations { db in try db.execute(sql: "INSERT INTO no_such_table VALUES (1)") }
        }
        #expect(try await store.database.write { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") } == 2)
        #expect(try await store.quotaHistory(project: "p", resource: "instances", since: now).map(\.used) == [1])
        #expect(try await store.quotaLevels(project: "p") == ["instances": "warning"])
    }
}
