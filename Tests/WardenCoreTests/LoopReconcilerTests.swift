import ECSAPI
import ECSSimulator
import GRDB
import Foundation
import Testing

@testable import WardenCore

@Suite struct QuotaWatchTests {
    @Test func crossingsAreReportedOnceAndClearedAndForecast() async throws {
        try await WardenHarness.with(clockStart: monday) { h in
            try await h.region.setQuota(projectId: h.project, quota: SimQuota(instances: 10))
            for index in 0..<7 { await h.addServer("web-\(index)") }
            let watch = QuotaWatch(context: h.context)
            _ = try await watch.reconcile(now: monday)
            #expect(try await h.events(action: "threshold-crossed").isEmpty)
            await h.addServer("web-7")
            await h.addServer("web-8")
            _ = try await watch.reconcile(now: monday.addingTimeInterval(600))
            let crossed = try await h.events(action: "threshold-crossed")
            #expect(crossed.count == 1)
            #expect(crossed.first?.subject == "instances")
            #expect(crossed.first?.severity == "warning")
            // Level-triggered, edge-reported: the same state reports nothing new.
            _ = try await watch.reconcile(now: monday.addingTimeInterval(1200))
            #expect(try await h.events(action: "threshold-crossed").count == 1)
            await h.addServer("web-9")
            _ = try await watch.reconcile(now: monday.addingTimeInterval(1800))
            #expect(try await h.events(action: "threshold-crossed").map(\.severity) == ["warning", "critical"])
            let instances = try #require(watch.snapshot().first?.resources.first { $0.resource == "instances" })
            #expect(instances.used == 10 && instances.limit == 10 && instances.headroom == 0 && instances.level == .critical)
            #expect(instances.exhaustionETASeconds == 0)
            let cores = try #require(watch.snapshot().first?.resources.first { $0.resource == "cores" })
            #expect(cores.exhaustionETASeconds != nil)  // growing usage has a forecast
            try await h.region.setQuota(projectId: h.project, quota: SimQuota(instances: 100))
            _ = try await watch.reconcile(now: monday.addingTimeInterval(2400))
            #expect(try await h.events(action: "threshold-cleared").count == 1)
            let exposition = h.context.metrics.exposition()
            #expect(exposition.contains(#"ecs_warden_quota_limit{project="main",region="eu-west-0",resource="instances"} 100"#))
            #expect(exposition.contains(#"ecs_warden_quota_used{project="main",region="eu-west-0",resource="instances"} 10"#))
            #expect(exposition.contains(#"ecs_warden_quota_usage_ratio{project="main",region="eu-west-0",resource="instances"} 0.1"#))
        }
    }

    @Test func forecastIsLinearAndNeedsHistory() {
        let start = monday
        let samples = (0..<5).map { (at: start.addingTimeInterval(Double($0) * 3600), used: 10 + $0 * 2) }
        // 2 per hour, 18 used of 30: 6 hours left.
        #expect(QuotaForecaster.secondsToExhaustion(samples: samples, limit: 30) == 21_600.0)
        #expect(QuotaForecaster.secondsToExhaustion(samples: Array(samples.prefix(2)), limit: 30) == nil)
        #expect(QuotaForecaster.secondsToExhaustion(samples: samples, limit: nil) == nil)
        let flat = (0..<5).map { (at: start.addingTimeInterval(Double($0) * 3600), used: 10) }
        #expect(QuotaForecaster.secondsToExhaustion(samples: flat, limit: 30) == nil)
        #expect(QuotaThresholds().level(for: 0.8) == .warning)
        #expect(QuotaThresholds().level(for: 0.95) == .critical)
        #expect(QuotaThresholds().level(for: nil) == .ok)
    }

