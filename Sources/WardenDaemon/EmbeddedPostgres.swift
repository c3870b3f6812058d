import Foundation

/// A throw-away PostgreSQL for `ecs-warden demo --cluster`: `initdb` into a temporary directory,
/// started on a free loopback port with `fsync=off`, removed on `stop()` (as the tests do). Needs
/// the server binaries (Debian: `postgresql`); as root it runs them as the `postgres` user, since
/// PostgreSQL refuses to run as root.
struct EmbeddedPostgres: Sendable {
    /// Why the embedded database could not be started, in one line.
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    let directory: String
    let binaries: String
    let port: Int
    let runAsPostgres: Bool

    /// `postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable`.
    var url: String { "postgres://postgres@127.0.0.1:\(port)/postgres?sslmode=disable" }

    /// The newest installed server's `bin` directory.
    static func findBinaries() -> String? {
        let root = "/usr/lib/postgresql"
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return versions.compactMap(Int.init).sorted(by: >).map { "\(root)/\($0)/bin" }
            .first { FileManager.default.isExecutableFile(atPath: "\($0)/initdb") }
    }

    /// Creates and starts a cluster; throws `Failure` saying what is missing or what failed.
    static func start(port: Int) throws -> EmbeddedPostgres {
        guard let binaries = findBinaries() else {
            throw Failure(description: "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): install it (apt-get install postgresql) to run the cluster demo")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ecs-warden-demo-pg-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let runAsPostgres = geteuid() == 0
        if runAsPostgres {
            guard let user = getpwnam("postgres") else {
                throw Failure(description: "running as root, PostgreSQL needs the 'postgres' user, which does not exist")
            }
            chown(directory, user.pointee.pw_uid, user.pointee.pw_gid)
        }
        let database = EmbeddedPostgres(directory: directory, binaries: binaries, port: port, runAsPostgres: runAsPostgres)
        try database.run("initdb", ["-D", "\(directory)/data", "-A", "trust", "-U", "postgres", "--no-sync"])
        try database.run(
            "pg_ctl",
            ["-D", "\(directory)/data", "-l", "\(directory)/server.log", "-w", "-o",
             "-c listen_addresses=127.0.0.1 -p \(port) -c fsync=off -c synchronous_commit=off -k \(directory)", "start"])
        return database
    }

    /// Stops the server at once and removes its directory.
    func stop() {
        try? run("pg_ctl", ["-D", "\(directory)/data", "-m", "immediate", "-w", "stop"])
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Runs a tool to its end, its output in a file. `posix_spawn` and `waitpid`, not Foundation's
    /// `Process`: the server that `pg_ctl start` leaves running inherits descriptors, and
    /// `Process` would not see `pg_ctl` end until the server does.
    private func run(_ tool: String, _ arguments: [String]) throws {
        let executable = runAsPostgres ? "/usr/sbin/runuser" : "\(binaries)/\(tool)"
        let argv = [executable] + (runAsPostgres ? ["-u", "postgres", "--", "\(binaries)/\(tool)"] : []) + arguments
        let outputPath = "\(directory)/\(tool).out"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        var cArguments = argv.map { strdup($0) }
        defer { cArguments.forEach { free($0) } }
        cArguments.append(nil)
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, nil, cArguments, environ)
        guard spawned == 0 else { throw Failure(description: "cannot run \(tool): \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        let exited = (status & 0x7f) == 0
        let code = (status >> 8) & 0xff
        guard exited && code == 0 else {
            let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
            let last = text.split(whereSeparator: \.isNewline).last.map(String.init) ?? "exit \(code)"
            throw Failure(description: "\(tool) failed: \(last)")
        }
    }

    /// A TCP port nobody listens on now (bound to port 0 and released).
    static func freePort() -> Int? {
        let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { return nil }
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { Foundation.bind(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { return nil }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) }
        }
        guard named == 0 else { return nil }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
