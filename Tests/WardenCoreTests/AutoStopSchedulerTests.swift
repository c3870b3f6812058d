import ECSAPI
import ECSSimulator
import Foundation
import Testing

@testable import WardenCore

/// Monday 2026-11-23; Berlin is UTC+1: the 19:00 stop boundary is 18:00Z, the 08:00 start 07:00Z.
let monday = utc("2026-11-23T00:00:00Z")
let stopBoundary = utc("2026-11-23T18:00:00Z")

func settings(_ schedules: [Schedule], dryRun: Bool = false, limits: AutoStopLimits = AutoStopLimits()) -> WardenSettings {
    WardenSettings(dryRun: dryRun, schedules: Dictionary(uniqueKeysWithValues: schedules.map { ($0.name, $0) }), autoStop: limits)
}

@Suite struct AutoStopSchedulerTests {
    @Test func stopsTaggedServersAtTheBoundaryOnceAndLeavesTheOthersAlone() async throws {
        try await WardenHarness.with(settings: settings([officeHours()]), clockStart: monday) { h in
            let office = [
                await h.addServer("web-1", tags: ["warden-schedule": "office"]),
                await h.addServer("web-2", tags: ["warden-schedule": "office"]),
                await h.addServer("web-3", tags: ["warden-schedule": "office"]),
            ]
            let alreadyStopped = await h.addServer("web-4", running: false, tags: ["warden-schedule": "office"])
            let untagged = await h.addServer("db-1")
            let unknown = await h.addServer("odd-1", tags: ["warden-schedule": "no-such-schedule"])
            let ignored = await h.addServer("pet-1", tags: ["warden-schedule": "office", "warden-ignore": "true"])
            let snoozed = await h.addServer("demo-1", tags: ["warden-schedule": "office", "warden-snooze-until": "20261124T0800Z"])
            let badSnooze = await h.addServer("demo-2", tags: ["warden-schedule": "office", "warden-snooze-until": "tomorrow"])
            let scheduler = AutoStopScheduler(context: h.context)

            // Before the boundary: the morning start boundary is long past (missed, not acted on).
            let before = try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(-30))
            #expect(before.actions == 0)
            #expect(await h.operations().contains("BatchStopServers") == false)
            #expect(before.wakeAt == stopBoundary.addingTimeInterval(-scheduler.readAhead()))

            let mark = await h.logCount()
            let report = try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(1))
            #expect(report.actions == 3)
            #expect(report.wakeAt == utc("2026-11-24T07:00:00Z").addingTimeInterval(-scheduler.readAhead()))
            let stopCalls = await h.region.requests(since: mark).filter { $0.operation == "BatchStopServers" }
            #expect(stopCalls.count == 1)
            await h.settle()
            for id in office { #expect(await h.status(id) == "SHUTOFF") }
            for id in [untagged, unknown, ignored, snoozed, badSnooze] { #expect(await h.status(id) == "ACTIVE") }
            #expect(await h.status(alreadyStopped) == "SHUTOFF")

            let plan = try #require(scheduler.latestPlan())
            let reasons = Dictionary(plan.skips.map { ($0.serverId, $0.reason) }, uniquingKeysWith: { a, _ in a })
            #expect(reasons[unknown] == "unknown_schedule")
            #expect(reasons[ignored] == "ignored")
            #expect(reasons[snoozed] == "snoozed")
            #expect(reasons[badSnooze] == "malformed_snooze")
            #expect(try await h.events(action: "unknown_schedule").count == 1)
            #expect(try await h.events(action: "malformed_snooze").count == 1)
            let exposition = h.context.metrics.exposition()
            #expect(exposition.contains(#"ecs_warden_schedule_tag_errors{project="main",reason="unknown_schedule"} 1"#))

            // The journal holds the intent before and the accepted job after.
            let intents = try await h.context.store.journal(kinds: [.intent])
            #expect(intents.count == 1)
            #expect(Set(intents[0].servers) == Set(office))
            #expect(intents[0].clientToken != nil)
            let outcomes = try await h.context.store.outcomes(of: intents[0].seq)
            #expect(outcomes.first?.result == .accepted)
            #expect(outcomes.first?.jobId != nil)

            // A second pass does nothing.
            let mark2 = await h.logCount()
            let again = try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(60))
            #expect(again.actions == 0)
            #expect(await h.operations(since: mark2).filter { $0.hasPrefix("Batch") }.isEmpty)
            #expect(try await h.events(action: "unknown_schedule").count == 1)
        }
    }

    /// The reference: `tags` is absent when the microversion is not used. Such a listing must not be
    /// read as "nothing is tagged": the part fails loudly and nothing is acted on in the project.
    @Test func aListingWithoutTagsFailsLoudlyAndActsOnNothing() async throws {
        try await WardenHarness.with(settings: settings([officeHours()]), clockStart: monday) { h in
            let id = await h.addServer("web-1", tags: ["warden-schedule": "office"])
            await h.region.setFaults({ var f = SimFaults(); f.ignoreMicroversion = true; return f }())
            let scheduler = AutoStopScheduler(context: h.context)
            await #expect(throws: WardenError.self) { _ = try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(1)) }
            #expect(await h.operations().contains("BatchStopServers") == false)
            #expect(try await h.events(action: "listing-without-tags").count == 1)
            #expect(h.context.metrics.exposition().contains(#"ecs_warden_schedule_listing_errors{project="main",reason="listing_without_tags"} 1"#))
            // Once the tags come back, the boundary (still within its grace) is acted on.
            await h.region.setFaults(SimFaults())
            let healed = try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(60))
            #expect(healed.actions == 1)
            await h.settle()
            #expect(await h.status(id) == "SHUTOFF")
            #expect(!h.context.metrics.exposition().contains(#"ecs_warden_schedule_listing_errors{project="main""#))
        }
    }

    /// Half an hour before a start boundary, a server whose flavor is sold out in its AZ (or that is
    /// locked) is reported at risk: metric, event once, and the plan's batch names it.
    @Test func serversDueToStartAreCheckedAgainstTheSaleStateAhead() async throws {
        let startBoundary = utc("2026-11-24T07:00:00Z")
        try await WardenHarness.with(settings: settings([officeHours()]), clockStart: monday) { h in
            let soldOut = await h.addServer("web-1", running: false, tags: ["warden-schedule": "office"])
            let locked = await h.addServer("web-2", running: false, tags: ["warden-schedule": "office"])
            let fine = await h.addServer("web-3", running: false, tags: ["warden-schedule": "office", "warden-ignore": "yes"])
            try await h.region.setServerState(projectId: h.project, serverId: locked, vmState: nil, taskState: nil, locked: true)
            // Seeded servers are in the region's first AZ.
            try await h.region.setSaleState(flavorId: "s3.small.2", az: "eu-west-0a", state: "sellout")
            _ = try await FlavorSaleTracker(context: h.context).reconcile(now: startBoundary.addingTimeInterval(-3600))
            let scheduler = AutoStopScheduler(context: h.context)
            // An hour ahead: outside the 30-minute lead.
            _ = try await scheduler.reconcile(now: startBoundary.addingTimeInterval(-3600))
            #expect(scheduler.startsAtRisk().isEmpty)
            _ = try await scheduler.reconcile(now: startBoundary.addingTimeInterval(-1200))
            let risks = scheduler.startsAtRisk()
            #expect(Set(risks.map { "\($0.serverId)/\($0.reason)" }) == ["\(soldOut)/flavor_sold_out", "\(locked)/flavor_sold_out", "\(locked)/locked"])
            #expect(!risks.contains { $0.serverId == fine })
            #expect(risks.allSatisfy { $0.boundary == startBoundary })
            let exposition = h.context.metrics.exposition()
            #expect(exposition.contains(#"ecs_warden_schedule_at_risk{schedule="office",project="main",reason="flavor_sold_out"} 2"#))
            _ = try await scheduler.reconcile(now: startBoundary.addingTimeInterval(-600))
            #expect(try await h.events(action: "start-at-risk").count == 3)
            // At the boundary the start of the sold-out server fails for lack of capacity (the
            // simulator's Ecs.0319); it is retried with a growing wait and counted as `capacity`.
            try await h.region.setServerState(projectId: h.project, serverId: locked, vmState: nil, taskState: nil, locked: false)
            let follower = JobFollower(context: h.context)
            _ = try await scheduler.reconcile(now: startBoundary.addingTimeInterval(1))
            await h.settle()
            _ = try await follower.reconcile(now: startBoundary.addingTimeInterval(5))
            #expect(await h.status(soldOut) == "SHUTOFF")
            #expect(h.context.metrics.exposition().contains(#"ecs_warden_schedule_actions_total{schedule="office",action="start",result="capacity"} 2"#))
            // Capacity comes back: the retry after 2 minutes starts them.
            try await h.region.setSaleState(flavorId: "s3.small.2", az: "eu-west-0a", state: nil)
            let retry = try await scheduler.reconcile(now: startBoundary.addingTimeInterval(130))
            #expect(retry.actions == 2)
            await h.settle()
            #expect(await h.status(soldOut) == "ACTIVE")
            #expect(await h.status(locked) == "ACTIVE")
        }
    }

    @Test func aServerStartedByHandAtNightStaysUpUnlessEnforced() async throws {
        for policy in [ManualActionPolicy.boundariesOnly, .enforce] {
            try await WardenHarness.with(settings: settings([officeHours(policy: policy)]), clockStart: monday) { h in
                let id = await h.addServer("web-1", tags: ["warden-schedule": "office"])
                let scheduler = AutoStopScheduler(context: h.context)
                _ = try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(2))
                await h.settle()
                #expect(await h.status(id) == "SHUTOFF")
                // A person starts it at night.
                let client = h.context.projects[0].client
                let start = try await client.batchAction(.start, serverIds: [id])
                await h.settle()
                #expect(try await client.job(id: start.jobId).status == .success)
                _ = try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(3 * 3600))
                await h.settle()
                #expect(await h.status(id) == (policy == .enforce ? "SHUTOFF" : "ACTIVE"), "\(policy)")
            }
        }
    }

    @Test func startsAtTheMorningBoundaryAndHonoursStopOnly() async throws {
        let morning = utc("2026-11-24T07:00:00Z")
        var stopOnly = officeHours(mode: .stopOnly)
        stopOnly.name = "nightly"
        try await WardenHarness.with(settings: settings([officeHours(), stopOnly]), clockStart: monday) { h in
            let office = await h.addServer("web-1", running: false, tags: ["warden-schedule": "office"])
            let nightly = await h.addServer("ci-1", running: false, tags: ["warden-schedule": "nightly"])
            let scheduler = AutoStopScheduler(context: h.context)
            let report = try await scheduler.reconcile(now: morning.addingTimeInterval(1))
            #expect(report.actions == 1)
            await h.settle()
            #expect(await h.status(office) == "ACTIVE")
            #expect(await h.status(nightly) == "SHUTOFF")
        }
    }

    @Test func theCapHoldsAndTheRestFollowsNextPass() async throws {
        let limits = AutoStopLimits(maxStopsPerPass: 3)
        try await WardenHarness.with(settings: settings([officeHours()], limits: limits), clockStart: monday) { h in
            var ids: [String] = []
            for index in 0..<5 { ids.append(await h.addServer("web-\(index)", tags: ["warden-schedule": "office"])) }
            let scheduler = AutoStopScheduler(context: h.context)
            let first = try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(1))
            #expect(first.actions == 3)
            #expect(first.moreWork)
            await h.settle()
            let second = try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(10))
            #expect(second.actions == 2)
            #expect(!second.moreWork)
            await h.settle()
            for id in ids { #expect(await h.status(id) == "SHUTOFF") }
            #expect(try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(20)).actions == 0)
        }
    }

    @Test func batchesNeverExceedAThousandServersNorAThousandAMinute() async throws {
        let limits = AutoStopLimits(maxStopsPerPass: 5000)
        try await WardenHarness.with(settings: settings([officeHours()], limits: limits), clockStart: monday) { h in
            let batch = (0..<1500).map { index in
                SimulatedRegion.SeedServer(
                    id: "00000000-0000-0000-0000-\(String(format: "%012d", index))", name: "web-\(index)", flavorId: "s3.small.2",
                    availabilityZone: "eu-west-0a", running: true, tags: [SimTag(key: "warden-schedule", value: "office")], created: monday.timeIntervalSince1970)
            }
            await h.region.seedServers(projectId: h.project, batch)
            let scheduler = AutoStopScheduler(context: h.context)
            let mark = await h.logCount()
            let report = try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(1))
            // The API reference allows 1,000 stops per minute: the other 500 wait for the next one.
            #expect(report.actions == 1000)
            let plan = try #require(scheduler.latestPlan())
            #expect(plan.batches.map(\.serverIds.count) == [1000])
            #expect(plan.waitingForBudget == 500)
            let operations = await h.operations(since: mark)
            #expect(operations.filter { $0 == "BatchStopServers" }.count == 1)
            #expect(operations.filter { $0 == "NovaListServersDetails" }.count == 4)
            let next = try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(62))
            #expect(next.actions == 500)
            #expect(scheduler.latestPlan()?.batches.map(\.serverIds.count) == [500])
        }
    }

    @Test func dryRunMakesNoMutatingCall() async throws {
        for (globalDryRun, scheduleDryRun) in [(true, false), (false, true)] {
            try await WardenHarness.with(settings: settings([officeHours(dryRun: scheduleDryRun)], dryRun: globalDryRun), clockStart: monday) { h in
                let id = await h.addServer("web-1", tags: ["warden-schedule": "office"])
                let scheduler = AutoStopScheduler(context: h.context)
                let report = try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(1))
                #expect(report.actions == 1)
                let methods = await h.region.requests().map(\.method)
                #expect(methods.allSatisfy { $0 == "GET" })
                #expect(await h.status(id) == "ACTIVE")
                let dryRuns = try await h.context.store.journal(kinds: [.dryRun])
                #expect(dryRuns.count == 1 && dryRuns[0].servers == [id])
                #expect(try await h.context.store.journal(kinds: [.intent]).isEmpty)
                #expect(h.context.metrics.exposition().contains(#"ecs_warden_schedule_actions_total{schedule="office",action="stop",result="dry_run"} 1"#))
                // Journaled once per boundary, not every pass.
                _ = try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(30))
                #expect(try await h.context.store.journal(kinds: [.dryRun]).count == 1)
            }
        }
    }

    @Test func storedSnoozesAreRespected() async throws {
        try await WardenHarness.with(settings: settings([officeHours()]), clockStart: monday) { h in
            let id = await h.addServer("web-1", tags: ["warden-schedule": "office"])
            try await h.context.store.snooze(Snooze(project: "main", serverId: id, until: utc("2026-11-24T12:00:00Z"), reason: "demo"))
            let scheduler = AutoStopScheduler(context: h.context)
            #expect(try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(1)).actions == 0)
            #expect(scheduler.latestPlan()?.skips.first?.reason == "snoozed")
        }
    }

    @Test func previewShowsTheRealDecisionsOfTheNextHours() async throws {
        try await WardenHarness.with(settings: settings([officeHours()]), clockStart: monday) { h in
            let id = await h.addServer("web-1", tags: ["warden-schedule": "office"])
            let scheduler = AutoStopScheduler(context: h.context)
            let steps = try await scheduler.preview(now: stopBoundary.addingTimeInterval(-3600), hours: 24)
            let actions = steps.flatMap { step in step.batches.map { (step.at, $0.action, $0.serverIds) } }
            #expect(actions.count == 2)
            #expect(actions.first?.0 == stopBoundary && actions.first?.1 == .stop && actions.first?.2 == [id])
            #expect(actions.last?.0 == utc("2026-11-24T07:00:00Z") && actions.last?.1 == .start)
            // The preview acted on nothing.
            #expect(await h.region.requests().allSatisfy { $0.method == "GET" })
        }
    }
}

