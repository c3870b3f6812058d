import AsyncHTTPClient
import ECSAPI
import Foundation
import NIOCore
import NIOHTTP1
import Testing

@testable import ECSSimulator

extension SimHarness {
    /// Calls the scenario-control API (`/_sim/…`) over HTTP; returns the status and the JSON object.
    func admin(_ method: HTTPMethod, _ path: String, _ body: [String: Any]? = nil) async throws -> (status: Int, json: [String: Any]) {
        var request = HTTPClientRequest(url: server.endpoint + "/_sim/" + path)
        request.method = method
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body)))
        }
        let response = try await http.execute(request, timeout: .seconds(10))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        let json = (try? JSONSerialization.jsonObject(with: Data(bytes.readableBytesView))) as? [String: Any] ?? [:]
        return (Int(response.status.code), json)
    }

    /// Sets every fault through `PUT /_sim/faults`, as the soak does.
    func putFaults(_ faults: [String: Any]) async throws -> [String: Any] {
        let (status, json) = try await admin(.PUT, "faults", faults)
        #expect(status == 200, "PUT /_sim/faults \(faults) -> \(status) \(json)")
        return json
    }

    /// The server ids of a job's sub-jobs with the given status.
    static func servers(of job: Job, _ status: JobStatus) -> Set<String> {
        Set(job.subJobs.filter { $0.status == status }.compactMap { $0.entities?.serverId })
    }
}

