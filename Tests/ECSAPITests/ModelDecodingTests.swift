import Foundation
import Testing

@testable import ECSAPI

/// Decoding of the seed examples (re-assembled in `shared/spec/ecs-api.md`) and of their variants.
@Suite struct ModelDecodingTests {
    func decode<T: Decodable>(_ type: T.Type, _ json: String) throws -> T {
        try JSONDecoder().decode(type, from: Data(json.utf8))
    }

    @Test func novaServerExampleAtMicroversion226() throws {
        let json = novaReferenceServerPage
        let page = try decode(ServerDetailPage.self, json)
        let server = try #require(page.servers.first)
        #expect(server.status == .active)
        #expect(server.taskState == nil)
        #expect(server.vmState == "active")
        #expect(server.availabilityZone == "az-test-01")
        #expect(server.flavor?.id == "s3.small.1")
        #expect(server.tagPairs == [ServerTag(key: "warden-schedule", value: "office"), ServerTag(key: "solo", value: "")])
        #expect(server.locked == false)
        #expect(server.updatedAt == Date(timeIntervalSince1970: 1_526_008_971))
        #expect(page.serversLinks == nil)
    }

    @Test func toleratesTheSeedsSelfContradictions() throws {
        // task_state "" instead of null, upper-case vm_state, v1 string-typed flavor, unknown status,
        // power_state as a string, locked as "true", metadata with a number.
        let json = """
            {"server": {"id": "s-1", "name": "n", "status": "SHELVING_SOMETHING", "OS-EXT-STS:task_state": "",
              "OS-EXT-STS:vm_state": "STOPPED", "OS-EXT-STS:power_state": "4", "locked": "true",
              "flavor": {"id": "c3.large.2", "name": "c3.large.2", "vcpus": "2", "ram": "4096", "disk": "0"},
              "metadata": {"charging_mode": 0, "os_type": "Linux", "gone": null}, "image": ""}}
            """
        let server = try decode(ServerEnvelope.self, json).server
        #expect(server.status == .other("SHELVING_SOMETHING"))
        #expect(server.status.rawValue == "SHELVING_SOMETHING")
        #expect(server.taskState == nil)
        #expect(server.vmState == "stopped")
        #expect(server.powerState == 4)
        #expect(server.locked == true)
        #expect(server.flavor == ServerFlavorReference(id: "c3.large.2", name: "c3.large.2", vcpus: 2, ram: 4096, disk: 0))
        #expect(server.metadata == ["charging_mode": "0", "os_type": "Linux"])
    }

    @Test func powerOffTaskStateBehindActiveStatus() throws {
        let server = try decode(Server.self, novaServerJSON(id: "x", status: "ACTIVE", taskState: "powering-off"))
        #expect(server.status == .active)
        #expect(server.taskState == "powering-off")
        #expect(!server.status.isTransitional)
        #expect(ServerStatus(rawValue: "hard_reboot") == .hardReboot)
    }

    @Test func jobExampleWithSubJobs() throws {
        let json = """
            {"status": "FAIL", "entities": {"sub_jobs_total": "2", "sub_jobs": [
              {"status": "SUCCESS", "entities": {"server_id": "bae51750-0089-41a1-9b18-5c777978ff6d"},
               "job_id": "2c9eb2c5544cbf6101544f0635672b60", "job_type": "stopServer",
               "begin_time": "2016-04-25T20:04:47.591Z", "end_time": "2016-04-25T20:08:21.328Z", "error_code": null, "fail_reason": null},
              {"status": "FAIL", "entities": {"server_id": "s-2", "errorcode_message": "Ecs.0100 state"},
               "job_id": "2c9eb2c5544cbf6101544f0635672b61", "job_type": "stopServer", "begin_time": "2016-04-25T20:04:47.591Z",
               "end_time": "", "error_code": "Ecs.0100", "fail_reason": "The ECS status does not meet requirements."}]},
             "job_id": "2c9eb2c5544cbf6101544f0602af2b4f", "job_type": "batchStopServers",
             "begin_time": "2016-04-25T20:04:34.604Z", "end_time": null, "error_code": "Ecs.0100", "fail_reason": "x"}
            """
        let job = try decode(Job.self, json)
        #expect(job.status == .fail)
        #expect(job.status.isFinished)
        #expect(job.entities?.subJobsTotal == 2)
        #expect(job.failedSubJobs.map { $0.entities?.serverId } == ["s-2"])
        #expect(job.failedSubJobs.first?.entities?.errorcodeMessage == "Ecs.0100 state")
        #expect(job.subJobs.last?.endTime == nil)
        #expect(job.beginDate == Date(timeIntervalSince1970: 1_461_614_674.604))
        #expect(try decode(Job.self, #"{"status":"INIT","job_id":"j"}"#).status == .initializing)
        #expect(try decode(Job.self, #"{"status":"PAUSED","job_id":"j"}"#).status == .other("PAUSED"))
    }