@Suite struct CrashRecoveryTests {
    /// The daemon wrote the intent and died before sending: recovery sends it once.
    @Test func intentWithoutCallIsSentOnceAfterRestart() async throws {
        try await WardenHarness.with(settings: settings([officeHours()]), clockStart: monday) { h in
            let id = await h.addServer("web-1", tags: ["warden-schedule": "office"])
            let now = stopBoundary.addingTimeInterval(1)
            let seq = try await h.context.store.append(
                JournalEntry(
                    at: now, kind: .intent, loop: "schedule", project: "main", subject: "office", action: "stop", clientToken: "tok-crash-1",
                    servers: [id], result: .pending, message: "stop 1 servers of office"))
            let restarted = AutoStopScheduler(context: h.context)
            _ = try await restarted.reconcile(now: now.addingTimeInterval(5))
            _ = try await restarted.reconcile(now: now.addingTimeInterval(10))
            await h.settle()
            #expect(await h.status(id) == "SHUTOFF")
            let stops = await h.region.requests().filter { $0.operation == "BatchStopServers" }
            #expect(stops.count == 1)
            #expect(try await h.context.store.outcomes(of: seq).first?.result == .accepted)
            #expect(try await h.context.store.openIntents().isEmpty)
        }
    }

    /// The daemon sent the call and died before writing the outcome: nothing is sent again.
    @Test func callWithoutOutcomeIsNotRepeatedAfterRestart() async throws {
        try await WardenHarness.with(settings: settings([officeHours()]), clockStart: monday) { h in
            let id = await h.addServer("web-1", tags: ["warden-schedule": "office"])
            let now = stopBoundary.addingTimeInterval(1)
            let seq = try await h.context.store.append(
                JournalEntry(
                    at: now, kind: .intent, loop: "schedule", project: "main", subject: "office", action: "stop", clientToken: "tok-crash-2",
                    servers: [id], result: .pending, message: "stop 1 servers of office"))
            _ = try await h.context.projects[0].client.batchAction(.stop(.soft), serverIds: [id], clientToken: "tok-crash-2")
            await h.settle()
            let restarted = AutoStopScheduler(context: h.context)
            _ = try await restarted.reconcile(now: now.addingTimeInterval(30))
            _ = try await restarted.reconcile(now: now.addingTimeInterval(60))
            let stops = await h.region.requests().filter { $0.operation == "BatchStopServers" }
            #expect(stops.count == 1)
            #expect(try await h.context.store.outcomes(of: seq).first?.result == .unknown)
            #expect(try await h.events(action: "recovery-unknown").count == 1)
        }
    }
}

