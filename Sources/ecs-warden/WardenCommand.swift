import ArgumentParser
import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import WardenCore
import WardenDaemon

/// `ecs-warden`: the controller daemon for Huawei Cloud ECS fleets, and its tools.
@main
struct WardenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ecs-warden",
        abstract: "A controller daemon for Huawei Cloud ECS fleets: quota watch, stuck-task detection, tag-based auto-stop/start, flavor sold-out tracking.",
        version: WardenRuntime.version,
        subcommands: [Run.self, Demo.self, CheckConfig.self, ScheduleCommand.self, Ctl.self])
}

/// Sets up journald-friendly logging once, in the executable only.
func bootstrapLogging(level: String, json: Bool) -> Logger {
    let parsed = Logger.Level(rawValue: level) ?? .info
    LoggingSystem.bootstrap { label in JournalLogHandler(label: label, level: parsed, json: json) }
    return Logger(label: "ecs-warden")
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the daemon.",
        discussion: """
            Loads the configuration, opens the state store under state_dir, binds the metrics and \
            control listeners and runs the loops until SIGTERM. SIGHUP reloads the configuration \
            (an invalid one is rejected and the old one stays). Secrets come from files (mode 0600), \
            the environment or systemd credentials, never from the command line.
            """)

    @Option(name: .shortAndLong, help: "The configuration file (YAML).") var config: String
    @Flag(help: "Run one pass of every loop, print a summary and exit (non-zero when a loop failed).") var once = false
    @Flag(help: "Plan and journal actions, but make no mutating API call.") var dryRun = false
    @Option(help: "Log level (trace, debug, info, notice, warning, error, critical).") var logLevel = "info"
    @Flag(help: "Log one JSON object per line.") var jsonLogs = false

    func run() async throws {
        let logger = bootstrapLogging(level: logLevel, json: jsonLogs)
        let code = once
            ? await DaemonRunner.runOnce(configPath: config, dryRun: dryRun, logger: logger)
            : await DaemonRunner.run(configPath: config, dryRun: dryRun, logger: logger)
        if code != 0 { throw ExitCode(code) }
    }
}

struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the daemon against an embedded simulated region, with a scripted scenario.",
        discussion: """
            Starts a simulated ECS region (2 projects × 24 servers) and the real daemon against it. \
            Within a minute every loop acts: a quota threshold is crossed, a stuck job and a stuck \
            server are reported, tagged servers are stopped at a schedule boundary a minute ahead, \
            and a flavor goes sold out in one AZ and comes back. Watch /metrics and the control API.
            """)

    @Option(help: "Port of /metrics (0 picks a free one).") var metricsPort = 9464
    @Option(help: "Port of the control API (0 picks a free one).") var controlPort = 9465
    @Option(help: "Stop after this many seconds (default: run until Ctrl-C).") var duration: Double?
    @Option(help: "Seconds until the demo schedule's stop boundary (rounded up to a whole minute).") var boundaryIn: Double = 60
    @Option(help: "Log level.") var logLevel = "notice"

    func run() async throws {
        let logger = bootstrapLogging(level: logLevel, json: false)
        let code = await DemoRunner.run(
            options: DemoRunner.Options(metricsPort: metricsPort, controlPort: controlPort, duration: duration, boundaryDelay: boundaryIn), logger: logger)
        if code != 0 { throw ExitCode(code) }
    }
}

struct CheckConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate a configuration file and explain every problem (file:line:column: field: why).")

    @Argument(help: "The configuration file.") var file: String
    @Flag(help: "Also read every secret (files, environment, credentials) to check it is there.") var secrets = false

    func run() async throws {
        do {
            let configuration = try ConfigLoader.load(path: file)
            if secrets {
                let resolver = SecretResolver()
                for account in configuration.accounts {
                    switch account.credentials {
                    case .accessKey(let ak, let sk, let token):
                        _ = try resolver.resolve(ak)
                        _ = try resolver.resolve(sk)
                        if let token { _ = try resolver.resolve(token) }
                    case .iamPassword(_, _, _, let password):
                        _ = try resolver.resolve(password)
                    }
                }
                if let token = configuration.controlToken { _ = try resolver.resolve(token) }
            }
            print("\(file): OK — \(configuration.projects.count) projects, \(configuration.regions.count) regions, \(configuration.settings.schedules.count) schedules")
        } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            throw ExitCode(2)
        }
    }
}