    @Test func limitsExampleWithBothSpellings() throws {
        let json = """
            {"absolute": {"maxServerMeta": 128, "maxPersonality": 5, "maxImageMeta": 128, "maxPersonalitySize": 10240,
              "maxSecurityGroupRules": 20, "maxTotalKeypairs": -1, "totalRAMUsed": 75776, "totalInstancesUsed": 21,
              "maxSecurityGroups": 10, "totalFloatingIpsUsed": 0, "maxTotalCores": 20480, "totalSecurityGroupsUsed": 1,
              "maxTotalFloatingIps": 10, "maxTotalInstances": 2048, "totalCoresUsed": 40, "maxTotalRAMSize": 25165824,
              "maxServerGroups": -1, "maxServerGroupMembers": 16, "totalServerGroupsUsed": 2, "limit_by_flavor": [{}]}}
            """
        let limits = try decode(TenantLimits.self, json)
        #expect(limits.usage("instances") == TenantLimits.Usage(resource: "instances", used: 21, limit: 2048))
        #expect(limits.usage("server_groups")?.limit == nil)
        #expect(limits.usage("server_groups")?.ratio == nil)
        #expect(limits.maxTotalKeyPairs == -1)
        #expect(limits.maxServerMetadata == 128)
        #expect(limits.usages.count == 6)
        let tableSpelling = try decode(TenantLimits.self, #"{"absolute":{"maxTotalKeyPairs":"7","maxServerMetadata":"9"}}"#)
        #expect(tableSpelling.maxTotalKeyPairs == 7)
        #expect(tableSpelling.maxServerMetadata == 9)
        let nova = try decode(TenantLimits.self, #"{"limits":{"rate":[],"absolute":{"maxTotalCores":"20","totalCoresUsed":"5"}}}"#)
        #expect(nova.usage("cores")?.ratio == 0.25)
    }

    @Test func flavorExampleWithStringNumbers() throws {
        let json = """
            {"flavors": [{"id": "c3.2xlarge.2", "name": "c3.2xlarge.2", "vcpus": "8", "ram": 16384, "disk": "0", "swap": "",
              "OS-FLV-EXT-DATA:ephemeral": 0, "rxtx_factor": 1, "OS-FLV-DISABLED:disabled": false, "rxtx_quota": null,
              "rxtx_cap": null, "os-flavor-access:is_public": true,
              "os_extra_specs": {"ecs:virtualization_env_types": "CloudCompute", "ecs:generation": "c3",
                 "cond:operation:status": "abandon", "cond:operation:az": "az0(normal), az1(sellout)"}}]}
            """
        let flavor = try #require(try decode(FlavorList.self, json).flavors.first)
        #expect(flavor.vcpus == 8)
        #expect(flavor.ram == 16384)
        #expect(flavor.isPublic == true)
        #expect(flavor.operationStatus == "abandon")
        #expect(flavor.operationAZ == "az0(normal), az1(sellout)")
    }

    @Test func tagQueryAnswer() throws {
        let json = """
            {"resources": [{"resource_detail": null, "resource_id": "cdf5_0ef5_wesas_12_dsad", "resource_name": "ecs_test",
              "tags": [{"key": "key1", "value": "value1"}, {"key": "empty"}]}], "total_count": 1000}
            """
        let page = try decode(TaggedResourcePage.self, json)
        #expect(page.totalCount == 1000)
        #expect(page.resources.first?.tags == [ServerTag(key: "key1", value: "value1"), ServerTag(key: "empty", value: "")])
        #expect(try decode(TaggedResourcePage.self, #"{"total_count": "12"}"#).totalCount == 12)
    }

    @Test func instanceActionWithEvents() throws {
        let json = """
            {"instanceAction": {"instance_uuid": "e723eb40-f56e-40f9-8c8c-caa517fe06ba", "user_id": "u",
              "start_time": "2014-12-11T02:17:49.000000", "request_id": "req-5a429946-c9cc-45cc-b5bd-68864209e5c",
              "action": "create", "message": null, "project_id": "p",
              "events": [{"finish_time": null, "start_time": "2014-12-11T02:17:50.000000", "traceback": null,
                          "event": "compute_build_and_run_instance", "result": null}]}}
            """
        let action = try decode(InstanceActionEnvelope.self, json).instanceAction
        #expect(action.action == "create")
        #expect(action.events?.first?.finishTime == nil)
        #expect(action.startDate == Date(timeIntervalSince1970: 1_418_264_269))
    }

    @Test func timestampsInEverySeedFormat() {
        #expect(ECSTimestamp.parse("2019-05-22T07:48:53Z") == Date(timeIntervalSince1970: 1_558_511_333))
        #expect(ECSTimestamp.parse("2016-04-25T20:04:47.591Z")?.timeIntervalSince1970 == 1_461_614_687.591)
        #expect(ECSTimestamp.parse("2019-05-22T07:48:19.000000") == Date(timeIntervalSince1970: 1_558_511_299))
        #expect(ECSTimestamp.parse("2019-02-13T06:52:13.855000Z") != nil)
        #expect(ECSTimestamp.parse("2018-01-17T11:03:32+08:00") == ECSTimestamp.parse("2018-01-17T03:03:32Z"))
        #expect(ECSTimestamp.parse("yesterday") == nil)
        #expect(ECSTimestamp.parse("2019-13-22T07:48:53Z") == nil)
    }

    @Test func batchActionBodies() throws {
        func body(_ action: BatchServerAction) throws -> String {
            String(decoding: try ECSClient.encoder.encode(BatchActionBody(action: action, servers: [ServerIdentifier(id: "a")])), as: UTF8.self)
        }
        #expect(try body(.start) == #"{"os-start":{"servers":[{"id":"a"}]}}"#)
        #expect(try body(.stop(.hard)) == #"{"os-stop":{"servers":[{"id":"a"}],"type":"HARD"}}"#)
        #expect(try body(.reboot(.soft)) == #"{"reboot":{"servers":[{"id":"a"}],"type":"SOFT"}}"#)
    }
}
