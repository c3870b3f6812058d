import ECSAPI
import ECSSimulator
import Foundation
import Testing

@testable import WardenCore

/// Crash recovery when the cloud does NOT replay `X-Client-Token` on batch actions.
///
/// The reference documents the header for creation only (seed S3, "Creating an ECS (Pay-per-Use)");
/// for `POST /v1/{project_id}/cloudservers/action` it is silent. The simulator replays by default
/// (an assumption, docs/simulator.md); here its `clientTokenReplay` switch is off, so a call repeated
/// under the same token is carried out again as a new job. The safety rules must still hold: no
/// server is stopped twice.
///
/// "Stopped" is counted in the simulator: a stop sub-job that started a transition of its server
/// (`SubJobRecord.startedTransition`). A stop delivered to a server that is already stopping is
/// refused at acceptance (`Ecs.0603`, "The commands are being executed", seed S1 A.2 — what a
/// task in progress answers is the simulator's assumption), one delivered to a stopped server
/// succeeds at once without touching it (also an assumption); neither is a second stop.
@Suite struct ReplayOffTests {
    static let schedule = ["warden-schedule": "office"]

    func replayOff(_ h: WardenHarness) async {
        var faults = await h.region.currentFaults()
        faults.clientTokenReplay = false
        await h.region.setFaults(faults)
        #expect(await h.region.currentFaults().clientTokenReplay == false)
    }

    /// The journal entry the daemon writes before it calls: a stop of `servers` under `token`.
    func stopIntent(_ h: WardenHarness, servers: [String], token: String, at: Date) async throws -> Int64 {
        try await h.context.store.append(
            JournalEntry(
                at: at, kind: .intent, loop: "schedule", project: "main", subject: "office", action: "stop", clientToken: token,
                servers: servers, result: .pending, message: "stop \(servers.count) servers of office"))
    }

    /// The stop sub-jobs the simulator recorded for a server, in the order the jobs were accepted.
    func stopSubJobs(_ h: WardenHarness, _ id: String) async -> [SimulatedRegion.SubJobRecord] {
        await h.region.subJobRecords(projectId: h.project, serverId: id).filter { $0.jobType == "batchStopServers" }
    }

    /// How often the server was really stopped: stop sub-jobs that started a transition.
    func timesStopped(_ h: WardenHarness, _ id: String) async -> Int {
        await stopSubJobs(h, id).filter(\.startedTransition).count
    }

    func acceptedStopCalls(_ h: WardenHarness) async -> Int {
        await h.region.requests().filter { $0.operation == "BatchStopServers" && $0.status == 200 }.count
    }

    /// (a) The daemon wrote the intent, sent the call, the cloud carried it out, and the daemon died
    /// before writing the outcome. After the restart the recovery re-reads the servers: they are
    /// stopping (or stopped), no longer as planned, so the intent is closed `unknown` and nothing
    /// is sent again — the token is never re-used, so it does not matter that the cloud would not
    /// replay it.
    @Test(arguments: [false, true])
    func aCarriedOutCallIsNotSentAgainAfterTheCrash(transitionFinishedBeforeRestart: Bool) async throws {
        try await WardenHarness.with(settings: settings([officeHours()]), clockStart: monday) { h in
            await replayOff(h)
            let ids = [await h.addServer("web-1", tags: Self.schedule), await h.addServer("web-2", tags: Self.schedule)]
            let now = stopBoundary.addingTimeInterval(1)
            let seq = try await stopIntent(h, servers: ids, token: "tok-off-a", at: now)
            _ = try await h.context.projects[0].client.batchAction(.stop(.soft), serverIds: ids, clientToken: "tok-off-a")
            // The daemon dies here. The cloud goes on; the restart comes during or after the stop.
            if transitionFinishedBeforeRestart { await h.settle() }
            let restarted = AutoStopScheduler(context: h.context)
            _ = try await restarted.reconcile(now: now.addingTimeInterval(30))
            _ = try await restarted.reconcile(now: now.addingTimeInterval(60))
            await h.settle()
            #expect(await acceptedStopCalls(h) == 1)
            #expect(try await h.context.store.outcomes(of: seq).first?.result == .unknown)
            #expect(try await h.events(action: "recovery-unknown").count == 1)
            #expect(try await h.events(action: "recovery-resend").isEmpty)
            #expect(try await h.context.store.openIntents().isEmpty)
            for id in ids {
                #expect(await h.status(id) == "SHUTOFF")
                #expect(await stopSubJobs(h, id).count == 1)
                #expect(await timesStopped(h, id) == 1)
            }
        }
    }

    /// (b) The intent was written and the call never left. The servers are still as planned, so
    /// the recovery sends the call once; with nothing to replay, replay on or off is the same.
    @Test func anUnsentCallIsSentOnceAfterTheCrash() async throws {
        try await WardenHarness.with(settings: settings([officeHours()]), clockStart: monday) { h in
            await replayOff(h)
            let ids = [await h.addServer("web-1", tags: Self.schedule), await h.addServer("web-2", tags: Self.schedule)]
            let now = stopBoundary.addingTimeInterval(1)
            let seq = try await stopIntent(h, servers: ids, token: "tok-off-b", at: now)
            let restarted = AutoStopScheduler(context: h.context)
            _ = try await restarted.reconcile(now: now.addingTimeInterval(5))
            await h.settle()
            _ = try await restarted.reconcile(now: now.addingTimeInterval(10))
            _ = try await restarted.reconcile(now: now.addingTimeInterval(60))
            #expect(await acceptedStopCalls(h) == 1)
            let outcome = try #require(try await h.context.store.outcomes(of: seq).first)
            #expect(outcome.result == .accepted)
            let job = try #require(outcome.jobId)
            #expect(try await h.events(action: "recovery-resend").count == 1)
            #expect(try await h.context.store.openIntents().isEmpty)
            for id in ids {
                #expect(await h.status(id) == "SHUTOFF")
                #expect(await stopSubJobs(h, id).map(\.jobId) == [job])
                #expect(await timesStopped(h, id) == 1)
            }
        }
    }