@Suite struct BusyAtTheBoundaryTests {
    /// Found by the soak: a server rebooting at the stop boundary was skipped and the boundary marked
    /// handled, so it ran all night. It must be stopped once its task is over (within the grace).
    @Test func aServerBusyAtTheBoundaryIsStoppedWhenItsTaskEnds() async throws {
        try await WardenHarness.with(settings: settings([officeHours()]), clockStart: monday) { h in
            let busy = await h.addServer("web-1", tags: ["warden-schedule": "office"])
            let calm = await h.addServer("web-2", tags: ["warden-schedule": "office"])
            try await h.region.setServerState(projectId: h.project, serverId: busy, vmState: "active", taskState: .some("rebooting"), locked: nil)
            let scheduler = AutoStopScheduler(context: h.context)
            let first = try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(1))
            #expect(first.actions == 1)
            // Looked at again soon, not every few seconds: 10 s right after the boundary.
            #expect(!first.moreWork)
            #expect(first.wakeAt == stopBoundary.addingTimeInterval(11))
            #expect(try await h.context.store.lastHandledBoundary(schedule: "office", project: "main") == nil)
            await h.settle()
            #expect(await h.status(calm) == "SHUTOFF")
            // The reboot ends; the next pass (same boundary) stops the server.
            try await h.region.setServerState(projectId: h.project, serverId: busy, vmState: "active", taskState: .some(nil), locked: nil)
            let second = try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(20))
            #expect(second.actions == 1)
            await h.settle()
            #expect(await h.status(busy) == "SHUTOFF")
            let third = try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(40))
            #expect(third.actions == 0)
            #expect(try await h.context.store.lastHandledBoundary(schedule: "office", project: "main") == stopBoundary)
        }
    }
}