    @Test func oneFailingProjectDoesNotStopTheOthers() async throws {
        try await WardenHarness.with(projects: 2) { h in
            var projects = h.context.projects
            let broken = ECSClient(
                configuration: ECSClientConfiguration(
                    endpoint: URL(string: "http://127.0.0.1:1")!, projectId: "ffffffffffffffffffffffffffffffff",
                    authentication: .accessKey(.init(accessKey: "x", secretKey: "y")), retry: .none, connectTimeout: .milliseconds(200)),
                httpClient: h.http)
            projects.append(WardenProject(name: "broken", projectId: "ffffffffffffffffffffffffffffffff", region: "eu-west-0", client: broken))
            h.context.update(settings: h.context.settings, projects: projects)
            let report = try await QuotaWatch(context: h.context).reconcile(now: monday)
            #expect(report.failures.map(\.part) == ["broken"])
            #expect(PassOutcome.classify(report).resultLabel == "partial")
        }
    }
}

@Suite struct StuckTaskDetectorTests {
    @Test func stuckJobAndPoweringOffServerAreReportedAndFirstSeenSurvivesRestart() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("warden-stuck-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var rules = StuckRules()
        rules.defaultJobDeadline = 600
        let start = Date()  // the simulator's clock starts here too
        var store = try SQLiteStateStore.open(directory: directory)
        var serverId = ""
        var jobId = ""
        try await WardenHarness.with(settings: WardenSettings(stuck: rules), store: store, clockStart: start) { h in
            serverId = await h.addServer("web-1")
            await h.region.setFaults({ var f = SimFaults(); f.stickNextJobs = 1; return f }())
            let client = h.context.projects[0].client
            jobId = try await client.batchAction(.stop(.soft), serverIds: [serverId]).jobId
            let detector = StuckTaskDetector(context: h.context)
            try await detector.registerExternalJob(project: "main", jobId: jobId, now: start)
            let first = try await detector.reconcile(now: start.addingTimeInterval(60))
            #expect(first.failures.isEmpty)
            #expect(detector.snapshot().jobs.isEmpty)
            #expect(detector.snapshot().servers.isEmpty)
        }
        // Restart: a new store handle on the same directory, a new detector.
        store = try SQLiteStateStore.open(directory: directory)
        try await WardenHarness.with(settings: WardenSettings(stuck: rules), store: store, clockStart: start) { h in
            // Same server and job in the new simulator: re-create them with the same ids.
            await h.region.seedServers(
                projectId: h.project,
                [SimulatedRegion.SeedServer(id: serverId, name: "web-1", flavorId: "s3.small.2", availabilityZone: "eu-west-0a", running: true, tags: [], created: start.timeIntervalSince1970)])
            try await h.region.setServerState(projectId: h.project, serverId: serverId, vmState: nil, taskState: .some("powering-off"), locked: nil)
            let detector = StuckTaskDetector(context: h.context)
            let later = start.addingTimeInterval(16 * 60)
            let report = try await detector.reconcile(now: later)
            let stuck = try #require(detector.snapshot().servers.first)
            #expect(stuck.serverId == serverId)
            #expect(stuck.status == "ACTIVE" && stuck.taskState == "powering-off")
            // Measured from the first sighting before the restart (and `updated`), not from now.
            #expect(stuck.ageSeconds >= 15 * 60)
            #expect(try await h.events(action: "server-stuck").count == 1)
            // The job (unknown to this fresh simulator) is reported and dropped, not fatal.
            #expect(report.failures.isEmpty)
            let exposition = h.context.metrics.exposition()
            #expect(exposition.contains(#"ecs_warden_stuck_servers{project="main",region="eu-west-0",status="ACTIVE",task_state="powering-off"} 1"#))
            // Second pass: nothing new reported.
            _ = try await detector.reconcile(now: later.addingTimeInterval(60))
            #expect(try await h.events(action: "server-stuck").count == 1)
            // Recovered.
            try await h.region.setServerState(projectId: h.project, serverId: serverId, vmState: "stopped", taskState: .some(nil), locked: nil)
            _ = try await detector.reconcile(now: later.addingTimeInterval(120))
            #expect(detector.snapshot().servers.isEmpty)
            #expect(try await h.events(action: "server-recovered").count == 1)
        }
    }

