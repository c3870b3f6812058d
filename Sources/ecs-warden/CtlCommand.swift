import ArgumentParser
import Foundation
import WardenCore
import WardenCtl
import WardenDaemon
import WardenHTTP

/// `ecs-warden ctl`: a client of a running daemon's control API. Tables for people by default,
/// `-o json` for scripts. Exit codes: 0 ok, 1 refused or failed call, 2 usage, 3 daemon unreachable.
struct Ctl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Talk to a running daemon's control API.",
        discussion: """
            Human-readable tables by default (colour and bars on a terminal only; NO_COLOR is \
            respected), -o json for scripts. Mutating commands read the bearer token from \
            --token-file or $ECS_WARDEN_TOKEN_FILE. Exit codes: 0 ok, 1 the daemon refused or \
            failed the call, 2 usage, 3 the daemon could not be reached.
            """,
        subcommands: [
            CtlStatus.self, CtlLoops.self, CtlRun.self, CtlPause.self, CtlResume.self, CtlQuotas.self, CtlFlavors.self, CtlLaunchable.self,
            CtlStuck.self, CtlSchedules.self, CtlPlan.self, CtlSnoozes.self, CtlSnooze.self, CtlUnsnooze.self, CtlWatchJob.self, CtlJournal.self,
            CtlReload.self, CtlPreflight.self, CtlSavings.self, CtlCluster.self,
        ])
}

/// The options every `ctl` command takes.
struct CtlOptions: ParsableArguments {
    enum Output: String, ExpressibleByArgument, CaseIterable {
        case table, json
    }

    @Option(help: "The control API: http://HOST:PORT or unix:/path/to/socket.") var url = "http://127.0.0.1:9465"
    @Option(help: "A file holding the bearer token (mode 0600); default $ECS_WARDEN_TOKEN_FILE.") var tokenFile: String?
    @Option(name: .shortAndLong, help: "table (for people) or json (for scripts).") var output: Output = .table

    /// Sends the request and prints the answer (a table made by `render`, or the JSON).
    func call(_ request: CtlRequest, print printing: Bool = true, render: (Data, TerminalStyle) throws -> String) async throws {
        do {
            var token: String?
            if request.isMutating, let path = tokenFile ?? ProcessInfo.processInfo.environment["ECS_WARDEN_TOKEN_FILE"] {
                token = try SecretResolver().resolve(.file(path))
            }
            let data = try await CtlClient(url: url, token: token).send(request)
            let text = output == .json ? CtlDecoding.prettyJSON(data) : try render(data, TerminalStyle.detect())
            if printing { print(text) }
        } catch let error as CtlError {
            FileHandle.standardError.write(Data("ecs-warden ctl: \(error)\n".utf8))
            throw ExitCode(error.exitCode)
        } catch let error as SecretResolver.Failure {
            FileHandle.standardError.write(Data("ecs-warden ctl: \(error)\n".utf8))
            throw ExitCode(2)
        }
    }
}

/// `--watch` for the views that change: redraw every few seconds until Ctrl-C.
struct WatchOptions: ParsableArguments {
    @Flag(help: "Redraw every --interval seconds until interrupted.") var watch = false
    @Option(help: "Seconds between redraws with --watch.") var interval: Double = 2

    func repeating(_ body: () async throws -> Void) async throws {
        guard watch else { return try await body() }
        guard interval >= 0.5 else { throw ValidationError("--interval must be at least 0.5") }
        let clear = isatty(STDOUT_FILENO) == 1 ? "\u{1B}[H\u{1B}[2J" : "\n"
        while true {
            print(clear, terminator: "")
            try await body()
            try await Task.sleep(for: .milliseconds(Int(interval * 1000)))
        }
    }
}

struct CtlStatus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "The daemon's version, health and loops.")
    @OptionGroup var options: CtlOptions
    @OptionGroup var watching: WatchOptions

    func run() async throws {
        try await watching.repeating {
            try await options.call(CtlRequest(.get, ["status"])) { data, style in
                LoopsRendering.status(try CtlDecoding.decode(StatusView.self, from: data), style: style, now: Date())
            }
        }
    }
}

struct CtlLoops: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "loops", abstract: "Every loop: state, last pass, duration, next pass, summary.")
    @OptionGroup var options: CtlOptions

    func run() async throws {
        try await options.call(CtlRequest(.get, ["loops"])) { data, style in
            LoopsRendering.loops(try CtlDecoding.decode([LoopView].self, from: data), style: style, now: Date())
        }
    }
}

/// Names a loop, checked against the registry.
struct LoopArgument: ParsableArguments {
    @Argument(help: ArgumentHelp("The loop.", valueName: LoopName.allCases.map(\.rawValue).joined(separator: "|"))) var loop: String

