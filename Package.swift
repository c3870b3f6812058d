// swift-tools-version:6.1
import PackageDescription

/// How release builds of the daemon are linked on Linux (what the package ships and the benchmark
/// measures; debug builds and tests are linked as SwiftPM does):
/// - lld, with relative relocations packed (`DT_RELR`, glibc ≥ 2.36): ~150,000 of them in 30 KB
///   instead of 3.5 MB of `.rela.dyn` read at every start;
/// - no `--export-dynamic` (which the toolchain's static-stdlib link arguments add; this flag comes
///   after them): the package's own 58,000 symbols are not exported (5 MB of dynamic symbol tables
///   the loader searched). A crash backtrace of the stripped packaged binary shows addresses; the
///   unstripped `.build-static/release/ecs-warden` names them;
/// - the functions a pass runs first and together (`packaging/ecs-warden.symbol-order`, written by
///   `Benchmarks/link-order.sh` from callgrind runs): the 35 MB of code is mapped page by page as
///   it runs, and scattered it came in nearly whole. Names the build no longer has are skipped.
///   SwiftPM does not track the file: after regenerating it, relink (touch a source of the target).
/// Together: file-backed peak of a 100 x 1,000 pass 37 MB -> 23 MB (`Benchmarks/warden-bench.sh`).
let daemonReleaseLinking: [LinkerSetting] = [
    .unsafeFlags(
        [
            "-use-ld=lld",
            "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs",
            "-Xlinker", "--no-export-dynamic",
            "-Xlinker", "--symbol-ordering-file=\(Context.packageDirectory)/packaging/ecs-warden.symbol-order",
            "-Xlinker", "--no-warn-symbol-ordering",
        ],
        .when(platforms: [.linux], configuration: .release))
]

let package = Package(
    name: "ecs-warden",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "ECSSigning", targets: ["ECSSigning"]),
        .library(name: "ECSAPI", targets: ["ECSAPI"]),
        .library(name: "ECSSimulator", targets: ["ECSSimulator"]),
        .library(name: "WardenCore", targets: ["WardenCore"]),
        .executable(name: "ecs-warden", targets: ["ecs-warden"]),
        .executable(name: "ecs-sim", targets: ["ecs-sim"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        /// SDK-HMAC-SHA256 request signing and verification; depends on swift-crypto only.
        .target(
            name: "ECSSigning",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")]
        ),
        /// Typed async client of the ECS API.
        .target(
            name: "ECSAPI",
            dependencies: [
                "ECSSigning",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        /// A simulated ECS region behind an HTTP server. Does not depend on ECSAPI: its own wire
        /// types, so an encoding mistake on one side is caught by the other.
        .target(
            name: "ECSSimulator",
            dependencies: [
                "ECSSigning",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        /// The controller: reconcile loops, planners, the state store and metrics. No HTTP server.
        .target(
            name: "WardenCore",
            dependencies: [
                "ECSAPI",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        /// Cluster mode: the PostgreSQL state store (same contract as SQLite), shard leases with
        /// epochs, renewal and self-fencing deadlines.
        .target(
            name: "WardenPostgres",
            dependencies: [
                "WardenCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        /// sd_notify over $NOTIFY_SOCKET (a documented datagram protocol; no libsystemd).
        .target(name: "SystemdNotify", dependencies: [.product(name: "ServiceLifecycle", package: "swift-service-lifecycle")]),
        /// /metrics, /healthz, /readyz and the control API (Hummingbird).
        .target(
            name: "WardenHTTP",
            dependencies: [
                "WardenCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        /// The daemon: configuration (YAML, secrets), the runtime that wires the loops, the demo.
        .target(
            name: "WardenDaemon",
            dependencies: [
                "WardenCore", "WardenHTTP", "SystemdNotify", "ECSSimulator", "WardenPostgres",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        /// `ecs-warden ctl`: requests (percent-encoded), the client with exit codes, tables for people.
        .target(
            name: "WardenCtl",
            dependencies: [
                "WardenCore", "WardenHTTP",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "ecs-warden",
            dependencies: [
                "WardenDaemon", "WardenCore", "ECSAPI", "WardenCtl", "WardenHTTP", "WardenPostgres",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            linkerSettings: daemonReleaseLinking
        ),
        .executableTarget(
            name: "ecs-sim",
            dependencies: ["ECSSimulator", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        /// Signs and verifies requests read as JSON lines on stdin: the peer of the official-SDK oracle.
        .executableTarget(
            name: "signing-oracle-peer",
            dependencies: ["ECSSigning"],
            path: "Tests/SigningOracle/Peer"
        ),
        .testTarget(name: "ECSSigningTests", dependencies: ["ECSSigning"]),
        .testTarget(
            name: "WardenCtlTests",
            dependencies: ["WardenCtl", "WardenCore", "WardenHTTP"],
            exclude: ["Fixtures", "Golden"]
        ),
        .testTarget(name: "ECSSimulatorTests", dependencies: ["ECSSimulator", "ECSAPI"]),
        .testTarget(
            name: "WardenDaemonTests",
            dependencies: [
                "WardenDaemon", "WardenCore", "WardenHTTP", "SystemdNotify", "ECSSimulator", "ECSAPI",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "WardenCoreTests",
            dependencies: [
                "WardenCore", "ECSSimulator", "ECSAPI", "WardenPostgres",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "ECSAPITests",
            dependencies: [
                "ECSAPI",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
