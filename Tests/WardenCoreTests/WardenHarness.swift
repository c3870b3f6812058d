import AsyncHTTPClient
import ECSAPI
import ECSSigning
import ECSSimulator
import Foundation
import Logging
import Testing

@testable import WardenCore

let harnessAK = "WARDENTESTAK"
let harnessSK = "warden-test-secret"
let harnessProject = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"

/// A simulated region on a real HTTP port, a client per project, and a WardenContext over them.
/// The simulator's clock is manual: tests advance it to finish transitions.
final class WardenHarness: Sendable {
    let region: SimulatedRegion
    let server: SimulatorServer
    let http: HTTPClient
    let context: WardenContext
    let projectIds: [String]
    let clock: ManualClock

    static func start(
        projects: Int = 1, servers: Int = 0, settings: WardenSettings = WardenSettings(), store: (any StateStore)? = nil,
        clockStart: Date = Date(timeIntervalSince1970: 1_790_000_000), pageSize: Int = 1000
    ) async throws -> WardenHarness {
        let region = SimulatedRegion(configuration: SimRegionConfiguration(accessKeys: [harnessAK: harnessSK], speed: 0, seed: 11, startTime: clockStart.timeIntervalSince1970))
        let ids = await FleetGenerator(projects: projects, serversPerProject: servers, scheduledShare: 0, seed: 11)
            .populate(region, firstProjectIds: [harnessProject])
        let server = try await SimulatorServer.start(region: region)
        let http = ECSClient.makeHTTPClient()
        let metrics = WardenMetrics()
        let retry = RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(1), maxDelay: .milliseconds(5), busyServerDelay: .milliseconds(5), totalDeadline: .seconds(20))
        let wardenProjects = ids.enumerated().map { index, id in
            WardenProject(
                name: index == 0 ? "main" : "p\(index)", projectId: id, region: "eu-west-0",
                client: ECSClient(
                    configuration: ECSClientConfiguration(
                        endpoint: URL(string: server.endpoint)!, projectId: id, region: "eu-west-0",
                        authentication: .accessKey(AccessKeyCredentials(accessKey: harnessAK, secretKey: harnessSK)), retry: retry, pageSize: pageSize),
                    httpClient: http, observer: { metrics.recordAPI($0) }))
        }
        let clock = ManualClock(start: clockStart)
        var logger = Logger(label: "warden-test")
        logger.logLevel = .critical
        let context = WardenContext(
            settings: settings, projects: wardenProjects, store: try store ?? SQLiteStateStore.inMemory(), metrics: metrics, clock: clock, logger: logger)
        return WardenHarness(region: region, server: server, http: http, context: context, projectIds: ids, clock: clock)
    }

    private init(region: SimulatedRegion, server: SimulatorServer, http: HTTPClient, context: WardenContext, projectIds: [String], clock: ManualClock) {
        self.region = region
        self.server = server
        self.http = http
        self.context = context
        self.projectIds = projectIds
        self.clock = clock
    }

    func stop() async {
        try? await http.shutdown()
        await server.shutdown()
    }

    static func with(
        projects: Int = 1, servers: Int = 0, settings: WardenSettings = WardenSettings(), store: (any StateStore)? = nil,
        clockStart: Date = Date(timeIntervalSince1970: 1_790_000_000), _ body: (WardenHarness) async throws -> Void
    ) async throws {
        let harness = try await start(projects: projects, servers: servers, settings: settings, store: store, clockStart: clockStart)
        do {
            try await body(harness)
        } catch {
            await harness.stop()
            throw error
        }
        await harness.stop()
    }

    var project: String { projectIds[0] }

    /// Adds a server to the first project directly.
    @discardableResult
    func addServer(_ name: String, running: Bool = true, tags: [String: String] = [:], project index: Int = 0) async -> String {
        await region.seedServer(
            projectId: projectIds[index], name: name, flavorId: "s3.small.2", running: running,
            tags: tags.sorted { $0.key < $1.key }.map { SimTag(key: $0.key, value: $0.value) })
    }

    /// The API operations logged since `since`.
    func operations(since: Int = 0) async -> [String] { await region.requests(since: since).map(\.operation) }

    func logCount() async -> Int { await region.requests().count }

    func status(_ serverId: String, project index: Int = 0) async -> String? {
        await region.inspectServer(projectId: projectIds[index], serverId: serverId)?.status
    }

    /// Finishes every transition in the simulator.
    func settle() async { await region.advanceTime(by: 3600) }

    func events(action: String? = nil) async throws -> [JournalEntry] {
        try await context.store.journal(limit: 10_000, kinds: [.event]).filter { action == nil || $0.action == action }
    }
}

/// Builds a UTC date from "2026-11-23T19:00:00Z".
func utc(_ text: String) -> Date {
    ISO8601DateFormatter().date(from: text) ?? Date(timeIntervalSince1970: 0)
}

/// Mon–Fri 08:00–19:00 in Europe/Berlin.
func officeHours(policy: ManualActionPolicy = .boundariesOnly, mode: ScheduleMode = .stopAndStart, dryRun: Bool = false) -> Schedule {
    Schedule(
        name: "office", timeZone: TimeZone(identifier: "Europe/Berlin")!,
        periods: [SchedulePeriod(days: .weekdays(Weekday.workdays), start: MinuteOfDay(hour: 8, minute: 0), stop: MinuteOfDay(hour: 19, minute: 0))],
        skipDates: [], manualPolicy: policy, mode: mode, dryRun: dryRun)
}