    func validate() throws {
        guard LoopName(rawValue: loop) != nil else {
            throw ValidationError("unknown loop '\(loop)'; one of \(LoopName.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }
}

extension JournalEntry.Kind: ExpressibleByArgument {}

/// One line for a mutating call's answer (`{"loop": …, "status": …}` and the like).
func summaryLine(_ data: Data) -> String {
    guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return String(decoding: data, as: UTF8.self) }
    return object.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
}

struct CtlRun: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Run a loop's pass now and wait for its outcome.")
    @OptionGroup var options: CtlOptions
    @OptionGroup var loop: LoopArgument

    func run() async throws {
        try await options.call(CtlRequest(.post, ["loops", loop.loop, "run"], query: [("wait", "true")])) { data, _ in summaryLine(data) }
    }
}

struct CtlPause: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pause", abstract: "Pause a loop (the jobs loop cannot be paused).")
    @OptionGroup var options: CtlOptions
    @OptionGroup var loop: LoopArgument

    func run() async throws {
        try await options.call(CtlRequest(.post, ["loops", loop.loop, "pause"])) { data, _ in summaryLine(data) }
    }
}

struct CtlResume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "resume", abstract: "Resume a loop, with a pass right away.")
    @OptionGroup var options: CtlOptions
    @OptionGroup var loop: LoopArgument

    func run() async throws {
        try await options.call(CtlRequest(.post, ["loops", loop.loop, "resume"])) { data, _ in summaryLine(data) }
    }
}

struct CtlQuotas: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "quotas", abstract: "Quota usage per project and resource.")
    @OptionGroup var options: CtlOptions

    func run() async throws {
        try await options.call(CtlRequest(.get, ["quotas"])) { data, style in
            QuotasRendering.render(try CtlDecoding.decode([QuotaWatch.ProjectQuota].self, from: data), style: style, now: Date())
        }
    }
}

struct CtlFlavors: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "flavors", abstract: "Sale states: flavors × AZs.")
    @OptionGroup var options: CtlOptions
    @Option(help: "Only this AZ.") var az: String?
    @Flag(help: "Only sold-out flavors.") var soldOut = false

    func run() async throws {
        var query: [(name: String, value: String)] = []
        if let az { query.append(("az", az)) }
        if soldOut { query.append(("sold_out", "true")) }
        try await options.call(CtlRequest(.get, ["flavors"], query: query)) { data, style in
            FlavorsRendering.render(try CtlDecoding.decode([FlavorSaleTracker.FlavorState].self, from: data), style: style, now: Date())
        }
    }
}

struct CtlLaunchable: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "launchable", abstract: "The flavors that can be launched in an AZ now.")
    @OptionGroup var options: CtlOptions
    @Argument(help: "The AZ.") var az: String

    func run() async throws {
        try await options.call(CtlRequest(.get, ["flavors", "launchable"], query: [("az", az)])) { data, style in
            FlavorsRendering.launchable(try CtlDecoding.decode([FlavorSaleTracker.FlavorState].self, from: data), az: az, style: style)
        }
    }
}

struct CtlStuck: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stuck", abstract: "Stuck jobs and servers, with their age.")
    @OptionGroup var options: CtlOptions
    @OptionGroup var watching: WatchOptions

    func run() async throws {
        try await watching.repeating {
            try await options.call(CtlRequest(.get, ["stuck"])) { data, style in
                StuckRendering.render(try CtlDecoding.decode(StuckTaskDetector.Snapshot.self, from: data), style: style)
            }
        }
    }
}

struct CtlSchedules: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "schedules", abstract: "The schedules, their next boundary and their servers.")
    @OptionGroup var options: CtlOptions

    func run() async throws {
        try await options.call(CtlRequest(.get, ["schedules"])) { data, style in
            SchedulesRendering.render(try CtlDecoding.decode([ScheduleView].self, from: data), style: style, now: Date())
        }
    }
}

struct CtlPlan: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "plan", abstract: "What the scheduler will do over the next hours, with server names.")
    @OptionGroup var options: CtlOptions
    @OptionGroup var watching: WatchOptions
    @Option(help: "How many hours ahead (up to 744).") var hours: Double = 24

    func validate() throws {
        guard hours > 0, hours <= 744 else { throw ValidationError("--hours must be between 0 and 744") }
    }

    func run() async throws {
        try await watching.repeating {
            try await options.call(CtlRequest(.get, ["plan"], query: [("hours", String(format: "%g", hours))])) { data, style in
                PlanRendering.render(try CtlDecoding.decode([PlanStepView].self, from: data), hours: hours, style: style, now: Date())
            }
        }
    }
}

struct CtlSnoozes: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "snoozes", abstract: "Snoozes in force.")
    @OptionGroup var options: CtlOptions

    func run() async throws {
        try await options.call(CtlRequest(.get, ["snoozes"])) { data, style in
            SchedulesRendering.snoozes(try CtlDecoding.decode([SnoozeView].self, from: data), style: style, now: Date())
        }
    }
}

struct CtlSnooze: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "snooze", abstract: "Leave a server alone until a time.")
    @OptionGroup var options: CtlOptions
    @Argument(help: "The project (name or id).") var project: String
    @Argument(help: "The server id.") var server: String
    @Argument(help: "Until: 2026-11-24T08:00:00Z or 20261124T0800Z.") var until: String
    @Option(help: "Why (at most 256 characters).") var reason: String?

    func run() async throws {
        var body = ["project": project, "serverId": server, "until": until]
        if let reason { body["reason"] = reason }
        try await options.call(CtlRequest(.post, ["snoozes"], body: body)) { data, _ in summaryLine(data) }
    }
}