@Suite struct PendingIntentTests {
    /// Found by the soak: a stop whose answer never came back was planned again under a new token,
    /// and both calls were carried out. Servers of an open intent are left to its own resend.
    @Test func serversOfAnOpenIntentAreNotPlannedAgain() {
        let schedule = officeHours()
        let servers = ["a", "b"].map {
            Server(id: $0, name: $0, status: .active, vmState: "active", tags: ["warden-schedule=office"], locked: false)
        }
        let plan = AutoStopPlanner.plan(
            projects: [ProjectServers(project: "main", servers: servers)], schedules: ["office": schedule], tags: ScheduleTagKeys(),
            limits: AutoStopLimits(), handledBoundaries: [:], snoozes: [:], dryRun: false, now: stopBoundary.addingTimeInterval(30),
            calls: [JournaledCall(project: "main", schedule: "office", action: .stop, at: stopBoundary.addingTimeInterval(1), servers: ["a"], state: .open)])
        #expect(plan.batches.flatMap(\.serverIds) == ["b"])
        #expect(plan.skips.map(\.reason) == ["pending_intent"])
        // Each server counted once, under its state.
        #expect(plan.counts["office"] == ["running": 2])
        #expect(plan.handled.isEmpty)  // the boundary stays open until the intent is resolved
        #expect(plan.waiting == 1)
    }
}