    /// ERROR, a host DOWN and a fault are in the details from the first pass on: reported at once,
    /// once per episode (also after a restart), and once when they clear.
    @Test func unhealthyServersAreReportedOncePerEpisode() async throws {
        try await WardenHarness.with(clockStart: monday) { h in
            let broken = await h.addServer("db-1")
            let orphaned = await h.addServer("web-1")
            await h.addServer("web-2")
            try await h.region.setServerState(projectId: h.project, serverId: broken, vmState: "error", taskState: .some(nil), locked: nil)
            try await h.region.setServerState(projectId: h.project, serverId: orphaned, vmState: nil, taskState: nil, locked: nil, hostStatus: "DOWN")
            _ = try await StuckTaskDetector(context: h.context).reconcile(now: monday)
            let detector = StuckTaskDetector(context: h.context)
            _ = try await detector.reconcile(now: monday.addingTimeInterval(60))
            let unhealthy = detector.snapshot().unhealthy
            #expect(Set(unhealthy.map(\.serverId)) == [broken, orphaned])
            #expect(Set(unhealthy.flatMap(\.problems).map(\.reason)) == ["status_error", "fault", "host_down"])
            #expect(try await h.events(action: "server-unhealthy").count == 3)
            let exposition = h.context.metrics.exposition()
            #expect(exposition.contains(#"ecs_warden_unhealthy_servers{project="main",region="eu-west-0",reason="host_down"} 1"#))
            try await h.region.setServerState(projectId: h.project, serverId: orphaned, vmState: nil, taskState: nil, locked: nil, hostStatus: "UP")
            _ = try await detector.reconcile(now: monday.addingTimeInterval(120))
            #expect(try await h.events(action: "server-healthy").count == 1)
            #expect(detector.snapshot().unhealthy.map(\.serverId) == [broken])
        }
    }

    /// An operation someone else started and that never finishes: the stuck server is reported with
    /// its latest instance action — who, when, which request — read once per episode.
    @Test func aStuckServerNamesTheOperationOthersStarted() async throws {
        let start = Date()
        try await WardenHarness.with(clockStart: start) { h in
            let id = await h.addServer("web-1")
            await h.region.setFaults({ var f = SimFaults(); f.stickNextJobs = 1; return f }())
            // "A person in the console": a reboot outside the daemon, which hangs.
            _ = try await h.context.projects[0].client.batchAction(.reboot(.soft), serverIds: [id])
            let detector = StuckTaskDetector(context: h.context)
            _ = try await detector.reconcile(now: start)
            let mark = await h.logCount()
            _ = try await detector.reconcile(now: start.addingTimeInterval(16 * 60))
            let stuck = try #require(detector.snapshot().servers.first { $0.serverId == id })
            let operation = try #require(stuck.operation)
            #expect(operation.action == "reboot")
            #expect(operation.unfinished)
            #expect(operation.requestId.hasPrefix("req-"))
            let event = try #require(try await h.events(action: "server-stuck").first)
            #expect(event.message.contains("latest operation: reboot"))
            // Read once per episode: the next pass makes no instance-action call.
            let afterFirst = await h.operations(since: mark).filter { $0.contains("InstanceAction") }.count
            #expect(afterFirst == 2)
            let mark2 = await h.logCount()
            _ = try await detector.reconcile(now: start.addingTimeInterval(17 * 60))
            #expect(await h.operations(since: mark2).filter { $0.contains("InstanceAction") }.isEmpty)
            #expect(detector.snapshot().servers.first?.operation == operation)
        }
    }

