import Foundation
import Testing

@testable import ECSAPI

/// A server kept in compact form gives back exactly its listed fields, whatever their spelling.
@Suite struct CompactServerTests {
    func roundTrip(_ server: Server) -> Server {
        var sharing = CompactServer.Sharing()
        return CompactServer(server, sharing: &sharing).server
    }

    @Test func idsAndTimestampsInAndOutOfCanonicalForm() {
        let ids = [
            "89c312bb-285a-4026-a237-d441908c2f9e", "89C312BB-285A-4026-A237-D441908C2F9E", "00000000-0000-0000-0000-000000000000",
            "ffffffff-ffff-ffff-ffff-ffffffffffff", "89c312bb285a4026a237d441908c2f9e0000", "s-1", "", "89c312bb-285a-4026-a237-d441908c2f9g",
        ]
        let times: [String?] = [
            "2019-05-22T07:48:53Z", "1970-01-01T00:00:00Z", "1969-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z",
            "2019-02-31T00:00:00Z", "2016-12-31T23:59:60Z", "2019-05-22T07:48:53z", "2019-05-22 07:48:53Z", "2019-05-22T07:48:53.000Z",
            "2018-01-17T03:03:32+08:00", "not a time", nil,
        ]
        for id in ids {
            for updated in times {
                let server = Server(id: id, name: "n", status: .active, updated: updated)
                #expect(ServerListingView(roundTrip(server)) == ServerListingView(server), "\(id) \(updated ?? "nil")")
            }
        }
    }

    @Test func everyListedFieldComesBack() {
        var server = Server(
            id: "s-1", name: "café 😀", status: .other("SHELVING_SOMETHING"), taskState: "powering-off", vmState: "active",
            availabilityZone: "az1-dc1", updated: "2019-05-22T07:48:53Z",
            flavor: ServerFlavorReference(id: "c3.large.2", name: "c3.large.2", vcpus: 2, ram: 4096, disk: 40), tags: ["warden-schedule=lab", "solo"],
            locked: true)
        server.hostStatus = "DOWN"
        server.fault = ServerFault(code: 500, created: "2019-05-22T07:48:53Z", message: "m", details: "d")
        #expect(ServerListingView(roundTrip(server)) == ServerListingView(server))
        let bare = Server(id: "s-2", name: "", status: .shutoff)
        #expect(ServerListingView(roundTrip(bare)) == ServerListingView(bare))
    }
}