@Suite struct ActedOnThisBoundaryTests {
    /// A listing that repeats a server (inside a page, or a page served twice) names it once.
    @Test func aRepeatedServerIsPlannedOnce() {
        let server = Server(id: "a", name: "a", status: .active, vmState: "active", tags: ["warden-schedule=office"], locked: false)
        let plan = AutoStopPlanner.plan(
            projects: [ProjectServers(project: "main", servers: [server, server, server])], schedules: ["office": officeHours()], tags: ScheduleTagKeys(),
            limits: AutoStopLimits(), handledBoundaries: [:], snoozes: [:], dryRun: false, now: stopBoundary.addingTimeInterval(60))
        #expect(plan.batches.map(\.serverIds) == [["a"]])
        #expect(plan.counts["office"]?["running"] == 1)
    }

    func plan(_ calls: [JournaledCall], policy: ManualActionPolicy = .boundariesOnly, at offset: TimeInterval = 60) -> AutoStopPlan {
        let servers = ["a", "b"].map {
            Server(id: $0, name: $0, status: .active, vmState: "active", tags: ["warden-schedule=office"], locked: false)
        }
        return AutoStopPlanner.plan(
            projects: [ProjectServers(project: "main", servers: servers)], schedules: ["office": officeHours(policy: policy)], tags: ScheduleTagKeys(),
            limits: AutoStopLimits(), handledBoundaries: [:], snoozes: [:], dryRun: false, now: stopBoundary.addingTimeInterval(offset), calls: calls)
    }

    func call(_ state: JournaledCall.State, at offset: TimeInterval = 1, action: ScheduleAction = .stop) -> JournaledCall {
        JournaledCall(project: "main", schedule: "office", action: action, at: stopBoundary.addingTimeInterval(offset), servers: ["a"], state: state)
    }

    /// A server named by an accepted or unknown stop of this boundary is running again (a person
    /// started it, or a late call is still to land): it is not stopped a second time.
    @Test func aCallThatMayHaveBeenCarriedOutHoldsItsServersForTheBoundary() {
        for state in [JournaledCall.State.accepted, .ambiguous] {
            let plan = plan([call(state)])
            #expect(plan.batches.flatMap(\.serverIds) == ["b"])
            #expect(plan.skips.map(\.reason) == ["acted_on"])
            // Each server counted once, under its state, not again under the reason.
            #expect(plan.counts["office"] == ["running": 2])
            #expect(plan.waiting == 0)
            #expect(plan.handled.count == 1)
        }
    }

    /// A clear refusal did nothing; a call of the previous boundary or of the other action is another matter.
    @Test func refusedOlderOrOtherCallsHoldNothing() {
        for calls in [[call(.refused)], [call(.accepted, at: -3600)], [call(.accepted, action: .start)]] {
            #expect(plan(calls).batches.flatMap(\.serverIds) == ["a", "b"])
        }
    }

