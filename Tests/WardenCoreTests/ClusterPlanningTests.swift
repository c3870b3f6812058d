import Testing
import WardenCore
import WardenPostgres

/// The pure parts of cluster mode: fair shares, what to claim and release, the channel's messages.
@Suite struct ClusterPlanningTests {
    @Test func fairShareIsTheCeilingOfShardsOverNodes() {
        #expect(LeasePlanner.target(shards: 10, aliveNodes: 3) == 4)
        #expect(LeasePlanner.target(shards: 9, aliveNodes: 3) == 3)
        #expect(LeasePlanner.target(shards: 10, aliveNodes: 0) == 10)
        #expect(LeasePlanner.target(shards: 0, aliveNodes: 3) == 0)
        #expect(LeasePlanner.target(shards: 1000, aliveNodes: 3) == 334)
    }

    @Test func claimingStopsAtTheTargetAndAtWhatIsClaimable() {
        #expect(LeasePlanner.toClaim(owned: 2, target: 4, claimable: 10) == 2)
        #expect(LeasePlanner.toClaim(owned: 2, target: 4, claimable: 1) == 1)
        #expect(LeasePlanner.toClaim(owned: 5, target: 4, claimable: 10) == 0)
    }

    @Test func onlyReleasableSurplusIsGivenUp() {
        let owned = (1...6).map { ShardID.project("p\($0)") }
        let released = LeasePlanner.toRelease(owned: owned, target: 4) { $0 != .project("p6") }
        #expect(released == [.project("p5"), .project("p4")])
        #expect(LeasePlanner.toRelease(owned: owned, target: 6) { _ in true }.isEmpty)
        #expect(LeasePlanner.toRelease(owned: owned, target: 2) { _ in false }.isEmpty)
        #expect(LeasePlanner.unconfigured(owned: owned, configured: Set(owned.prefix(5))) == [.project("p6")])
    }

    @Test func channelMessagesRoundTrip() {
        for message in [ClusterMessage.pause("schedule"), .resume("quota"), .run("stuck"), .shardsMoved] {
            #expect(ClusterMessage(payload: message.payload) == message)
        }
        #expect(ClusterMessage(payload: "warden-a") == .shardsMoved)
        #expect(ShardID.project("x").rawValue == "project:x")
        #expect(ShardID.region("eu").rawValue == "region:eu")
    }

    @Test func aSingleNodeOwnsEverythingWithoutFenceOrDeadline() async throws {
        let sole = SoleOwnership()
        #expect(sole.owns(.project("any")))
        #expect(sole.grant(.project("any"), needing: .seconds(3600)) == .sole)
        #expect(try await sole.whileOwned(.project("any")) { 42 } == 42)
    }
}
