import ECSAPI
import ECSSimulator
import Foundation
import Testing

@testable import WardenCore

@Suite struct ServerInventoryTests {
    /// One listing of the fleet serves the schedule pass and a stuck pass right after it; an older
    /// one is not reused, and the stuck loop still sees a server that got stuck (it was listed).
    @Test func theStuckLoopReusesTheScheduleLoopsRecentListing() async throws {
        try await WardenHarness.with(projects: 2, servers: 30, settings: settings([officeHours()]), clockStart: monday) { h in
            let stuckServer = await h.addServer("stuck-1")
            try await h.region.setServerState(projectId: h.project, serverId: stuckServer, vmState: "active", taskState: .some("rebooting"), locked: nil)
            let scheduler = AutoStopScheduler(context: h.context)
            let detector = StuckTaskDetector(context: h.context)
            let now = monday.addingTimeInterval(3600)
            _ = try await scheduler.reconcile(now: now)
            #expect(await h.operations().filter { $0 == "NovaListServersDetails" }.count == 2)
            let mark = await h.logCount()
            _ = try await detector.reconcile(now: now.addingTimeInterval(5))
            #expect(await h.operations(since: mark).filter { $0 == "NovaListServersDetails" }.isEmpty)
            // Past maxAge the stuck loop lists for itself. (Age counts from the end of the read, whose
            // length is real time: a minute's margin keeps a slow machine from sharing it still.)
            let later = await h.logCount()
            _ = try await detector.reconcile(now: now.addingTimeInterval(5 + h.context.inventory.maxAge + 60))
            #expect(await h.operations(since: later).filter { $0 == "NovaListServersDetails" }.count == 2)
            // The scheduler never takes an old reading: every pass lists.
            let again = await h.logCount()
            _ = try await scheduler.reconcile(now: now.addingTimeInterval(5 + h.context.inventory.maxAge + 61))
            #expect(await h.operations(since: again).filter { $0 == "NovaListServersDetails" }.count == 2)
        }
    }

    /// Only the servers a loop looks at are kept: tagged with a schedule or watched by the stuck rules.
    @Test func onlyServersSomeLoopLooksAtAreKept() async throws {
        try await WardenHarness.with(settings: settings([officeHours()]), clockStart: monday) { h in
            let tagged = await h.addServer("web-1", tags: ["warden-schedule": "office"])
            let rebooting = await h.addServer("web-2")
            try await h.region.setServerState(projectId: h.project, serverId: rebooting, vmState: "active", taskState: .some("rebooting"), locked: nil)
            await h.addServer("db-1")
            let kept = try await h.context.inventory.servers(
                of: h.context.projects[0], fresh: true, now: monday, settings: h.context.settings)
            #expect(Set(kept.map(\.id)) == [tagged, rebooting])
        }
    }

    /// A reading's age counts from the end of its read: a read that outlasts `maxAge` (a fleet of a
    /// million servers) is still shared with the loop that comes right after it, and ages out after.
    @Test func aLongReadIsSharedFromItsEnd() async throws {
        let h = try await WardenHarness.start(servers: 30, settings: settings([officeHours()]), clockStart: monday, pageSize: 10)
        do {
            var faults = SimFaults()
            faults.latencyMs = 400
            await h.region.setFaults(faults)
            let inventory = ServerInventory(maxAge: 1)
            let project = h.context.projects[0]
            let settings = h.context.settings
            let started = Date()
            _ = try await inventory.servers(of: project, fresh: true, now: monday, settings: settings)
            let took = Date().timeIntervalSince(started)
            #expect(took > 1.1)
            let mark = await h.logCount()
            // Three pages, each answered after 400 ms: the read lasted at least 1.2 s. At that
            // moment the reading is older than maxAge counted from its start and not old at all
            // counted from its end (however much longer a loaded machine made the read): shared.
            let readFloor: TimeInterval = 3 * 0.4
            _ = try await inventory.servers(of: project, fresh: false, now: monday.addingTimeInterval(readFloor), settings: settings)
            #expect(await h.operations(since: mark).filter { $0 == "NovaListServersDetails" }.isEmpty)
            // Past maxAge after its end: read again.
            _ = try await inventory.servers(of: project, fresh: false, now: monday.addingTimeInterval(took + 3), settings: settings)
            #expect(await h.operations(since: mark).filter { $0 == "NovaListServersDetails" }.count == 3)
        } catch {
            await h.stop()
            throw error
        }
        await h.stop()
    }

    /// A failed listing is not shared: the next reader lists again.
    @Test func aFailedListingIsNotShared() async throws {
        try await WardenHarness.with(settings: settings([officeHours()]), clockStart: monday) { h in
            await h.addServer("web-1", tags: ["warden-schedule": "office"])
            var faults = SimFaults()
            faults.errorRate = 1
            faults.errorStatus = 500
            await h.region.setFaults(faults)
            let project = h.context.projects[0]
            let settings = h.context.settings
            await #expect(throws: ECSError.self) { try await h.context.inventory.servers(of: project, fresh: true, now: monday, settings: settings) }
            await h.region.setFaults(SimFaults())
            let again = try await h.context.inventory.servers(of: project, fresh: false, now: monday, settings: settings)
            #expect(again.count == 1)
        }
    }
}