struct ScheduleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedule", abstract: "Schedule tools.", subcommands: [Preview.self])

    struct Preview: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the actions the real planner would take over the next hours (reads servers and the daemon's state, changes nothing).")

        @Option(name: .shortAndLong, help: "The configuration file.") var config: String
        @Option(help: "How many hours ahead.") var hours: Double = 24

        func run() async throws {
            let logger = bootstrapLogging(level: "error", json: false)
            do {
                let configuration = try ConfigLoader.load(path: config)
                // The daemon's own store, read-only: the journal's holds and marks are the real ones.
                let store = try SQLiteStateStore.openReadOnly(directory: configuration.stateDirectory) ?? SQLiteStateStore.inMemory()
                let runtime = try WardenRuntime(configuration: configuration, store: store, logger: logger)
                defer { Task { await runtime.shutdown() } }
                let steps = try await runtime.scheduler.preview(now: Date(), hours: hours)
                let formatter = ISO8601DateFormatter()
                for step in steps {
                    for batch in step.batches {
                        print("\(formatter.string(from: step.at))  \(batch.action.rawValue.uppercased())  \(batch.serverIds.count) servers  schedule \(batch.schedule)  project \(batch.project)\(batch.dryRun ? "  (dry-run)" : "")")
                    }
                    for skip in step.skips { print("  left alone: \(skip.project)/\(skip.serverId): \(skip.reason) — \(skip.detail)") }
                }
                if steps.allSatisfy({ $0.batches.isEmpty }) { print("no action in the next \(hours) hours") }
                await runtime.shutdown()
            } catch {
                FileHandle.standardError.write(Data("\(error)\n".utf8))
                throw ExitCode(1)
            }
        }
    }
}

struct Ctl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Talk to a running daemon's control API.",
        discussion: """
            Commands: status, loops, run LOOP, pause LOOP, resume LOOP, quotas, flavors [AZ], \
            launchable AZ, stuck, schedules, plan [HOURS], snoozes, snooze PROJECT SERVER UNTIL, \
            unsnooze PROJECT SERVER, watch-job PROJECT JOB, journal [SINCE], reload. \
            Mutating commands read the bearer token from --token-file or $ECS_WARDEN_TOKEN_FILE.
            """)

    @Option(help: "The control API's URL.") var url = "http://127.0.0.1:9465"
    @Option(help: "A file holding the bearer token (mode 0600).") var tokenFile: String?
    @Argument(help: "The command and its arguments.") var words: [String]

    func run() async throws {
        guard let command = words.first else { throw ValidationError("name a command; see --help") }
        let args = Array(words.dropFirst())
        func arg(_ index: Int, _ name: String) throws -> String {
            guard index < args.count else { throw ValidationError("\(command) needs \(name)") }
            return args[index]
        }
        let request: (method: HTTPMethod, path: String, body: [String: String]?)
        switch command {
        case "status": request = (.GET, "/v1/status", nil)
        case "loops": request = (.GET, "/v1/loops", nil)
        case "run": request = (.POST, "/v1/loops/\(try arg(0, "a loop name"))/run?wait=true", nil)
        case "pause": request = (.POST, "/v1/loops/\(try arg(0, "a loop name"))/pause", nil)
        case "resume": request = (.POST, "/v1/loops/\(try arg(0, "a loop name"))/resume", nil)
        case "quotas": request = (.GET, "/v1/quotas", nil)
        case "flavors": request = (.GET, "/v1/flavors" + (args.first.map { "?az=\($0)" } ?? ""), nil)
        case "launchable": request = (.GET, "/v1/flavors/launchable?az=\(try arg(0, "an AZ"))", nil)
        case "stuck": request = (.GET, "/v1/stuck", nil)
        case "schedules": request = (.GET, "/v1/schedules", nil)
        case "plan": request = (.GET, "/v1/plan?hours=\(args.first ?? "24")", nil)
        case "snoozes": request = (.GET, "/v1/snoozes", nil)
        case "snooze":
            request = (.POST, "/v1/snoozes", ["project": try arg(0, "a project"), "serverId": try arg(1, "a server id"), "until": try arg(2, "a time")])
        case "unsnooze": request = (.DELETE, "/v1/snoozes/\(try arg(0, "a project"))/\(try arg(1, "a server id"))", nil)
        case "watch-job": request = (.POST, "/v1/jobs", ["project": try arg(0, "a project"), "jobId": try arg(1, "a job id")])
        case "journal": request = (.GET, "/v1/journal?since=\(args.first ?? "0")", nil)
        case "reload": request = (.POST, "/v1/reload", nil)
        default: throw ValidationError("unknown command \(command); see --help")
        }
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        var http = HTTPClientRequest(url: url + request.path)
        http.method = request.method
        if request.method != .GET {
            if let path = tokenFile ?? ProcessInfo.processInfo.environment["ECS_WARDEN_TOKEN_FILE"] {
                let token = try SecretResolver().resolve(.file(path))
                http.headers.add(name: "Authorization", value: "Bearer \(token)")
            }
        }
        if let body = request.body {
            http.headers.add(name: "Content-Type", value: "application/json")
            http.body = .bytes(ByteBuffer(bytes: Array(try JSONSerialization.data(withJSONObject: body))))
        }
        do {
            let response = try await client.execute(http, timeout: .seconds(120))
            let bytes = try await response.body.collect(upTo: 64 << 20)
            let data = Data(bytes.readableBytesView)
            if let object = try? JSONSerialization.jsonObject(with: data),
                let pretty = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            {
                print(String(decoding: pretty, as: UTF8.self))
            } else {
                print(String(decoding: data, as: UTF8.self))
            }
            try? await client.shutdown()
            if response.status.code >= 400 { throw ExitCode(1) }
        } catch let error as ExitCode {
            throw error
        } catch {
            try? await client.shutdown()
            FileHandle.standardError.write(Data("ecs-warden ctl: \(url): \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
