import Foundation
import Testing

@testable import ECSSimulator

/// Seed Appendix A.3: status derived from (vm_state, task_state), table A-4, and each operation's path.
@Suite struct ServerStateModelTests {
    /// Table A-4, row by row.
    static let tableA4: [(vm: String, tasks: [String?], status: String)] = [
        ("building", ["scheduling", "block_device_mapping", "networking", "spawning", nil], "BUILD"),
        ("active", ["rebooting", "reboot_pending", "reboot_started"], "REBOOT"),
        ("active", ["rebooting_hard", "reboot_pending_hard", "reboot_started_hard"], "HARD_REBOOT"),
        ("active", ["rebuilding", "rebuild_block_device_mapping", "rebuild_spawning"], "REBUILD"),
        ("active", ["migrating"], "MIGRATING"),
        ("active", ["powering-off", "deleting", nil], "ACTIVE"),
        ("stopped", ["resize_prep", "resize_migrating", "resize_migrated", "resize_finish"], "RESIZE"),
        ("stopped", ["rebuilding", "rebuild_block_device_mapping", "rebuild_spawning"], "REBUILD"),
        ("stopped", ["powering-on", "deleting", nil], "SHUTOFF"),
        ("resized", ["resize_reverting"], "REVERT_RESIZE"),
        ("resized", [nil], "VERIFY_RESIZE"),
        ("error", ["rebuilding", "rebuild_block_device_mapping", "rebuild_spawning"], "REBUILD"),
        ("error", ["deleting", nil], "ERROR"),
        ("deleted", [nil], "DELETED"),
        ("shelved", ["shelving", "shelving_image_pending_upload", "shelving_image_uploading", "unshelving", nil], "SHELVED"),
        ("shelved_offloaded", ["shelving_offloading", "unshelving", nil], "SHELVED_OFFLOADED"),
    ]

    @Test func everyRowOfTableA4() {
        for row in Self.tableA4 {
            for task in row.tasks {
                #expect(ServerStateModel.status(vmState: row.vm, taskState: task) == row.status, "\(row.vm) + \(task ?? "null")")
            }
        }
    }

    @Test func pairsOutsideTheTableAreUnknown() {
        #expect(ServerStateModel.status(vmState: "active", taskState: "powering-on") == "UNKNOWN")
        #expect(ServerStateModel.status(vmState: "stopped", taskState: "rebooting") == "UNKNOWN")
        #expect(ServerStateModel.status(vmState: "deleted", taskState: "deleting") == "UNKNOWN")
        #expect(ServerStateModel.status(vmState: "nonsense", taskState: nil) == "UNKNOWN")
        // The seed's misspelling is accepted.
        #expect(ServerStateModel.status(vmState: "active", taskState: "rebuild_spawnning") == "REBUILD")
        // "" and null both mean no task.
        #expect(ServerStateModel.status(vmState: "active", taskState: "") == "ACTIVE")
    }

    @Test func eachOperationWalksItsPath() {
        func statuses(_ operation: ServerStateModel.Operation, from vm: String) -> [String] {
            let path = ServerStateModel.path(of: operation, from: vm)
            return (path.steps + [path.final]).map { ServerStateModel.status(vmState: $0.vmState, taskState: $0.taskState) }
        }
        #expect(statuses(.create, from: "building") == ["BUILD", "BUILD", "BUILD", "BUILD", "ACTIVE"])
        #expect(statuses(.stop, from: "active") == ["ACTIVE", "SHUTOFF"])
        #expect(statuses(.start, from: "stopped") == ["SHUTOFF", "ACTIVE"])
        #expect(statuses(.reboot, from: "active") == ["REBOOT", "REBOOT", "REBOOT", "ACTIVE"])
        #expect(statuses(.hardReboot, from: "active") == ["HARD_REBOOT", "HARD_REBOOT", "HARD_REBOOT", "ACTIVE"])
        #expect(statuses(.delete, from: "stopped") == ["SHUTOFF", "DELETED"])
        #expect(ServerStateModel.path(of: .stop, from: "active").steps.map(\.taskState) == ["powering-off"])
    }

