import ArgumentParser
import ECSSimulator
import Foundation

/// `ecs-sim`: a simulated ECS region served over HTTP, for tests, demos and benchmarks.
@main
struct ECSSimCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ecs-sim",
        abstract: "Serve a simulated Huawei Cloud ECS region that speaks the real API's wire format.",
        discussion: """
            The region accepts requests signed with the given access key pair (SDK-HMAC-SHA256) and \
            IAM tokens from POST /v3/auth/tokens for the given user. Scenario control and the request \
            log are under /_sim/ (see docs/simulator.md). Stop it with SIGTERM or SIGINT.
            """)

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0 picks a free one).") var port = 8080
    @Option(help: "Access key (AK) the region accepts.") var accessKey = "SIMACCESSKEY"
    @Option(help: "Secret key (SK) of that access key. A test credential: the simulator holds no real secret.")
    var secretKey = "SIMSECRETKEY"
    @Option(help: "IAM user name accepted at /v3/auth/tokens.") var iamUser = "sim-user"
    @Option(help: "Password of that IAM user.") var iamPassword = "sim-password"
    @Option(help: "The first project id (32 hex characters).") var projectId = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    @Option(help: "Region name; AZs are <region>a, <region>b, <region>c.") var region = "eu-west-0"
    @Option(help: "Number of projects.") var projects = 1
    @Option(help: "Servers generated in each project.") var serversPerProject = 0
    @Option(help: "Number of flavors in the catalogue.") var flavors = 12
    @Option(help: "Share of servers carrying a schedule tag.") var scheduledShare = 0.25
    @Option(help: "Seed of every random choice.") var seed: UInt64 = 1
    @Option(help: "Simulated seconds per real second.") var speed = 1.0

    func run() async throws {
        let configuration = SimRegionConfiguration(
            region: region, accessKeys: [accessKey: secretKey], iamUsers: [iamUser: iamPassword], speed: speed, seed: seed)
        let simulated = SimulatedRegion(configuration: configuration)
        let fleet = FleetGenerator(projects: projects, serversPerProject: serversPerProject, scheduledShare: scheduledShare, flavorCount: flavors, seed: seed)
        let projectIds = await fleet.populate(simulated, firstProjectIds: [projectId])
        let server = try await SimulatorServer.start(region: simulated, host: host, port: port)
        let lines = [
            "ecs-sim listening on \(server.endpoint)",
            "region \(region), AZs \(configuration.availabilityZones.joined(separator: ", "))",
            "access key \(accessKey) (secret key as given), IAM user \(iamUser)",
            "projects \(projectIds.count): \(projectIds.prefix(5).joined(separator: ", "))\(projectIds.count > 5 ? ", …" : "")",
            "servers \(await simulated.serverCount()), flavors \(flavors), speed \(speed)x",
            "admin API \(server.endpoint)/_sim/state",
        ]
        FileHandle.standardOutput.write(Data((lines.joined(separator: "\n") + "\n").utf8))
        await withShutdownSignal {
            await server.shutdown()
        }
        FileHandle.standardOutput.write(Data("ecs-sim stopped\n".utf8))
    }
}

/// Runs `onSignal` at the first SIGTERM or SIGINT and returns after it.
func withShutdownSignal(_ onSignal: @escaping @Sendable () async -> Void) async {
    signal(SIGTERM, SIG_IGN)
    signal(SIGINT, SIG_IGN)
    let (stream, continuation) = AsyncStream<Void>.makeStream()
    let sources = [SIGTERM, SIGINT].map { number -> any DispatchSourceSignal in
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler { continuation.yield() }
        source.resume()
        return source
    }
    for await _ in stream {
        await onSignal()
        break
    }
    withExtendedLifetime(sources) {}
}
