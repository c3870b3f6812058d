import ECSAPI
import ECSSigning
import Foundation
import WardenCore
import Yams

/// Where a secret comes from. Never a literal in the configuration file.
public enum SecretSource: Sendable, Equatable, CustomStringConvertible {
    /// A file readable by the daemon's user only (mode 0600 or 0400, checked).
    case file(String)
    /// An environment variable.
    case environment(String)
    /// A systemd credential: `$CREDENTIALS_DIRECTORY/<name>` (`LoadCredential=`).
    case credential(String)

    public var description: String {
        switch self {
        case .file(let path): return "file \(path)"
        case .environment(let name): return "environment variable \(name)"
        case .credential(let name): return "systemd credential \(name)"
        }
    }
}

/// An account's credentials, unresolved (the secrets are read when the runtime starts).
public enum AccountCredentials: Sendable, Equatable {
    case accessKey(accessKey: SecretSource, secretKey: SecretSource, securityToken: SecretSource?)
    case iamPassword(endpoint: URL, user: String, domain: String, password: SecretSource)
}

/// A configured account.
public struct AccountConfiguration: Sendable, Equatable {
    public var name: String
    public var credentials: AccountCredentials
}

/// A configured region: its ECS endpoint and how to talk to it.
public struct RegionConfiguration: Sendable, Equatable {
    public var name: String
    public var endpoint: URL
    public var caBundle: String?
    public var insecureSkipVerify: Bool
    public var rateLimit: RateLimit
    public var requestTimeout: TimeInterval
    public var pageSize: Int
}

/// A configured project.
public struct ProjectConfiguration: Sendable, Equatable {
    public var name: String
    public var id: String
    public var account: String
    public var region: String
    public var availabilityZones: [String]?
}

/// A listener: TCP host and port, or a unix socket path.
public enum ListenAddress: Sendable, Equatable, CustomStringConvertible {
    case tcp(host: String, port: Int)
    case unix(path: String)

    public var description: String {
        switch self {
        case .tcp(let host, let port): return "\(host):\(port)"
        case .unix(let path): return "unix:\(path)"
        }
    }
}

/// Where the state lives (`state.backend`).
public enum StateBackend: Sendable, Equatable {
    /// The embedded SQLite file under the state directory (the default; one node).
    case sqlite
    /// A shared PostgreSQL database (cluster mode); the URL is a secret.
    case postgres(url: SecretSource)
}

/// Cluster mode's settings (`cluster:`), only with `state.backend: postgres`.
public struct ClusterConfiguration: Sendable, Equatable {
    /// This replica's name, unique in the cluster (default: the host name).
    public var node: String
    /// How long a shard lease lives without renewal (renewed every third of it).
    public var leaseTTL: TimeInterval
}

/// The whole configuration, validated and typed.
public struct DaemonConfiguration: Sendable {
    public var source: String
    public var stateDirectory: String
    /// SQLite (default) or PostgreSQL.
    public var stateBackend: StateBackend = .sqlite
    /// Set with the PostgreSQL backend: the lease settings.
    public var cluster: ClusterConfiguration?
    public var metricsListen: ListenAddress
    public var controlListen: ListenAddress
    /// Idle timeout and connection cap of each listener.
    public var listenerLimits = ListenerLimits()
    /// The bearer token for mutating control-API calls.
    public var controlToken: SecretSource?
    public var accounts: [AccountConfiguration]
    public var regions: [RegionConfiguration]
    public var projects: [ProjectConfiguration]
    public var settings: WardenSettings
    public var loops: [String: LoopTiming]
    public var retention: RetentionPolicy
    public var logFormat: String
    public var logLevel: String
}