    @Test func stuckJobIsReportedThenClosedWithPerServerOutcome() async throws {
        var rules = StuckRules()
        rules.defaultJobDeadline = 600
        let start = Date()
        try await WardenHarness.with(settings: WardenSettings(stuck: rules), clockStart: start) { h in
            let ids = [await h.addServer("web-1"), await h.addServer("web-2")]
            await h.region.setFaults({ var f = SimFaults(); f.stickNextJobs = 1; return f }())
            let client = h.context.projects[0].client
            let jobId = try await client.batchAction(.stop(.soft), serverIds: ids).jobId
            let detector = StuckTaskDetector(context: h.context)
            let follower = JobFollower(context: h.context)
            try await detector.registerExternalJob(project: "main", jobId: jobId, now: start)
            _ = try await follower.reconcile(now: start.addingTimeInterval(690))
            _ = try await detector.reconcile(now: start.addingTimeInterval(700))
            #expect(detector.snapshot().jobs.map(\.jobId) == [jobId])
            #expect(h.context.metrics.exposition().contains(#"ecs_warden_stuck_jobs{project="main",region="eu-west-0",job_type="batchStopServers"} 1"#))
            #expect(try await h.events(action: "job-stuck").count == 1)
            // A restart does not report the same stuck job again.
            _ = try await StuckTaskDetector(context: h.context).reconcile(now: start.addingTimeInterval(750))
            #expect(try await h.events(action: "job-stuck").count == 1)
            await h.region.releaseStuckJobs()
            await h.settle()
            _ = try await follower.reconcile(now: start.addingTimeInterval(790))
            _ = try await detector.reconcile(now: start.addingTimeInterval(800))
            #expect(detector.snapshot().jobs.isEmpty)
            #expect(try await h.context.store.openJobs().isEmpty)

            // A failing job: closed with the failed sub-jobs per server.
            await h.region.setFaults({ var f = SimFaults(); f.failNextJobs = 1; return f }())
            let failing = try await client.batchAction(.start, serverIds: ids).jobId
            try await detector.registerExternalJob(project: "main", jobId: failing, now: start.addingTimeInterval(900))
            await h.settle()
            _ = try await follower.reconcile(now: start.addingTimeInterval(1000))
            let failed = try #require(try await h.events(action: "job-failed").first)
            #expect(Set(failed.servers) == Set(ids))
        }
    }

    @Test func rulesCatchTaskStatesBehindStableStatuses() {
        let rules = StuckRules()
        #expect(rules.threshold(status: "ACTIVE", taskState: "powering-off") == 900.0)
        #expect(rules.threshold(status: "SHUTOFF", taskState: "powering-on") == 900.0)
        #expect(rules.threshold(status: "ERROR", taskState: "deleting") == 900.0)
        #expect(rules.threshold(status: "BUILD", taskState: "spawning") == 1800.0)
        #expect(rules.threshold(status: "VERIFY_RESIZE", taskState: nil) == 86_400.0)
        #expect(rules.threshold(status: "ACTIVE", taskState: nil) == nil)
    }
}

@Suite struct FlavorSaleTrackerTests {
    @Test func transitionsAreRecordedOncePerChangeAndQueriesAnswer() async throws {
        try await WardenHarness.with(projects: 2, clockStart: monday) { h in
            let tracker = FlavorSaleTracker(context: h.context)
            _ = try await tracker.reconcile(now: monday)
            let firstCount = await h.operations().filter { $0 == "ListFlavors" }.count
            #expect(firstCount == 1)  // two projects, one region: one read
            try await h.region.setSaleState(flavorId: "s3.small.2", az: "eu-west-0b", state: "sellout")
            let report = try await tracker.reconcile(now: monday.addingTimeInterval(60))
            #expect(report.summary.contains("1 sale-state changes"))
            let state = try #require(try await tracker.state(region: "eu-west-0", az: "eu-west-0b", flavor: "s3.small.2"))
            #expect(state.soldOut)
            #expect(state.since == monday.addingTimeInterval(60))
            #expect(try await tracker.launchable(region: "eu-west-0", az: "eu-west-0b").contains { $0.flavor == "s3.small.2" } == false)
            #expect(try await tracker.launchable(region: "eu-west-0", az: "eu-west-0a").contains { $0.flavor == "s3.small.2" })
            #expect(h.context.metrics.exposition().contains(#"ecs_warden_flavor_sold_out{region="eu-west-0",az="eu-west-0b",flavor="s3.small.2"} 1"#))
            _ = try await tracker.reconcile(now: monday.addingTimeInterval(120))
            #expect(try await h.events(action: "sold-out").count == 1)
            try await h.region.setSaleState(flavorId: "s3.small.2", az: "eu-west-0b", state: nil)
            _ = try await tracker.reconcile(now: monday.addingTimeInterval(180))
            let transitions = try await h.context.store.saleTransitions(region: "eu-west-0", since: monday.addingTimeInterval(1), limit: 1000)
            #expect(transitions.map { "\($0.from ?? "-")→\($0.to)" } == ["normal→sellout", "sellout→normal"])
            // Malformed specs are reported, not fatal.
            try await h.region.setExtraSpec(flavorId: "c3.small.2", key: "cond:operation:az", value: "eu-west-0a(), eu-west-0c(sellout")
            let malformed = try await tracker.reconcile(now: monday.addingTimeInterval(240))
            #expect(malformed.failures.isEmpty)
            #expect(try await h.events(action: "malformed-sale-state").count == 2)
            // A flavor taken off the catalogue: a transition to `absent` in every AZ and an event,
            // not a silent deletion of its rows.
            await h.region.setFlavors(FleetGenerator.defaultFlavors(count: 12).filter { $0.id != "m3.small.8" })
            _ = try await tracker.reconcile(now: monday.addingTimeInterval(300))
            let gone = try await h.context.store.saleTransitions(region: "eu-west-0", since: monday.addingTimeInterval(300), limit: 100)
            #expect(gone.filter { $0.flavor == "m3.small.8" }.map(\.to) == Array(repeating: SaleStateResolver.absent, count: 3))
            #expect(try await h.events(action: "flavor-gone").count == 3)
            #expect(try await tracker.state(region: "eu-west-0", az: "eu-west-0a", flavor: "m3.small.8") == nil)
        }
    }