    /// Enforcing re-acts by design (a person's start is undone), except right after a call whose fate
    /// is unknown or whose job is still running (a server it names may not have moved yet).
    @Test func enforceIsHeldOnlyByCallsOfUnknownFate() {
        // 20:00 Berlin, between boundaries: enforce wants the servers stopped.
        var ended = call(.accepted, at: 5000)
        ended.ended = true
        #expect(plan([ended], policy: .enforce, at: 7200).batches.flatMap(\.serverIds) == ["a", "b"])
        #expect(plan([call(.accepted, at: 5000)], policy: .enforce, at: 7200).batches.flatMap(\.serverIds) == ["b"])
        #expect(plan([call(.ambiguous, at: 5000)], policy: .enforce, at: 7200).batches.flatMap(\.serverIds) == ["b"])
        // Past the grace period (1 h) the unknown call holds nothing any more.
        #expect(plan([call(.ambiguous, at: 5000)], policy: .enforce, at: 5000 + 3700).batches.flatMap(\.serverIds) == ["a", "b"])
    }

    @Test func waitingServersAreLookedAtLessOftenAsTimeGoesBy() {
        #expect(AutoStopPlanner.waitingRecheckDelay(sinceBoundary: 1) == 10)
        #expect(AutoStopPlanner.waitingRecheckDelay(sinceBoundary: 120) == 30)
        #expect(AutoStopPlanner.waitingRecheckDelay(sinceBoundary: 3000) == 300)
    }
}

@Suite struct LateDeliveryRecoveryTests {
    /// Two office servers and a stop intent for both without an outcome.
    func twoServersWithAnUnansweredStop(_ h: WardenHarness, at now: Date, token: String) async throws -> ([String], Int64) {
        let ids = [await h.addServer("web-1", tags: ["warden-schedule": "office"]), await h.addServer("web-2", tags: ["warden-schedule": "office"])]
        let seq = try await h.context.store.append(
            JournalEntry(
                at: now, kind: .intent, loop: "schedule", project: "main", subject: "office", action: "stop", clientToken: token,
                servers: ids, result: .pending, message: "stop 2 servers of office"))
        return (ids, seq)
    }

    /// Found by the soak: a stop got no answer; recovery saw the servers' `updated` time move (a
    /// person added a tag; or the cloud's clock ran ahead) and closed the intent as if the call had
    /// gone out; the same pass then stopped the servers under a new token, and the late call
    /// stopped them again. Now: the servers are still as planned, so the same token is re-sent, and
    /// the late call is the same request.
    @Test func anUnansweredStopIsResentWithItsTokenEvenAfterAnEdit() async throws {
        try await WardenHarness.with(settings: settings([officeHours()]), clockStart: monday) { h in
            let now = stopBoundary.addingTimeInterval(1)
            let (ids, seq) = try await twoServersWithAnUnansweredStop(h, at: now, token: "tok-late-1")
            await h.region.advanceTime(by: 30)
            try await h.context.projects[0].client.addServerTags(serverId: ids[0], tags: [ServerTag(key: "note", value: "edited-by-a-person")])
            let scheduler = AutoStopScheduler(context: h.context)
            _ = try await scheduler.reconcile(now: now.addingTimeInterval(60))
            // The held call is finally delivered.
            let late = try await h.context.projects[0].client.batchAction(.stop(.soft), serverIds: ids, clientToken: "tok-late-1")
            _ = try await scheduler.reconcile(now: now.addingTimeInterval(120))
            await h.settle()
            let outcomes = try await h.context.store.outcomes(of: seq)
            #expect(outcomes.first?.result == .accepted)
            #expect(outcomes.first?.jobId == late.jobId)
            let jobs = await h.region.requests().filter { $0.operation == "BatchStopServers" && $0.status == 200 }
            #expect(jobs.count == 2)  // the resend and the late call: one job
            for id in ids { #expect(await h.status(id) == "SHUTOFF") }
            #expect(try await h.context.store.openIntents().isEmpty)
        }
    }

    /// The call without an answer was carried out for one server (a person stopped it, or part of a
    /// late call landed); the other is still running. The intent is closed as unknown and the
    /// running server is not stopped under a new token for the same boundary.
    @Test func serversOfAnUnknownCallAreNotStoppedAgainUnderANewToken() async throws {
        try await WardenHarness.with(settings: settings([officeHours()]), clockStart: monday) { h in
            let now = stopBoundary.addingTimeInterval(1)
            let (ids, seq) = try await twoServersWithAnUnansweredStop(h, at: now, token: "tok-late-2")
            try await h.region.setServerState(projectId: h.project, serverId: ids[0], vmState: "stopped", taskState: .some(nil), locked: nil)
            let scheduler = AutoStopScheduler(context: h.context)
            let report = try await scheduler.reconcile(now: now.addingTimeInterval(60))
            #expect(report.actions == 0)
            #expect(await h.region.requests().filter { $0.operation == "BatchStopServers" }.isEmpty)
            #expect(try await h.context.store.outcomes(of: seq).first?.result == .unknown)
            #expect(scheduler.latestPlan()?.skips.map(\.reason) == ["acted_on"])
            #expect(try await h.events(action: "recovery-unknown").first?.message.contains("\(ids[0]): already") == true)
            #expect(await h.status(ids[1]) == "ACTIVE")
        }
    }

    /// A person starts a server right after the stop while another server keeps the boundary open
    /// (busy): the person is not fought.
    @Test func aPersonsStartIsNotUndoneWhileTheBoundaryWaitsForABusyServer() async throws {
        try await WardenHarness.with(settings: settings([officeHours()]), clockStart: monday) { h in
            let calm = await h.addServer("web-1", tags: ["warden-schedule": "office"])
            let busy = await h.addServer("web-2", tags: ["warden-schedule": "office"])
            try await h.region.setServerState(projectId: h.project, serverId: busy, vmState: "active", taskState: .some("rebooting"), locked: nil)
            let scheduler = AutoStopScheduler(context: h.context)
            #expect(try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(1)).actions == 1)
            await h.settle()
            #expect(await h.status(calm) == "SHUTOFF")
            _ = try await h.context.projects[0].client.batchAction(.start, serverIds: [calm])
            await h.settle()
            #expect(await h.status(calm) == "ACTIVE")
            let second = try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(60))
            #expect(second.actions == 0)
            #expect(await h.status(calm) == "ACTIVE")
        }
    }
}

