import Foundation
import Testing

@testable import WardenPostgres

/// The decisions about a node name two live processes share, without a database.
@Suite struct NodeNameCheckTests {
    static func instance(_ id: String, startedAt: Double?) -> NodeInstance {
        NodeInstance(id: id, label: "pid 1 on \(id)", startedAt: startedAt)
    }

    let me = Self.instance("b", startedAt: 200)

    @Test func onlyAnotherWriterBetweenTwoOwnBeatsProvesASecondProcess() {
        let earlier = Self.instance("a", startedAt: 100)
        // A first beat (new, restarted, back from standing by) finds an old write: nothing proven.
        #expect(NodeNameCheck.after(beatReplacing: earlier, wroteLast: false, me: me) == .alone)
        #expect(NodeNameCheck.after(beatReplacing: nil, wroteLast: true, me: me) == .alone)
        #expect(NodeNameCheck.after(beatReplacing: me, wroteLast: true, me: me) == .alone)
        #expect(NodeNameCheck.after(beatReplacing: earlier, wroteLast: true, me: me) == .sharedWithEarlier(earlier))
        let later = Self.instance("c", startedAt: 300)
        #expect(NodeNameCheck.after(beatReplacing: later, wroteLast: true, me: me) == .sharedWithLater(later))
    }

    @Test func bothProcessesAgreeWhichStartedLater() {
        let a = Self.instance("a", startedAt: 100)
        let b = Self.instance("b", startedAt: 100)
        // Equal start times: ordered by id, the same answer on both sides.
        #expect(b.startedAfter(a) && !a.startedAfter(b))
        let c = Self.instance("c", startedAt: 50)
        #expect(a.startedAfter(c) && !c.startedAfter(a))
    }

    /// One look of a watch: the row's writer, whether its heartbeat is live and whether it left,
    /// seconds after the first look.
    struct Look {
        var writer: NodeInstance
        var live: Bool
        var left = false
        var at: Int
    }

    /// Runs the looks on a watch yielding to `other` with a 15-s patience; returns each answer
    /// (whether to take part again) and the watch.
    func run(_ looks: [Look], yieldingTo other: NodeInstance) -> ([Bool], StandbyWatch) {
        var watch = StandbyWatch(yieldingTo: other)
        let start = ContinuousClock.now
        let answers = looks.map { look in
            watch.look(writer: look.writer, live: look.live, left: look.left, me: me, at: start + .seconds(look.at), patience: .seconds(15))
        }
        return (answers, watch)
    }

    @Test func theWatchWaitsWhileTheOtherBeatsAndRejoinsWhenItLeft() {
        let other = Self.instance("a", startedAt: 100)
        // A restarted replacement beats under the name: the watch names it from then on.
        let replacement = Self.instance("d", startedAt: 400)
        let (answers, watch) = run(
            [Look(writer: other, live: true, at: 0), Look(writer: replacement, live: true, at: 1)], yieldingTo: other)
        #expect(answers == [false, false])
        #expect(watch.other == replacement)
        let (left, _) = run([Look(writer: other, live: true, at: 0), Look(writer: other, live: false, left: true, at: 1)], yieldingTo: other)
        #expect(left == [false, true])
    }

    @Test func aStaleHeartbeatMustStayStaleForTheWholePatience() {
        let other = Self.instance("a", startedAt: 100)
        // PostgreSQL was down: every heartbeat looks stale for a while; the other beats again at
        // 12 s and the quiet time starts over; it stops for good at 20 s.
        let (answers, _) = run(
            [
                Look(writer: other, live: false, at: 0), Look(writer: other, live: false, at: 10), Look(writer: other, live: true, at: 12),
                Look(writer: other, live: false, at: 20), Look(writer: other, live: false, at: 34), Look(writer: other, live: false, at: 35),
            ], yieldingTo: other)
        #expect(answers == [false, false, false, false, false, true])
        // This process's own last write (the beat that found the other) counts as quiet too.
        let (own, _) = run([Look(writer: me, live: true, at: 0), Look(writer: me, live: true, at: 15)], yieldingTo: other)
        #expect(own == [false, true])
    }
}