    /// (c) Late delivery: the first call got no answer and was held on the way; the daemon died.
    /// At the restart the servers are still as planned, so the recovery re-sends under the same
    /// token — and without replay the cloud takes the held call, when it finally lands, as a new
    /// request. It still stops nothing twice, because a server is stopped by whichever call lands
    /// first, and the other one finds it stopping (refused, `Ecs.0603`) or stopped (a no-op).
    /// The daemon's own record is the re-sent call's job; the late call's answer goes nowhere.
    @Test(arguments: [false, true])
    func aLateCallAfterTheResendStopsNothingTwice(landsAfterTheStopFinished: Bool) async throws {
        try await WardenHarness.with(settings: settings([officeHours()]), clockStart: monday) { h in
            await replayOff(h)
            let ids = [await h.addServer("web-1", tags: Self.schedule), await h.addServer("web-2", tags: Self.schedule)]
            let now = stopBoundary.addingTimeInterval(1)
            let seq = try await stopIntent(h, servers: ids, token: "tok-off-c", at: now)
            let restarted = AutoStopScheduler(context: h.context)
            _ = try await restarted.reconcile(now: now.addingTimeInterval(60))
            #expect(try await h.events(action: "recovery-resend").count == 1)
            if landsAfterTheStopFinished { await h.settle() }
            // The held call is finally delivered, under the same token, and not replayed.
            let late = try await h.context.projects[0].client.batchAction(.stop(.soft), serverIds: ids, clientToken: "tok-off-c")
            _ = try await restarted.reconcile(now: now.addingTimeInterval(120))
            await h.settle()
            _ = try await restarted.reconcile(now: now.addingTimeInterval(180))
            let outcome = try #require(try await h.context.store.outcomes(of: seq).first)
            #expect(outcome.result == .accepted)
            let resent = try #require(outcome.jobId)
            #expect(resent != late.jobId)  // two jobs: the cloud did not recognise the token
            #expect(await acceptedStopCalls(h) == 2)
            #expect(try await h.context.store.openIntents().isEmpty)
            for id in ids {
                #expect(await h.status(id) == "SHUTOFF")
                let subJobs = await stopSubJobs(h, id)
                #expect(subJobs.map(\.jobId) == [resent, late.jobId])
                #expect(subJobs.map(\.startedTransition) == [true, false])
                if landsAfterTheStopFinished {
                    #expect(subJobs.last?.status == "SUCCESS")  // already stopped: nothing to do
                } else {
                    #expect(subJobs.last?.status == "FAIL")
                    #expect(subJobs.last?.errorCode == "Ecs.0603")  // still stopping: refused
                }
                #expect(await timesStopped(h, id) == 1)
            }
        }
    }

    /// (c, the limit) Where the promise needs the replay: a person starts a server between the
    /// re-sent stop and the late delivery of the first call. Without replay the late call is a new
    /// stop of a running server, and the cloud carries it out — the server is stopped a second time
    /// and the person's start is undone. With replay (the simulator's default) the late call gets
    /// the re-sent call's answer and changes nothing. The daemon cannot tell the two apart: it sent
    /// one request and re-sent it under the same token.
    @Test(arguments: [false, true])
    func aPersonsStartBeforeTheLateCallIsOnlySafeWithReplay(replay: Bool) async throws {
        try await WardenHarness.with(settings: settings([officeHours()]), clockStart: monday) { h in
            if !replay { await replayOff(h) }
            let id = await h.addServer("web-1", tags: Self.schedule)
            let now = stopBoundary.addingTimeInterval(1)
            let seq = try await stopIntent(h, servers: [id], token: "tok-limit", at: now)
            let restarted = AutoStopScheduler(context: h.context)
            _ = try await restarted.reconcile(now: now.addingTimeInterval(60))
            await h.settle()
            _ = try await restarted.reconcile(now: now.addingTimeInterval(90))
            #expect(try await h.context.store.outcomes(of: seq).first?.result == .accepted)
            // A person starts it again.
            _ = try await h.context.projects[0].client.batchAction(.start, serverIds: [id])
            await h.settle()
            #expect(await h.status(id) == "ACTIVE")
            // The first call, held all this time, lands.
            let late = try await h.context.projects[0].client.batchAction(.stop(.soft), serverIds: [id], clientToken: "tok-limit")
            await h.settle()
            let resent = try await h.context.store.outcomes(of: seq).first?.jobId
            if replay {
                #expect(late.jobId == resent)
                #expect(await h.status(id) == "ACTIVE")
                #expect(await timesStopped(h, id) == 1)
            } else {
                #expect(late.jobId != resent)
                #expect(await h.status(id) == "SHUTOFF")
                #expect(await timesStopped(h, id) == 2)  // the limit, shown: stopped twice
            }
        }
    }
}