@Suite struct ReadAheadTests {
    /// Seconds before a boundary the pass reads and plans; at the boundary it re-reads only the
    /// servers concerned (one by one) and acts; the pass right after catches what changed meanwhile
    /// without acting twice on anything, and marks the boundary.
    @Test func theBoundaryIsPlannedAheadAndActedOnWhenItComes() async throws {
        try await WardenHarness.with(settings: settings([officeHours()]), clockStart: stopBoundary.addingTimeInterval(-5)) { h in
            let early = [await h.addServer("web-1", tags: ["warden-schedule": "office"]), await h.addServer("web-2", tags: ["warden-schedule": "office"])]
            await h.addServer("db-1")
            let scheduler = AutoStopScheduler(context: h.context)
            let pass = Task { try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(-5)) }
            for _ in 0..<400 where h.clock.sleeperCount == 0 { try await Task.sleep(for: .milliseconds(5)) }
            #expect(h.clock.sleeperCount == 1)  // the pass waits for the boundary
            #expect(await h.operations() == ["NovaListServersDetails"])
            // Tagged while the pass waits for the boundary: not in its plan.
            let late = await h.addServer("web-3", tags: ["warden-schedule": "office"])
            let mark = await h.logCount()
            h.clock.set(stopBoundary)
            let report = try await pass.value
            #expect(report.actions == 2)
            #expect(report.wakeAt == stopBoundary)  // the pass after the boundary, at once
            let atBoundary = await h.operations(since: mark)
            #expect(atBoundary.filter { $0 == "NovaShowServer" }.count == 2)
            #expect(!atBoundary.contains("NovaListServersDetails"))
            #expect(atBoundary.filter { $0 == "BatchStopServers" }.count == 1)
            // Marked by the pass after the boundary, not by the read-ahead.
            #expect(try await h.context.store.lastHandledBoundary(schedule: "office", project: "main") != stopBoundary)

            let after = await h.logCount()
            let next = try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(1))
            #expect(next.actions == 1)
            #expect(scheduler.latestPlan()?.batches.flatMap(\.serverIds) == [late])
            #expect(await h.operations(since: after).filter { $0 == "BatchStopServers" }.count == 1)
            #expect(try await h.context.store.lastHandledBoundary(schedule: "office", project: "main") == stopBoundary)
            await h.settle()
            for id in early + [late] { #expect(await h.status(id) == "SHUTOFF") }
        }
    }

    /// In dry-run the read-ahead and the pass after it journal each server once.
    @Test func dryRunJournalsEachServerOnceAcrossTheReadAhead() async throws {
        try await WardenHarness.with(settings: settings([officeHours()], dryRun: true), clockStart: stopBoundary.addingTimeInterval(-5)) { h in
            await h.addServer("web-1", tags: ["warden-schedule": "office"])
            let scheduler = AutoStopScheduler(context: h.context)
            let pass = Task { try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(-5)) }
            for _ in 0..<400 where h.clock.sleeperCount == 0 { try await Task.sleep(for: .milliseconds(5)) }
            #expect(h.clock.sleeperCount == 1)  // the pass waits for the boundary
            h.clock.set(stopBoundary)
            #expect(try await pass.value.actions == 1)
            #expect(try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(1)).actions == 0)
            #expect(try await h.context.store.journal(kinds: [.dryRun]).count == 1)
            #expect(await !h.operations().contains("BatchStopServers"))
        }
    }

    /// An operator pauses the scheduler while a pass waits for the boundary: nothing is stopped.
    @Test func pausingWhileWaitingForTheBoundaryActsOnNothing() async throws {
        try await WardenHarness.with(settings: settings([officeHours()]), clockStart: stopBoundary.addingTimeInterval(-5)) { h in
            let id = await h.addServer("web-1", tags: ["warden-schedule": "office"])
            let scheduler = AutoStopScheduler(context: h.context)
            let pass = Task { try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(-5)) }
            for _ in 0..<400 where h.clock.sleeperCount == 0 { try await Task.sleep(for: .milliseconds(5)) }
            scheduler.loopPaused(true)
            h.clock.set(stopBoundary)
            #expect(try await pass.value.actions == 0)
            #expect(await !h.operations().contains("BatchStopServers"))
            // Resumed within the grace: the boundary is acted on then.
            scheduler.loopPaused(false)
            #expect(try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(60)).actions == 1)
            await h.settle()
            #expect(await h.status(id) == "SHUTOFF")
        }
    }

    /// Nothing to act on as things stand seconds before the boundary: the loop still wakes at the
    /// boundary itself, and acts on a server that changed meanwhile.
    @Test func withNothingToDoAheadTheLoopWakesAtTheBoundary() async throws {
        try await WardenHarness.with(settings: settings([officeHours()]), clockStart: stopBoundary.addingTimeInterval(-5)) { h in
            let scheduler = AutoStopScheduler(context: h.context)
            let report = try await scheduler.reconcile(now: stopBoundary.addingTimeInterval(-5))
            #expect(report.wakeAt == stopBoundary)
            let late = await h.addServer("web-1", tags: ["warden-schedule": "office"])
            #expect(try await scheduler.reconcile(now: stopBoundary).actions == 1)
            await h.settle()
            #expect(await h.status(late) == "SHUTOFF")
        }
    }
}

