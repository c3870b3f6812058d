import ArgumentParser
import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import WardenCore
import WardenDaemon
import WardenPostgres

/// `ecs-warden`: the controller daemon for Huawei Cloud ECS fleets, and its tools.
@main
struct WardenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ecs-warden",
        abstract: "A controller daemon for Huawei Cloud ECS fleets: quota watch, stuck-task detection, tag-based auto-stop/start, flavor sold-out tracking.",
        version: WardenRuntime.version,
        subcommands: [Run.self, Demo.self, CheckConfig.self, ScheduleCommand.self, Ctl.self])

    /// Runs the command; a usage error exits 2 (the convention scripts expect), not 64.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            if exitCode(for: error) == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }
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
    @Option(
        help: ArgumentHelp(
            "Cluster mode: run this many replicas (2-5) on an embedded PostgreSQL (needs the postgresql package); one is killed with SIGKILL before a boundary.",
            valueName: "replicas")) var cluster: Int?
    @Option(help: "With --cluster: the lease TTL in seconds.") var leaseTtl: Double = 6

    func run() async throws {
        let logger = bootstrapLogging(level: logLevel, json: false)
        if let cluster {
            let code = await ClusterDemoRunner.run(
                options: ClusterDemoRunner.Options(replicas: cluster, leaseTTL: leaseTtl, basePort: metricsPort, duration: duration), logger: logger)
            if code != 0 { throw ExitCode(code) }
            return
        }
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
                if case .postgres(let url) = configuration.stateBackend { _ = try PostgresURL(try resolver.resolve(url)) }
            }
            var state = "SQLite state in \(configuration.stateDirectory)"
            if case .postgres = configuration.stateBackend, let cluster = configuration.cluster {
                state = "cluster mode as node \(cluster.node) (PostgreSQL state, lease TTL \(Int(cluster.leaseTTL)) s)"
            }
            print(
                "\(file): OK — \(configuration.projects.count) projects, \(configuration.regions.count) regions, \(configuration.settings.schedules.count) schedules; \(state)")
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