struct CtlUnsnooze: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "unsnooze", abstract: "Remove a snooze.")
    @OptionGroup var options: CtlOptions
    @Argument(help: "The project.") var project: String
    @Argument(help: "The server id.") var server: String

    func run() async throws {
        try await options.call(CtlRequest(.delete, ["snoozes", project, server])) { data, _ in summaryLine(data) }
    }
}

struct CtlWatchJob: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "watch-job", abstract: "Follow a job started outside the daemon.")
    @OptionGroup var options: CtlOptions
    @Argument(help: "The project.") var project: String
    @Argument(help: "The job id.") var job: String

    func run() async throws {
        try await options.call(CtlRequest(.post, ["jobs"], body: ["project": project, "jobId": job])) { data, _ in summaryLine(data) }
    }
}

struct CtlJournal: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "journal", abstract: "Journal entries after a sequence number.")
    @OptionGroup var options: CtlOptions
    @Option(help: "Entries after this sequence number.") var since: Int64 = 0
    @Option(help: "At most this many.") var limit = 100
    @Option(help: "Only this kind: intent, outcome, event or dry_run.") var kind: JournalEntry.Kind?

    func run() async throws {
        var query: [(name: String, value: String)] = [("since", "\(since)"), ("limit", "\(limit)")]
        if let kind { query.append(("kind", kind.rawValue)) }
        try await options.call(CtlRequest(.get, ["journal"], query: query)) { data, style in
            JournalRendering.render(try CtlDecoding.decode([JournalEntry].self, from: data), style: style)
        }
    }
}

struct CtlReload: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "reload", abstract: "Reload the configuration (an invalid one is refused; the old one stays).")
    @OptionGroup var options: CtlOptions

    func run() async throws {
        try await options.call(CtlRequest(.post, ["reload"])) { data, _ in summaryLine(data) }
    }
}

struct CtlPreflight: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "preflight", abstract: "Can N servers of a flavor be launched now? Per AZ, with the reasons and the alternatives (read-only).")
    @OptionGroup var options: CtlOptions
    @Option(help: "The project (name or id).") var project: String
    @Option(help: "The flavor id.") var flavor: String
    @Option(help: "One AZ (default: every AZ of the region).") var az: String?
    @Option(help: "How many servers.") var count: Int = 1
    @Option(help: "Scheduled starts within this many hours are taken into account.") var hours: Double = 8
    @Flag(help: "Assume the cloud does not count stopped servers in its quota (the reference does not say).") var stoppedUncounted = false

    func validate() throws {
        guard (1...1000).contains(count) else { throw ValidationError("--count must be between 1 and 1000") }
    }

    func run() async throws {
        let question = LaunchPreflight.Request(
            project: project, flavor: flavor, az: az, count: count, hours: hours, stoppedServersCounted: stoppedUncounted ? false : nil)
        try await options.call(try CtlRequest(.post, ["preflight"], json: question)) { data, style in
            PreflightRendering.render(try CtlDecoding.decode(LaunchPreflight.Answer.self, from: data), style: style)
        }
    }
}

struct CtlCluster: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster", abstract: "Cluster mode: the nodes, every shard's lease (holder, epoch, expiry) and the recent handovers.")
    @OptionGroup var options: CtlOptions
    @OptionGroup var watching: WatchOptions

    func run() async throws {
        try await watching.repeating {
            try await options.call(CtlRequest(.get, ["cluster"])) { data, style in
                ClusterRendering.render(try CtlDecoding.decode(ClusterStatus.self, from: data), style: style, now: Date())
            }
        }
    }
}

struct CtlSavings: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "savings", abstract: "What the schedules saved: server-, vCPU- and RAM-hours stopped, per schedule, last day / week / month.")
    @OptionGroup var options: CtlOptions

    func run() async throws {
        let now = Date()
        let formatter = ISO8601DateFormatter()
        let periods: [(String, TimeInterval)] = [("DAY", 86_400), ("WEEK", 7 * 86_400), ("MONTH", 30 * 86_400)]
        if options.output == .json {
            try await options.call(CtlRequest(.get, ["savings"], query: [("since", formatter.string(from: now.addingTimeInterval(-30 * 86_400)))])) { _, _ in "" }
            return
        }
        var collected: [(label: String, totals: [SavingsTotal])] = []
        for (label, span) in periods {
            var totals: [SavingsTotal] = []
            try await options.call(CtlRequest(.get, ["savings"], query: [("since", formatter.string(from: now.addingTimeInterval(-span)))]), print: false) { data, _ in
                totals = try CtlDecoding.decode(SavingsView.self, from: data).totals
                return ""
            }
            collected.append((label, totals))
        }
        print(SavingsRendering.render(collected, style: TerminalStyle.detect()))
    }
}