/// Reads and validates `ecs-warden.yaml`. Every problem is reported with file, line and field.
public enum ConfigLoader {
    /// Loads a file.
    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> DaemonConfiguration {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigErrors(errors: [ConfigError(file: path, field: "", message: "cannot read the file: \(error.localizedDescription)")])
        }
        return try parse(text, file: path, environment: environment)
    }

    /// Parses YAML text.
    public static func parse(_ text: String, file: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> DaemonConfiguration {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw ConfigErrors(errors: [yamlError(error, file: file)])
        }
        let reporter = ConfigReporter(file: file)
        let node = ConfigNode(root, path: "", reporter: reporter)
        guard root != nil else {
            throw ConfigErrors(errors: [ConfigError(file: file, line: 1, field: "", message: "the file is empty")])
        }
        let configuration = read(node, file: file, environment: environment)
        if !reporter.errors.isEmpty {
            throw ConfigErrors(errors: reporter.errors.sorted { ($0.line ?? 0, $0.column ?? 0) < ($1.line ?? 0, $1.column ?? 0) })
        }
        return configuration
    }

    static func yamlError(_ error: YamlError, file: String) -> ConfigError {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            return ConfigError(file: file, line: mark.line, column: mark.column, field: "", message: "YAML: \(problem)")
        default:
            return ConfigError(file: file, field: "", message: "YAML: \(error)")
        }
    }

    static let topLevelKeys = [
        "state_dir", "dry_run", "listen", "accounts", "regions", "projects", "loops", "quota", "stuck", "tags", "auto_stop", "schedules",
        "retention", "log", "state", "cluster",
    ]

    private static func read(_ root: ConfigNode, file: String, environment: [String: String]) -> DaemonConfiguration {
        root.allowOnly(topLevelKeys)
        let stateDirectory = root["state_dir"].string(default: environment["STATE_DIRECTORY"] ?? "/var/lib/ecs-warden") ?? "/var/lib/ecs-warden"
        let (stateBackend, cluster) = readStateBackend(root, environment: environment)
        let listen = root["listen"]
        listen.allowOnly(["metrics", "control", "control_token", "idle_timeout", "max_connections"])
        let listenerLimits = ListenerLimits(
            idleTimeout: listen["idle_timeout"].duration(default: 60, range: 1...3600), maxConnections: listen["max_connections"].int(default: 256, range: 1...65_536))
        let metricsListen = listenAddress(listen["metrics"], default: .tcp(host: "127.0.0.1", port: 9464))
        let controlListen = listenAddress(listen["control"], default: .tcp(host: "127.0.0.1", port: 9465))
        let controlToken = listen["control_token"].exists ? secret(listen["control_token"]) : nil

        var accounts: [AccountConfiguration] = []
        for item in root["accounts"].items {
            item.allowOnly(["name", "access_key", "secret_key", "security_token", "iam"])
            guard let name = item["name"].requiredString() else { continue }
            if item["iam"].exists {
                let iam = item["iam"]
                iam.allowOnly(["endpoint", "user", "domain", "password"])
                guard let endpoint = url(iam["endpoint"]), let user = iam["user"].requiredString(), let domain = iam["domain"].requiredString(),
                    let password = secret(iam["password"])
                else { continue }
                accounts.append(AccountConfiguration(name: name, credentials: .iamPassword(endpoint: endpoint, user: user, domain: domain, password: password)))
            } else {
                guard let ak = secret(item["access_key"]), let sk = secret(item["secret_key"]) else { continue }
                let token = item["security_token"].exists ? secret(item["security_token"]) : nil
                accounts.append(AccountConfiguration(name: name, credentials: .accessKey(accessKey: ak, secretKey: sk, securityToken: token)))
            }
        }
        if accounts.isEmpty && root["accounts"].exists == false { root["accounts"].fail("is required: at least one account") }

        var regions: [RegionConfiguration] = []
        for item in root["regions"].items {
            item.allowOnly(["name", "endpoint", "ca_bundle", "insecure_skip_verify", "rate_limit", "request_timeout", "page_size"])
            guard let name = item["name"].requiredString(), let endpoint = url(item["endpoint"]) else { continue }
            let rate = item["rate_limit"]
            rate.allowOnly(["requests_per_second", "burst"])
            regions.append(
                RegionConfiguration(
                    name: name, endpoint: endpoint, caBundle: item["ca_bundle"].string(), insecureSkipVerify: item["insecure_skip_verify"].bool(default: false),
                    rateLimit: RateLimit(
                        requestsPerSecond: rate["requests_per_second"].double(default: 20, range: 0.01...10_000), burst: rate["burst"].int(default: 40, range: 1...100_000)),
                    requestTimeout: item["request_timeout"].duration(default: 30, range: 0.1...600), pageSize: item["page_size"].int(default: 1000, range: 1...1000)))
        }
        if root["regions"].exists == false { root["regions"].fail("is required: at least one region with its endpoint") }

        var projects: [ProjectConfiguration] = []
        for item in root["projects"].items {
            item.allowOnly(["name", "id", "account", "region", "availability_zones"])
            guard let id = item["id"].requiredString(), let account = item["account"].requiredString(), let region = item["region"].requiredString() else { continue }
            if !accounts.contains(where: { $0.name == account }) { item["account"].fail("no account named '\(account)'") }
            if !regions.contains(where: { $0.name == region }) { item["region"].fail("no region named '\(region)'") }
            let zones = item["availability_zones"].exists ? item["availability_zones"].items.compactMap { $0.scalar } : nil
            projects.append(ProjectConfiguration(name: item["name"].string(default: id) ?? id, id: id, account: account, region: region, availabilityZones: zones))
        }
        if root["projects"].exists == false { root["projects"].fail("is required: at least one project") }
        for duplicate in Dictionary(grouping: projects, by: \.name).filter({ $0.value.count > 1 }).keys {
            root["projects"].fail("project name '\(duplicate)' is used twice")
        }

        let loopsNode = root["loops"]
        loopsNode.allowOnly(LoopName.allCases.map(\.rawValue))
        var loops: [String: LoopTiming] = [:]
        for loop in LoopName.allCases {
            let name = loop.rawValue
            let interval = loop.defaultInterval
            let node = loopsNode[name]
            node.allowOnly(["interval", "jitter", "deadline", "max_backoff"])
            let every = node["interval"].duration(default: interval, range: 0...86_400)
            if every < 1 { node["interval"].fail("must be at least 1s") }
            loops[name] = LoopTiming(
                interval: max(1, every), jitter: node["jitter"].double(default: 0.1, range: 0...1),
                deadline: node["deadline"].exists ? node["deadline"].duration(default: max(60, every * 3), range: 1...(7 * 86_400)) : nil,
                maxBackoff: node["max_backoff"].duration(default: 600, range: 1...86_400), finalPassOnShutdown: false)
        }

        let quota = root["quota"]
        quota.allowOnly(["warning", "critical", "resources", "forecast_window"])
        let thresholds = QuotaThresholds(warning: quota["warning"].double(default: 0.8, range: 0...1), critical: quota["critical"].double(default: 0.95, range: 0...1))
        if thresholds.warning > thresholds.critical { quota["warning"].fail("must not be above critical (\(thresholds.critical))") }
        var overrides: [String: QuotaThresholds] = [:]
        for (resource, node) in quota["resources"].entries {
            node.allowOnly(["warning", "critical"])
            overrides[resource] = QuotaThresholds(
                warning: node["warning"].double(default: thresholds.warning, range: 0...1), critical: node["critical"].double(default: thresholds.critical, range: 0...1))
        }

        let stuckNode = root["stuck"]
        stuckNode.allowOnly(["job_deadline", "job_deadlines", "status_thresholds", "task_state_thresholds", "remediation"])
        var rules = StuckRules()
        rules.defaultJobDeadline = stuckNode["job_deadline"].duration(default: rules.defaultJobDeadline)
        for (key, node) in stuckNode["job_deadlines"].entries { rules.jobDeadlines[key] = node.duration(default: rules.defaultJobDeadline) }
        for (key, node) in stuckNode["status_thresholds"].entries { rules.statusThresholds[key.uppercased()] = node.duration(default: 1800) }
        for (key, node) in stuckNode["task_state_thresholds"].entries { rules.taskStateThresholds[key] = node.duration(default: 900) }
        for (key, node) in stuckNode["remediation"].entries {
            if let remedy = node.scalar.flatMap(StuckRules.Remediation.init(rawValue:)) {
                rules.remediations[key] = remedy
            } else {
                node.fail("must be hard-stop or hard-reboot")
            }
        }

        let tagsNode = root["tags"]
        tagsNode.allowOnly(["schedule", "ignore", "snooze_until"])
        func tagKey(_ field: String, _ fallback: String) -> String {
            let node = tagsNode[field]
            let key = node.string(default: fallback) ?? fallback
            if let problem = Self.tagKeyProblem(key) { node.fail(problem) }
            return key
        }
        let tags = ScheduleTagKeys(
            schedule: tagKey("schedule", "warden-schedule"), ignore: tagKey("ignore", "warden-ignore"),
            snoozeUntil: tagKey("snooze_until", "warden-snooze-until"))
        if Set([tags.schedule, tags.ignore, tags.snoozeUntil]).count < 3 { tagsNode.fail("schedule, ignore and snooze_until must be three different keys") }

        let autoStop = root["auto_stop"]
        autoStop.allowOnly(["max_stops_per_pass", "max_starts_per_pass", "batch_size", "boundary_grace", "per_minute_limit", "failed_subjob_retries", "capacity_retries", "start_preflight"])
        let limits = AutoStopLimits(
            maxStopsPerPass: autoStop["max_stops_per_pass"].int(default: 200, range: 0...1_000_000),
            maxStartsPerPass: autoStop["max_starts_per_pass"].int(default: 1000, range: 0...1_000_000),
            batchSize: autoStop["batch_size"].int(default: 1000, range: 1...1000), boundaryGrace: autoStop["boundary_grace"].duration(default: 3600, range: 0...(7 * 86_400)),
            perMinuteLimit: autoStop["per_minute_limit"].int(default: 1000, range: 1...1000),
            failedSubJobRetries: autoStop["failed_subjob_retries"].int(default: 1, range: 0...10),
            capacityRetries: autoStop["capacity_retries"].int(default: 4, range: 0...10),
            startPreflight: autoStop["start_preflight"].duration(default: 1800, range: 0...86_400))

        var schedules: [String: Schedule] = [:]
        for (name, node) in root["schedules"].entries {
            if let schedule = ScheduleConfig.read(node, name: name) { schedules[name] = schedule }
        }

        let retentionNode = root["retention"]
        retentionNode.allowOnly(["journal_days", "journal_max_entries", "quota_history_days", "transition_days"])
        let retention = RetentionPolicy(
            journalDays: retentionNode["journal_days"].double(default: 90, range: 1...36_500),
            journalMaxEntries: retentionNode["journal_max_entries"].int(default: 500_000, range: 1000...100_000_000),
            quotaHistoryDays: retentionNode["quota_history_days"].double(default: 30, range: 1...3650),
            transitionDays: retentionNode["transition_days"].double(default: 365, range: 1...36_500),
            keepCallsFor: max(limits.boundaryGrace, 86_400))
        if retention.journalDays * 86_400 <= limits.boundaryGrace {
            retentionNode["journal_days"].fail(
                "must be longer than auto_stop.boundary_grace (\(Int(limits.boundaryGrace)) s): the calls of a boundary are needed until its grace ends")
        }

        let log = root["log"]
        log.allowOnly(["format", "level"])
        let format = log["format"].string(default: "text") ?? "text"
        if !["text", "json"].contains(format) { log["format"].fail("must be text or json") }
        let level = log["level"].string(default: "info") ?? "info"
        if !["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(level) { log["level"].fail("is not a log level") }

        let settings = WardenSettings(
            dryRun: root["dry_run"].bool(default: false), tags: tags, schedules: schedules, autoStop: limits, quotaThresholds: thresholds,
            quotaOverrides: overrides, forecastWindow: quota["forecast_window"].duration(default: 7 * 86_400), stuck: rules)
        var configuration = DaemonConfiguration(
            source: file, stateDirectory: stateDirectory, metricsListen: metricsListen, controlListen: controlListen, listenerLimits: listenerLimits,
            controlToken: controlToken, accounts: accounts, regions: regions, projects: projects, settings: settings, loops: loops, retention: retention, logFormat: format,
            logLevel: level)
        configuration.stateBackend = stateBackend
        configuration.cluster = cluster
        return configuration
    }

    /// `state: {backend, postgres: {url}}` and `cluster: {node, lease_ttl}`.
    static func readStateBackend(_ root: ConfigNode, environment: [String: String]) -> (StateBackend, ClusterConfiguration?) {
        let state = root["state"]
        state.allowOnly(["backend", "postgres"])
        let backendName = state["backend"].string(default: "sqlite") ?? "sqlite"
        let clusterNode = root["cluster"]
        clusterNode.allowOnly(["node", "lease_ttl"])
        switch backendName {
        case "sqlite":
            if state["postgres"].exists { state["postgres"].fail("is only read with backend: postgres") }
            if clusterNode.exists { clusterNode.fail("cluster mode needs state.backend: postgres (the replicas share their state there)") }
            return (.sqlite, nil)
        case "postgres":
            let postgres = state["postgres"]
            postgres.allowOnly(["url"])
            guard postgres.exists else {
                state["postgres"].fail("is required with backend: postgres: url: {credential: state-db-url}")
                return (.sqlite, nil)
            }
            let url = secret(postgres["url"])
            let host = environment["HOSTNAME"].flatMap { $0.isEmpty ? nil : $0 } ?? ProcessInfo.processInfo.hostName
            let node = clusterNode["node"].string(default: host) ?? host
            if node.isEmpty || node.count > 128 || node.contains(where: { $0.isWhitespace || $0.isNewline }) {
                clusterNode["node"].fail("'\(node)' is not a node name (1-128 characters, no spaces)")
            }
            let ttl = clusterNode["lease_ttl"].duration(default: 15, range: 3...300)
            return (url.map { .postgres(url: $0) } ?? .sqlite, ClusterConfiguration(node: node, leaseTTL: ttl))
        default:
            state["backend"].fail("must be sqlite or postgres")
            return (.sqlite, nil)
        }
    }

    static func listenAddress(_ node: ConfigNode, default value: ListenAddress) -> ListenAddress {
        guard let text = node.scalar else { return value }
        if text.hasPrefix("unix:") { return .unix(path: String(text.dropFirst(5))) }
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            node.fail("'\(text)' is not host:port or unix:/path")
            return value
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if !isLoopback(host) {
            node.fail("'\(host)' is not a loopback address: the listeners serve the control API and metrics on loopback only (use a unix socket or a proxy)")
        }
        return .tcp(host: host, port: port)
    }

    /// Why `key` cannot be a tag key, or nil. The API reference's rules for creating a tag (S1 §5.9.3,
    /// T5-76): at most 36 characters of `A-Z a-z 0-9 - _` and `\u{4E00}-\u{9FFF}`; a key an operator
    /// could never put on a server would make the scheduler wait for tags that never come.
    static func tagKeyProblem(_ key: String) -> String? {
        if key.isEmpty { return "a tag key cannot be empty" }
        if key.count > 36 { return "'\(key)' is \(key.count) characters; the API allows tag keys of at most 36" }
        let allowed = key.unicodeScalars.allSatisfy { scalar in
            (0x4E00...0x9FFF).contains(scalar.value) || scalar == "-" || scalar == "_"
                || (scalar.isASCII && (CharacterSet.alphanumerics.contains(scalar)))
        }
        return allowed ? nil : "'\(key)' has characters the API does not allow in a tag key (A-Z a-z 0-9 - _ and CJK ideographs)"
    }

    /// `localhost`, `::1` or a literal IPv4 address in 127.0.0.0/8 (four numbers, the first 127):
    /// `127.attacker.example` is a name anyone can point anywhere, not a loopback address.
    static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" || host == "::1" { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "127" else { return false }
        return parts.allSatisfy { part in
            !part.isEmpty && part.count <= 3 && part.allSatisfy(\.isASCII) && part.allSatisfy(\.isNumber) && (Int(part) ?? 256) <= 255
        }
    }

    static func url(_ node: ConfigNode) -> URL? {
        guard let text = node.requiredString() else { return nil }
        guard let url = URL(string: text), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
            node.fail("'\(text)' is not an http(s) URL")
            return nil
        }
        return url
    }

    /// `{file: path}`, `{env: NAME}` or `{credential: NAME}`; a literal is refused.
    static func secret(_ node: ConfigNode) -> SecretSource? {
        guard node.exists else {
            node.fail("is required")
            return nil
        }
        if node.isScalar {
            node.fail("secrets are never written in the configuration: use {file: PATH}, {env: NAME} or {credential: NAME}")
            return nil
        }
        node.allowOnly(["file", "env", "credential"])
        if let path = node["file"].scalar { return .file(path) }
        if let name = node["env"].scalar { return .environment(name) }
        if let name = node["credential"].scalar {
            // A credential is a file name inside $CREDENTIALS_DIRECTORY, never a path out of it.
            guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
                node["credential"].fail("'\(name)' is not a credential name (a file name in $CREDENTIALS_DIRECTORY, without '/')")
                return nil
            }
            return .credential(name)
        }
        node.fail("needs one of file, env, credential")
        return nil
    }
}
