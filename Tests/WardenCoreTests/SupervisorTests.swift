import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import Testing

@testable import WardenCore

/// A reconciler whose passes a test scripts (a narrow protocol stand-in for loop machinery tests).
final class ScriptedReconciler: Reconciler {
    let name: String
    private let behaviour: @Sendable (Int) async throws -> ReconcileReport
    private let count = Mutex(0)

    init(_ name: String, _ behaviour: @escaping @Sendable (Int) async throws -> ReconcileReport) {
        self.name = name
        self.behaviour = behaviour
    }

    var passes: Int { count.withLock { $0 } }

    func reconcile(now: Date) async throws -> ReconcileReport {
        let pass = count.withLock { $0 += 1; return $0 }
        return try await behaviour(pass)
    }
}

struct Boom: Error, CustomStringConvertible {
    var description: String { "boom" }
}

func quietLogger() -> Logger {
    var logger = Logger(label: "test")
    logger.logLevel = .critical
    return logger
}

/// Waits (bounded) until `condition` holds.
func eventually(_ condition: () async -> Bool) async -> Bool {
    for _ in 0..<400 {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return await condition()
}

@Suite struct SupervisorTests {
    @Test func aFailingLoopIsIsolatedAndBacksOff() async throws {
        let clock = ManualClock()
        let supervisor = Supervisor(clock: clock)
        let failing = ScriptedReconciler("failing") { _ in throw Boom() }
        let healthy = ScriptedReconciler("healthy") { _ in ReconcileReport(summary: "ok") }
        let timing = LoopTiming(interval: 60, jitter: 0, deadline: 30, maxBackoff: 600)
        let loops = [failing, healthy].map {
            ReconcileLoop(reconciler: $0, timing: timing, clock: clock, supervisor: supervisor, metrics: WardenMetrics(), logger: quietLogger())
        }
        let group = ServiceGroup(services: loops, logger: quietLogger())
        let running = Task { try await group.run() }
        #expect(await eventually { failing.passes == 1 && healthy.passes == 1 && clock.sleeperCount == 2 })
        for _ in 0..<5 {
            clock.advance(by: 60)
            #expect(await eventually { clock.sleeperCount == 2 })
        }
        // The healthy loop ran every minute; the failing one backed off (6, 12, 24… s then capped).
        #expect(healthy.passes == 6)
        #expect(failing.passes >= 3)
        let statuses = await supervisor.statuses()
        let failingStatus = try #require(statuses.first { $0.name == "failing" })
        #expect(failingStatus.consecutiveFailures == failing.passes)
        #expect(failingStatus.lastError == "boom")
        #expect(failingStatus.alive)  // failing is not hung
        #expect(statuses.first { $0.name == "healthy" }?.consecutiveFailures == 0)
        #expect(await supervisor.allAlive())
        #expect(await supervisor.allReady() == false)  // the failing loop never succeeded
        #expect(await supervisor.summaryLine().contains("failing: failing"))
        // The backoff grows: the next wake of the failing loop is further out than the interval.
        let delays = (1...6).map { timing.delay(after: .failure("x"), consecutiveFailures: $0, now: Date(), random: 1) }
        #expect(delays == [6, 12, 24, 48, 96, 192])
        await group.triggerGracefulShutdown()
        try await running.value
        #expect(await supervisor.allAlive() == false)  // stopped loops are not alive
    }

    @Test func aHungPassMakesItsLoopNotAlive() async throws {
        let clock = ManualClock()
        let supervisor = Supervisor(clock: clock)
        let gate = Mutex<CheckedContinuation<Void, Never>?>(nil)
        let hanging = ScriptedReconciler("hanging") { _ in
            await withCheckedContinuation { continuation in gate.withLock { $0 = continuation } }
            return ReconcileReport(summary: "finally")
        }
        let loop = ReconcileLoop(
            reconciler: hanging, timing: LoopTiming(interval: 60, jitter: 0, deadline: 120), clock: clock, supervisor: supervisor, logger: quietLogger())
        let group = ServiceGroup(services: [loop], logger: quietLogger())
        let running = Task { try await group.run() }
        #expect(await eventually { gate.withLock { $0 != nil } })
        #expect(await supervisor.allAlive())
        clock.advance(by: 121)
        #expect(await supervisor.allAlive() == false)
        #expect(await supervisor.summaryLine().contains("not alive: hanging"))
        gate.withLock { $0?.resume() }
        #expect(await eventually { await supervisor.allAlive() })
        await group.triggerGracefulShutdown()
        try await running.value
    }

    @Test func aLoopWhoseNextPassIsOverdueIsNotAlive() async {
        let clock = ManualClock()
        let supervisor = Supervisor(clock: clock)
        let start = clock.now()
        await supervisor.register("quota", interval: 60, deadline: 30)
        await supervisor.passStarted("quota", at: start)
        await supervisor.passFinished("quota", outcome: .success(ReconcileReport(summary: "ok")), started: start, finished: start)
        await supervisor.scheduled("quota", next: start.addingTimeInterval(60))
        // Due in a minute: alive until the pass is more than its deadline (30 s) late.
        #expect(await supervisor.allAlive(at: start.addingTimeInterval(90)))
        #expect(await supervisor.allAlive(at: start.addingTimeInterval(91)) == false)
        #expect(await supervisor.summaryLine(at: start.addingTimeInterval(91)).contains("not alive: quota"))
        // The loop woke for its pass: the overdue timer no longer counts (a running pass has its own deadline).
        await supervisor.woke("quota")
        #expect(await supervisor.allAlive(at: start.addingTimeInterval(91)))
        // A paused loop stays alive however overdue its timer is.
        await supervisor.scheduled("quota", next: start.addingTimeInterval(60))
        await supervisor.setPaused("quota", true)
        #expect(await supervisor.allAlive(at: start.addingTimeInterval(86_400)))
    }

    /// A loop whose timer never fires (its clock tells the time but never wakes a sleeper): the
    /// watchdog sees the overdue pass, though no pass is running. Paused, the loop stays alive.
    @Test func aLoopThatNeverWakesIsNotAliveUnlessPaused() async throws {
        let clock = ManualClock()
        let stalled = StalledClock(base: clock)
        let supervisor = Supervisor(clock: clock)
        let reconciler = ScriptedReconciler("quota") { _ in ReconcileReport(summary: "ok") }
        let loop = ReconcileLoop(
            reconciler: reconciler, timing: LoopTiming(interval: 60, jitter: 0, deadline: 120), clock: stalled, supervisor: supervisor,
            logger: quietLogger())
        let group = ServiceGroup(services: [loop], logger: quietLogger())
        let running = Task { try await group.run() }
        #expect(await eventually { reconciler.passes == 1 && stalled.sleeperCount == 1 })
        clock.advance(by: 60 + 120)
        #expect(await supervisor.allAlive())  // due 120 s ago: just within the deadline
        clock.advance(by: 1)
        #expect(await supervisor.allAlive() == false)
        #expect(await supervisor.summaryLine().contains("not alive: quota"))
        // Paused: alive, however long the timer stays silent.
        await loop.pause()
        #expect(await supervisor.allAlive())
        clock.advance(by: 86_400)
        #expect(await supervisor.allAlive())
        // Resumed: a pass at once, then the loop sleeps on its (stalled) timer again.
        await loop.resume()
        #expect(await eventually { reconciler.passes == 2 && stalled.sleeperCount == 1 })
        #expect(await supervisor.allAlive())
        await group.triggerGracefulShutdown()
        try await running.value
    }

    @Test func runNowPauseResumeAndWakeAtBoundaries() async throws {
        let clock = ManualClock()
        let supervisor = Supervisor(clock: clock)
        let wake = clock.now().addingTimeInterval(30)
        let reconciler = ScriptedReconciler("schedule") { _ in ReconcileReport(summary: "ok", wakeAt: wake) }
        let loop = ReconcileLoop(
            reconciler: reconciler, timing: LoopTiming(interval: 3600, jitter: 0), clock: clock, supervisor: supervisor, logger: quietLogger())
        let group = ServiceGroup(services: [loop], logger: quietLogger())
        let running = Task { try await group.run() }
        #expect(await eventually { reconciler.passes == 1 && clock.sleeperCount == 1 })
        // The loop sleeps until the reconciler's wake-up, not the hour.
        #expect(clock.nextDeadline == wake)
        loop.runNow()
        #expect(await eventually { reconciler.passes == 2 })
        await loop.pause()
        // The timer still fires; a paused loop then waits for resume without running a pass.
        clock.advance(by: 7200)
        try await Task.sleep(for: .milliseconds(50))
        #expect(reconciler.passes == 2)
        #expect(await supervisor.allReady())  // paused loops count as ready
        await loop.resume()
        #expect(await eventually { reconciler.passes == 3 })
        await group.triggerGracefulShutdown()
        try await running.value
    }

    @Test func loopMetricsAreExported() async throws {
        let metrics = WardenMetrics()
        let clock = ManualClock()
        let loop = ReconcileLoop(
            reconciler: ScriptedReconciler("quota") { _ in ReconcileReport(summary: "ok") }, timing: LoopTiming(interval: 60), clock: clock,
            supervisor: Supervisor(clock: clock), metrics: metrics, logger: quietLogger())
        _ = await loop.runPass()
        let text = metrics.exposition()
        #expect(text.contains(#"ecs_warden_loop_runs_total{loop="quota",result="success"} 1"#))
        #expect(text.contains(#"ecs_warden_loop_last_success_timestamp_seconds{loop="quota"}"#))
        #expect(text.contains(#"ecs_warden_loop_duration_seconds_count{loop="quota"} 1"#))
        #expect(text.contains("# HELP ecs_warden_loop_runs_total"))
    }
}

/// Tells a manual clock's time but never wakes a sleeper (only cancellation ends a sleep): a loop
/// whose timer does not fire.
final class StalledClock: WardenClock {
    let base: ManualClock
    private let sleepers = Mutex(0)

    init(base: ManualClock) {
        self.base = base
    }

    var sleeperCount: Int { sleepers.withLock { $0 } }

    func now() -> Date { base.now() }

    func sleep(until deadline: Date) async throws {
        sleepers.withLock { $0 += 1 }
        defer { sleepers.withLock { $0 -= 1 } }
        try await base.sleep(until: .distantFuture)
    }
}

@Suite struct MutationGateTests {
    @Test func closingTheGateEndsSleepsOnTheInterruptedClock() async throws {
        let clock = ManualClock()
        let gate = MutationGate()
        let interrupted = ShutdownInterruptedClock(base: clock, gate: gate)
        #expect(!gate.isClosed)
        let sleeper = Task { () -> Bool in
            do {
                try await interrupted.sleep(until: clock.now().addingTimeInterval(30))
                return true
            } catch {
                return false
            }
        }
        #expect(await eventually { clock.sleeperCount == 1 })
        gate.close()
        #expect(await sleeper.value == false)  // ended by the gate, not by the time
        #expect(gate.isClosed)
        #expect(clock.sleeperCount == 0)
        // Once closed, a sleep ends at once; closing again changes nothing.
        gate.close()
        await #expect(throws: CancellationError.self) { try await interrupted.sleep(until: clock.now().addingTimeInterval(1)) }
        // An open gate lets the sleep run to its time.
        let open = ShutdownInterruptedClock(base: clock, gate: MutationGate())
        let slept = Task { try await open.sleep(until: clock.now().addingTimeInterval(10)) }
        #expect(await eventually { clock.sleeperCount == 1 })
        clock.advance(by: 10)
        try await slept.value
    }
}

@Suite struct GaugeFamilyTests {
    @Test func aScopedSnapshotReplacesOnlyItsOwnSeries() {
        let metrics = WardenMetrics()
        let family = metrics.flavorSoldOut
        family.replace(scope: [("region", "eu-west-0")], with: [([("region", "eu-west-0"), ("az", "a"), ("flavor", "f")], 1)])
        family.replace(scope: [("region", "eu-west-01")], with: [([("region", "eu-west-01"), ("az", "a"), ("flavor", "f")], 1)])
        // A new snapshot of eu-west-0 without the flavor removes its series, not eu-west-01's.
        family.replace(scope: [("region", "eu-west-0")], with: [])
        let text = metrics.exposition()
        #expect(!text.contains(#"region="eu-west-0",az="a""#))
        #expect(text.contains(#"ecs_warden_flavor_sold_out{region="eu-west-01",az="a",flavor="f"} 1"#))
    }
}