    @Test func invalidOperationsAreRejected() {
        #expect(ServerStateModel.rejection(of: .start, vmState: "active", taskState: nil, locked: false) == .invalidState)
        #expect(ServerStateModel.rejection(of: .stop, vmState: "stopped", taskState: nil, locked: false) == .invalidState)
        #expect(ServerStateModel.rejection(of: .stop, vmState: "active", taskState: "powering-off", locked: false) == .busy)
        #expect(ServerStateModel.rejection(of: .reboot, vmState: "active", taskState: nil, locked: true) == .locked)
        #expect(ServerStateModel.rejection(of: .delete, vmState: "error", taskState: nil, locked: false) == nil)
        #expect(ServerStateModel.rejection(of: .stop, vmState: "active", taskState: nil, locked: false) == nil)
    }

    @Test func flavorSaleStateResolution() {
        var flavor = SimFlavor(id: "c3.large.2", vcpus: 2, ramMB: 4096)
        #expect(flavor.saleState(in: "az1") == "normal")
        flavor.extraSpecs["cond:operation:status"] = "abandon"
        flavor.extraSpecs["cond:operation:az"] = "az0(normal), az1(sellout), az2(obt), az3()"
        #expect(flavor.saleState(in: "az0") == "normal")
        #expect(flavor.saleState(in: "az1") == "sellout")
        #expect(flavor.saleState(in: "az2") == "obt")
        #expect(flavor.saleState(in: "az3") == "abandon")  // empty parentheses: invalid, falls back
        #expect(flavor.saleState(in: "az9") == "abandon")
        #expect(flavor.isOrderable(in: "az2"))
        #expect(!flavor.isOrderable(in: "az1"))
    }

    @Test func timestampsInTheSeedFormats() {
        #expect(SimTime.format(1_461_614_687.591, .milliseconds) == "2016-04-25T20:04:47.591Z")
        #expect(SimTime.format(1_558_511_333, .seconds) == "2019-05-22T07:48:53Z")
        #expect(SimTime.format(1_558_511_299, .microsecondsNoZone) == "2019-05-22T07:48:19.000000")
    }

    @Test func jsonWriterEscapes() {
        var json = JSONWriter()
        json.object { json in
            json.field("a", "q\"uote\\n\new\u{01}")
            json.field("n", nil as String?)
            json.field("list", ["x", "y"])
        }
        #expect(String(decoding: json.bytes, as: UTF8.self) == #"{"a":"q\"uote\\n\new\u0001","n":null,"list":["x","y"]}"#)
    }
}

@Suite struct SimulatorRoutingTests {
    @Test func versionDocumentsAnswerWithoutAuthentication() async throws {
        let region = SimulatedRegion(configuration: SimRegionConfiguration())
        for path in ["/", "/v2.1", "/v2"] {
            let response = await region.handle(SimHTTPRequest(method: "GET", path: path, headers: [.init("Host", "sim:1")]))
            #expect(response.status == 200, "\(path)")
            let object = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
            #expect(object?["versions"] != nil || object?["version"] != nil, "\(path)")
        }
        let root = await region.handle(SimHTTPRequest(method: "GET", path: "/"))
        #expect(String(decoding: root.body, as: UTF8.self).contains(#""version":"2.60""#))
    }

    @Test func generatedFleetsStartWithinTheirQuota() async throws {
        let region = SimulatedRegion(configuration: SimRegionConfiguration())
        let ids = await FleetGenerator(projects: 1, serversPerProject: 2500).populate(region)
        let quota = try #require(await region.quota(projectId: ids[0]))
        #expect(quota.instances >= 2500)
    }
}

@Suite struct SimulatorIdentityTests {
    /// The fleet generator and the region share a seed; the region's new ids must not repeat the
    /// fleet's (a repeated id would overwrite a server and skew the quota).
    @Test func createdServersNeverReuseFleetIds() async throws {
        let region = SimulatedRegion(configuration: SimRegionConfiguration(seed: 1))
        let projects = await FleetGenerator(projects: 1, serversPerProject: 50, seed: 1).populate(region)
        let before = Set(await region.serverIds(projectId: projects[0]))
        let created = try await region.createServers(
            projectId: projects[0],
            spec: .init(
                name: "new", flavorId: "s3.small.2", imageRef: FleetGenerator.imageId, availabilityZone: nil, count: 5, tags: [], metadata: [:],
                description: "", keyName: nil))
        #expect(Set(created.serverIds).isDisjoint(with: before))
        #expect(await region.serverIds(projectId: projects[0]).count == 55)
    }
}