@Suite struct ProjectServersTests {
    /// A listing's compact reading: two scheduled servers among others, one of them stopped.
    private func reading() -> [CompactServer] {
        var sharing = CompactServer.Sharing()
        let servers = [
            Server(id: "c-untagged", name: "c", status: .active, vmState: "active", tags: ["team=x"], locked: false),
            Server(
                id: "0b6b1b0e-7d5c-4a7e-9d3e-2f1a5c6b7d8e", name: "b", status: .active, vmState: "active", updated: "2026-11-30T08:00:00Z",
                flavor: ServerFlavorReference(id: "s6.large.2"), tags: ["warden-schedule=office"], locked: false),
            Server(id: "d-watched-only", name: "d", status: .error, vmState: "error", tags: [], locked: false),
            Server(id: "a", name: "a", status: .shutoff, vmState: "stopped", tags: ["warden-schedule=office", "env=dev"], locked: true),
        ]
        return servers.map { CompactServer($0, sharing: &sharing) }
    }

    @Test func builtFromAReadingItHoldsTheScheduledServersAsListed() {
        let reading = reading()
        let project = ProjectServers(project: "main", reading: reading, scheduleTag: "warden-schedule")
        let expected = reading.map(\.server).filter { $0.tagValue("warden-schedule") != nil }
        #expect(project.count == 2)
        #expect(project.servers == expected)
        #expect(project.servers.map(\.id) == ["0b6b1b0e-7d5c-4a7e-9d3e-2f1a5c6b7d8e", "a"])
        #expect(project.materialized().servers == expected)

        var changed = project
        changed.servers[1].status = .active
        #expect(changed.servers[1].status == .active)
        #expect(changed.count == 2)
        #expect(project.servers[1].status == .shutoff)  // a value: the original is unchanged
    }

    @Test func thePlanOverAReadingIsThePlanOverItsServers() {
        let reading = reading()
        let tagged = reading.map(\.server).filter { $0.tagValue("warden-schedule") != nil }
        func plan(_ project: ProjectServers, at now: Date) -> AutoStopPlan {
            AutoStopPlanner.plan(
                projects: [project], schedules: ["office": officeHours()], tags: ScheduleTagKeys(), limits: AutoStopLimits(), handledBoundaries: [:],
                snoozes: [:], dryRun: false, now: now)
        }
        for now in [stopBoundary.addingTimeInterval(30), stopBoundary.addingTimeInterval(-3600)] {
            let fromReading = plan(ProjectServers(project: "main", reading: reading, scheduleTag: "warden-schedule"), at: now)
            #expect(fromReading == plan(ProjectServers(project: "main", servers: tagged), at: now))
        }
        #expect(plan(ProjectServers(project: "main", reading: reading, scheduleTag: "warden-schedule"), at: stopBoundary.addingTimeInterval(30)).batches.flatMap(\.serverIds) == ["0b6b1b0e-7d5c-4a7e-9d3e-2f1a5c6b7d8e"])
    }
}
