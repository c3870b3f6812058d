import Foundation
import Testing
import WardenCore
import WardenHTTP

@testable import WardenCtl

/// `ctl`'s tables at a fixed width against golden files, from answers captured from the demo
/// (`Fixtures/`). Regenerate with `UPDATE_GOLDEN=1 swift test --filter CtlRenderingTests` and
/// review the diff.
@Suite struct CtlRenderingTests {
    static let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    /// The fixtures were captured at 13:45:00 of the demo.
    static let now = ISO8601DateFormatter().date(from: "2026-11-30T13:45:10Z") ?? Date()

    func fixture(_ name: String) throws -> Data {
        try Data(contentsOf: Self.here.appendingPathComponent("Fixtures/\(name).json"))
    }

    func expectGolden(_ name: String, _ text: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let url = Self.here.appendingPathComponent("Golden/\(name).txt")
        if ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] == "1" {
            try (text + "\n").write(to: url, atomically: true, encoding: .utf8)
            return
        }
        let golden = try String(contentsOf: url, encoding: .utf8)
        #expect(text + "\n" == golden, "\(name) differs from its golden file", sourceLocation: sourceLocation)
        // A table never runs past its width.
        for line in text.split(separator: "\n") { #expect(line.count <= 100, "\(name): a line of \(line.count) characters", sourceLocation: sourceLocation) }
    }

    let plain = TerminalStyle.plain(width: 100)

    @Test func status() throws {
        try expectGolden("status", LoopsRendering.status(try CtlDecoding.decode(StatusView.self, from: try fixture("status")), style: plain, now: Self.now))
    }

    @Test func quotas() throws {
        let quotas = try CtlDecoding.decode([QuotaWatch.ProjectQuota].self, from: try fixture("quotas"))
        try expectGolden("quotas", QuotasRendering.render(quotas, style: plain, now: Self.now))
        // On a terminal: bar glyphs and colour, the critical row in red.
        let tty = QuotasRendering.render(quotas, style: TerminalStyle(color: true, glyphs: true, width: 100), now: Self.now)
        #expect(tty.contains("█") && tty.contains("\u{1B}[31mcritical\u{1B}[0m"))
        #expect(!QuotasRendering.render(quotas, style: plain, now: Self.now).contains("\u{1B}"))
    }

    @Test func flavors() throws {
        try expectGolden("flavors", FlavorsRendering.render(try CtlDecoding.decode([FlavorSaleTracker.FlavorState].self, from: try fixture("flavors")), style: plain, now: Self.now))
    }

    @Test func stuck() throws {
        try expectGolden("stuck", StuckRendering.render(try CtlDecoding.decode(StuckTaskDetector.Snapshot.self, from: try fixture("stuck")), style: plain))
    }

    @Test func plan() throws {
        try expectGolden("plan", PlanRendering.render(try CtlDecoding.decode([PlanStepView].self, from: try fixture("plan")), hours: 24, style: plain, now: Self.now))
    }

    @Test func journal() throws {
        try expectGolden("journal", JournalRendering.render(try CtlDecoding.decode([JournalEntry].self, from: try fixture("journal")), style: plain))
    }

    @Test func schedules() throws {
        try expectGolden("schedules", SchedulesRendering.render(try CtlDecoding.decode([ScheduleView].self, from: try fixture("schedules")), style: plain, now: Self.now))
    }

    @Test func cluster() throws {
        try expectGolden("cluster", ClusterRendering.render(try CtlDecoding.decode(ClusterStatus.self, from: try fixture("cluster")), style: plain, now: Self.now))
    }

    @Test func clusterJournalShowsNodeAndEpoch() {
        let fence = ShardFence(shard: .project("p1"), node: "warden-a", epoch: 3)
        let entries = [
            JournalEntry(at: Self.now, kind: .intent, loop: "schedule", project: "p1", action: "stop", result: .pending, message: "stop 2 servers", fence: fence),
            JournalEntry(at: Self.now, kind: .event, loop: "quota", project: "p1", action: "threshold-crossed", message: "cores above warning"),
        ]
        let text = JournalRendering.render(entries, style: plain)
        #expect(text.contains("NODE/EPOCH"))
        #expect(text.contains("warden-a/3"))
        #expect(!JournalRendering.render([entries[1]], style: plain).contains("NODE/EPOCH"))
    }

    @Test func jsonForScriptsIsStable() throws {
        let text = CtlDecoding.prettyJSON(Data(#"{"b":"1/1 regions read","a":[1,2]}"#.utf8))
        #expect(text.contains(#""1/1 regions read""#))
        #expect(text.firstRange(of: "\"a\"")!.lowerBound < text.firstRange(of: "\"b\"")!.lowerBound)
    }

    @Test func styleFollowsTheTerminalAndNoColor() {
        #expect(TerminalStyle.plain().bar(0.5) == "[#####.....]")
        #expect(TerminalStyle(color: false, glyphs: true, width: 80).bar(0.5) == "█████░░░░░")
        #expect(TerminalStyle.plain().paint("x", .red) == "x")
        // Standard output is not a terminal under `swift test`: no colour, no glyphs.
        let detected = TerminalStyle.detect(environment: ["COLUMNS": "120"])
        #expect(detected.color == false && detected.glyphs == false && detected.width == 120)
    }
}

/// Paths and query values are percent-encoded; a server id with odd characters round-trips.
@Suite struct CtlRequestTests {
    @Test func segmentsAndQueryValuesAreEncoded() {
        let request = CtlRequest(.delete, ["snoozes", "shop prod", "web/1?#%é"])
        #expect(request.target == "/v1/snoozes/shop%20prod/web%2F1%3F%23%25%C3%A9")
        let query = CtlRequest(.get, ["flavors", "launchable"], query: [("az", "eu-west-0a&x=1")])
        #expect(query.target == "/v1/flavors/launchable?az=eu-west-0a%26x%3D1")
        #expect(CtlPercentEncoding.encode("AZaz09-._~") == "AZaz09-._~")
        #expect(request.isMutating && !query.isMutating)
    }

    @Test func unixSocketURLs() {
        let client = CtlClient(url: "unix:/run/ecs-warden/control.sock", token: nil)
        #expect(client.address(of: CtlRequest(.get, ["status"])) == "http+unix://%2Frun%2Fecs-warden%2Fcontrol.sock/v1/status")
        #expect(CtlClient(url: "http://127.0.0.1:9465/", token: nil).address(of: CtlRequest(.get, ["status"])) == "http://127.0.0.1:9465/v1/status")
    }

    @Test func exitCodes() {
        #expect(CtlError.refused(status: 409, code: "conflict", message: "no").exitCode == 1)
        #expect(CtlError.unreachable(url: "x", reason: "refused").exitCode == 3)
    }
}