    @Test(arguments: [
        ("", "", ["az0": "normal", "az1": "normal"], 0),
        ("sellout", "", ["az0": "sellout", "az1": "sellout"], 0),
        ("abandon", "az0(normal), az1(sellout)", ["az0": "normal", "az1": "sellout"], 0),
        ("", "az0(obt_sellout)", ["az0": "obt_sellout", "az1": "normal"], 0),
        ("", "az0()", ["az0": "normal", "az1": "normal"], 1),
        ("", "az0(normal), az0(sellout)", ["az0": "normal", "az1": "normal"], 1),
        ("", "az0(weird), az1", ["az0": "normal", "az1": "normal"], 2),
        ("promo", "(sellout), ,az1(promotion)", ["az0": "normal", "az1": "promotion"], 3),
    ])
    func saleStateResolution(status: String, azSpec: String, expected: [String: String], problems: Int) {
        var specs: [String: String] = [:]
        if !status.isEmpty { specs["cond:operation:status"] = status }
        if !azSpec.isEmpty { specs["cond:operation:az"] = azSpec }
        let resolution = SaleStateResolver.resolve(extraSpecs: specs, availabilityZones: ["az0", "az1"])
        #expect(resolution.states == expected)
        #expect(resolution.problems.count == problems, "\(resolution.problems)")
    }
}