/// Partial failures of batch start/stop jobs (`failSubJobRate`, `failSubJobServers`,
/// `failSubJobCode`, `failSubJobTimes`), against the simulator over HTTP.
@Suite struct SubJobFailureTests {
    @Test func namedServersFailTheirSubJobsAndStayAsTheyWere() async throws {
        try await SimHarness.with(servers: 40) { sim in
            let active = try await sim.client.serverDetails(ServerQuery(status: "ACTIVE")).collect().prefix(6).map(\.id)
            try #require(active.count == 6)
            let failing = Set(active.prefix(2))
            let echoed = try await sim.putFaults(["failSubJobServers": Array(failing)])
            #expect(echoed["failSubJobCode"] as? String == "Ecs.0603")
            #expect(echoed["failSubJobTimes"] as? Int == 1)
            #expect((echoed["failSubJobRate"] as? NSNumber)?.doubleValue == 0)

            let accepted = try await sim.client.batchAction(.stop(.soft), serverIds: active)
            for id in active {
                let server = try await sim.client.server(id: id)
                if failing.contains(id) {
                    #expect(server.status == .active && server.taskState == nil, "a failed sub-job leaves \(id) untouched")
                } else {
                    #expect(server.taskState == "powering-off")
                }
            }
            let job = try await sim.finish(job: accepted.jobId)
            // The parent of a batch with failed sub-jobs ends FAIL with the first failed one's code.
            #expect(job.status == .fail)
            #expect(job.errorCode == "Ecs.0603")
            #expect(job.failReason == "The commands are being executed. Try again later.")
            #expect(job.entities?.subJobsTotal == 6)
            #expect(SimHarness.servers(of: job, .fail) == failing)
            #expect(SimHarness.servers(of: job, .success) == Set(active).subtracting(failing))
            for subJob in job.failedSubJobs {
                #expect(subJob.errorCode == "Ecs.0603")
                #expect(subJob.failReason == "The commands are being executed. Try again later.")
                #expect(subJob.entities?.errorcodeMessage == subJob.failReason)
                #expect(subJob.jobType == "stopSingleServer")
                #expect(subJob.endDate != nil)
            }
            for subJob in job.subJobs where subJob.status == .success {
                #expect(subJob.errorCode == nil && subJob.failReason == nil && subJob.entities?.errorcodeMessage == nil)
            }
            for id in active {
                #expect(try await sim.client.server(id: id).status == (failing.contains(id) ? .active : .shutoff))
            }
            #expect(try await sim.admin(.GET, "state").json["sub_job_failures_injected"] as? Int == 2)

            // The retry (a new call naming them, the fault still set) succeeds: at most once per server.
            let retry = try await sim.client.batchAction(.stop(.soft), serverIds: Array(failing))
            #expect(try await sim.finish(job: retry.jobId).status == .success)
            for id in failing { #expect(try await sim.client.server(id: id).status == .shutoff) }
        }
    }

    @Test func startSubJobsFailUpToTheConfiguredTimesWithTheConfiguredCode() async throws {
        try await SimHarness.with(servers: 40) { sim in
            let stopped = try await sim.client.serverDetails(ServerQuery(status: "SHUTOFF")).collect().prefix(3).map(\.id)
            try #require(stopped.count == 3)
            let target = stopped[0]
            _ = try await sim.putFaults(["failSubJobServers": [target], "failSubJobTimes": 2, "failSubJobCode": "Ecs.0226"])
            for attempt in 1...2 {
                let accepted = try await sim.client.batchAction(.start, serverIds: attempt == 1 ? stopped : [target])
                let job = try await sim.finish(job: accepted.jobId)
                #expect(job.status == .fail)
                #expect(SimHarness.servers(of: job, .fail) == [target])
                #expect(job.failedSubJobs.first?.errorCode == "Ecs.0226")
                #expect(job.failedSubJobs.first?.failReason == "Failed to start.")
                #expect(job.failedSubJobs.first?.jobType == "startSingleServer")
                #expect(try await sim.client.server(id: target).status == .shutoff)
            }
            for id in stopped.dropFirst() { #expect(try await sim.client.server(id: id).status == .active) }
            let third = try await sim.client.batchAction(.start, serverIds: [target])
            #expect(try await sim.finish(job: third.jobId).status == .success)
            #expect(try await sim.client.server(id: target).status == .active)

            // Reboots are not affected; a changed setting counts afresh; 0 fails every time.
            _ = try await sim.putFaults(["failSubJobServers": [target], "failSubJobTimes": 0])
            let reboot = try await sim.client.batchAction(.reboot(.soft), serverIds: [target])
            #expect(try await sim.finish(job: reboot.jobId).status == .success)
            for _ in 1...3 {
                let stop = try await sim.client.batchAction(.stop(.soft), serverIds: [target])
                let job = try await sim.finish(job: stop.jobId)
                #expect(job.status == .fail && job.errorCode == "Ecs.0603")
            }
            _ = try await sim.putFaults([:])
            let stop = try await sim.client.batchAction(.stop(.soft), serverIds: [target])
            #expect(try await sim.finish(job: stop.jobId).status == .success)
        }
    }

    @Test func aRateFailsThatShareOfEachBatchByServerId() async throws {
        try await SimHarness.with(servers: 400) { sim in
            let active = try await sim.client.serverDetails(ServerQuery(status: "ACTIVE")).collect().map(\.id)
            try #require(active.count >= 100)
            _ = try await sim.putFaults(["failSubJobRate": 0.3])
            let accepted = try await sim.client.batchAction(.stop(.hard), serverIds: active)
            let job = try await sim.finish(job: accepted.jobId)
            let failed = SimHarness.servers(of: job, .fail)
            let share = Double(failed.count) / Double(active.count)
            #expect(share > 0.2 && share < 0.4, "\(failed.count) of \(active.count) failed")
            // Which servers fail is a function of the region's seed and the server id.
            var expected = Set<String>()
            for id in active {
                if await sim.region.subJobFaultDraw(serverId: id) < 0.3 { expected.insert(id) }
            }
            #expect(failed == expected)
            #expect(job.failedSubJobs.allSatisfy { $0.errorCode == "Ecs.0603" })
            for id in failed.prefix(5) { #expect(try await sim.client.server(id: id).status == .active) }

            // The same batch again: the failed servers stop now, the stopped ones succeed at once.
            let again = try await sim.client.batchAction(.stop(.hard), serverIds: active)
            #expect(try await sim.finish(job: again.jobId).status == .success)
            let stillActive = try await sim.client.serverDetails(ServerQuery(status: "ACTIVE")).collect().map(\.id)
            #expect(Set(stillActive).isDisjoint(with: active))
        }
    }

    @Test func invalidSettingsAreRefused() async throws {
        try await SimHarness.with(servers: 1) { sim in
            #expect(try await sim.admin(.PUT, "faults", ["failSubJobRate": 1.5]).status == 400)
            #expect(try await sim.admin(.PUT, "faults", ["failSubJobTimes": -1]).status == 400)
            let faults = try await sim.admin(.GET, "faults").json
            #expect((faults["failSubJobRate"] as? NSNumber)?.doubleValue == 0)
        }
    }
}