@Suite struct StateStoreTests {
    @Test func damagedAndNewerDatabasesAreRefusedNeverReset() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("warden-store-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = (directory as NSString).appendingPathComponent("state.sqlite")
        try Data(repeating: 0x42, count: 4096).write(to: URL(fileURLWithPath: path))
        #expect(throws: StateStoreError.self) { _ = try SQLiteStateStore.open(directory: directory) }
        // The damaged file is left as it was.
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(repeating: 0x42, count: 4096))
        // An empty file is not a new database: refused, left as it is.
        try Data().write(to: URL(fileURLWithPath: path))
        do {
            _ = try SQLiteStateStore.open(directory: directory)
            Issue.record("an empty state file must be refused")
        } catch let error as StateStoreError {
            #expect(error.description.contains("empty (0 bytes)"))
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)).isEmpty)
        try FileManager.default.removeItem(atPath: path)
        _ = try SQLiteStateStore.open(directory: directory)
        let store = try SQLiteStateStore.open(directory: directory)
        try store.database.write { db in
            try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99-from-the-future')")
        }
        do {
            _ = try SQLiteStateStore.open(directory: directory)
            Issue.record("a newer schema must be refused")
        } catch let error as StateStoreError {
            #expect(error == .newerSchema(path: path, unknownMigrations: ["v99-from-the-future"]))
            #expect(error.description.contains("newer ecs-warden"))
        }
    }

    @Test func journalSequencesIntentsAndRetention() async throws {
        let store = try SQLiteStateStore.inMemory(retention: RetentionPolicy(journalDays: 1))
        let old = try await store.append(JournalEntry(at: monday, kind: .event, loop: "quota", message: "old"))
        let intent = try await store.append(JournalEntry(at: monday, kind: .intent, loop: "schedule", servers: ["a", "b"], message: "stop"))
        #expect(intent == old + 1)
        #expect(try await store.openIntents().map(\.seq) == [intent])
        try await store.prune(now: monday.addingTimeInterval(3 * 86_400))
        // The old event is gone; the open intent stays.
        #expect(try await store.journal().map(\.seq) == [intent])
        try await store.append(JournalEntry(at: monday, kind: .outcome, loop: "schedule", result: .accepted, message: "job", intentSeq: intent))
        #expect(try await store.openIntents().isEmpty)
        #expect(try await store.journal(since: intent).count == 1)
    }
}

@Suite struct FaultSurvivalTests {
    @Test func anOutageFailsThePassWhichThenRecovers() async throws {
        try await WardenHarness.with(clockStart: monday) { h in
            let clock = ManualClock(start: monday)
            let supervisor = Supervisor(clock: clock)
            let loop = ReconcileLoop(
                reconciler: QuotaWatch(context: h.context), timing: LoopTiming(interval: 60), clock: clock, supervisor: supervisor,
                metrics: h.context.metrics, logger: quietLogger())
            var faults = SimFaults()
            faults.outage = "error"
            await h.region.setFaults(faults)
            let failed = await loop.runPass()
            #expect(failed.resultLabel == "error")
            #expect(await supervisor.statuses().first?.lastError?.contains("503") == true)
            await h.region.setFaults(SimFaults())
            let healed = await loop.runPass()
            #expect(healed.resultLabel == "success")
            let text = h.context.metrics.exposition()
            #expect(text.contains(#"ecs_warden_loop_runs_total{loop="quota",result="error"} 1"#))
            #expect(text.contains(#"ecs_warden_loop_runs_total{loop="quota",result="success"} 1"#))
            #expect(text.contains(#"ecs_warden_api_requests_total{operation="ShowServerLimits",code="503"}"#))
            #expect(await supervisor.statuses().first?.consecutiveFailures == 0)
        }
    }

    @Test func aWakeUpInThePastNeverSpinsTheLoop() {
        let timing = LoopTiming(interval: 60, jitter: 0)
        let now = monday
        let report = ReconcileReport(summary: "x", wakeAt: now.addingTimeInterval(-5))
        #expect(timing.delay(after: .success(report), consecutiveFailures: 0, now: now, random: 0) == 60)
        let soon = ReconcileReport(summary: "x", wakeAt: now.addingTimeInterval(7))
        #expect(timing.delay(after: .success(soon), consecutiveFailures: 0, now: now, random: 0) == 7)
        // A wake-up that passed while the pass ran (it started 10 s ago) is honoured at once.
        #expect(timing.delay(after: .success(report), consecutiveFailures: 0, now: now, random: 0, passStarted: now.addingTimeInterval(-10)) == 0)
        // One already past when the pass started is stale.
        #expect(timing.delay(after: .success(report), consecutiveFailures: 0, now: now, random: 0, passStarted: now.addingTimeInterval(-2)) == 60)
    }
}

@Suite struct StuckRemediationTests {
    static func rules() -> StuckRules {
        var rules = StuckRules()
        rules.remediations = ["powering-off": .hardStop]
        return rules
    }

    /// One remedy per stuck episode, also across a restart (the detector's memory is gone, the
    /// journal is not).
    @Test func aRemedyIsTriedOncePerEpisodeAcrossRestarts() async throws {
        let start = Date()
        try await WardenHarness.with(settings: WardenSettings(stuck: Self.rules()), clockStart: start) { h in
            let id = await h.addServer("web-1")
            try await h.region.setServerState(projectId: h.project, serverId: id, vmState: nil, taskState: .some("powering-off"), locked: nil)
            _ = try await StuckTaskDetector(context: h.context).reconcile(now: start)
            _ = try await StuckTaskDetector(context: h.context).reconcile(now: start.addingTimeInterval(16 * 60))
            let calls = await h.region.requests().filter { $0.operation == "BatchStopServers" }
            #expect(calls.count == 1)
            let intents = try await h.context.store.journal(kinds: [.intent])
            #expect(intents.count == 1)
            // Restarted: a new detector sees the server still stuck; the episode is known to the
            // store, so it is neither reported nor remedied again.
            _ = try await StuckTaskDetector(context: h.context).reconcile(now: start.addingTimeInterval(17 * 60))
            #expect(await h.region.requests().filter { $0.operation == "BatchStopServers" }.count == 1)
            #expect(try await h.events(action: "server-stuck").count == 1)
            // Even with the episode forgotten, the journal decides: the remedy is not repeated.
            #expect(try await h.context.store.endEpisode("server/main/\(id)/ACTIVE/powering-off"))
            _ = try await StuckTaskDetector(context: h.context).reconcile(now: start.addingTimeInterval(18 * 60))
            #expect(await h.region.requests().filter { $0.operation == "BatchStopServers" }.count == 1)
            #expect(try await h.events(action: "remediation-skipped").count == 1)
        }
    }

    /// A remedy without an answer is closed as unknown at the next pass, never re-sent.
    @Test func anUnansweredRemedyIsClosedNotResent() async throws {
        let start = Date()
        try await WardenHarness.with(settings: WardenSettings(stuck: Self.rules()), clockStart: start) { h in
            let id = await h.addServer("web-1")
            try await h.region.setServerState(projectId: h.project, serverId: id, vmState: nil, taskState: .some("powering-off"), locked: nil)
            _ = try await StuckTaskDetector(context: h.context).reconcile(now: start)
            let seq = try await h.context.store.append(
                JournalEntry(
                    at: start.addingTimeInterval(60), kind: .intent, loop: "stuck", project: "main", subject: id, action: "hard-stop", clientToken: "tok-remedy",
                    servers: [id], result: .pending, message: "hard-stop stuck server web-1"))
            _ = try await StuckTaskDetector(context: h.context).reconcile(now: start.addingTimeInterval(16 * 60))
            #expect(try await h.context.store.outcomes(of: seq).map(\.result) == [.unknown])
            #expect(await h.region.requests().filter { $0.operation == "BatchStopServers" }.isEmpty)
            #expect(try await h.context.store.openIntents().isEmpty)
        }
    }

    /// The listing may be seconds old: a server that recovered meanwhile is not rebooted or stopped.
    @Test func aServerThatRecoveredSinceTheListingIsLeftAlone() async throws {
        let start = Date()
        try await WardenHarness.with(settings: WardenSettings(stuck: Self.rules()), clockStart: start) { h in
            let id = await h.addServer("web-1")
            try await h.region.setServerState(projectId: h.project, serverId: id, vmState: nil, taskState: .some("powering-off"), locked: nil)
            let detector = StuckTaskDetector(context: h.context)
            _ = try await detector.reconcile(now: start)
            let later = start.addingTimeInterval(16 * 60)
            // The schedule loop lists the servers; then the server's task ends; then the stuck pass.
            _ = try await h.context.inventory.servers(of: h.context.projects[0], fresh: true, now: later, settings: h.context.settings)
            try await h.region.setServerState(projectId: h.project, serverId: id, vmState: "stopped", taskState: .some(nil), locked: nil)
            _ = try await detector.reconcile(now: later.addingTimeInterval(1))
            #expect(await h.region.requests().filter { $0.operation == "BatchStopServers" }.isEmpty)
            #expect(try await h.events(action: "remediation-skipped").count == 1)
        }
    }
}
