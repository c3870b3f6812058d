import Foundation
import Testing
import WardenCore

@testable import WardenDaemon

/// The repository root (tests run from the package directory, but do not rely on it).
let repositoryRoot: URL = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url
}()

@Suite struct ConfigLoaderTests {
    @Test func theExampleFileIsValidAndMeansWhatItSays() throws {
        let path = repositoryRoot.appendingPathComponent("config/ecs-warden.yaml").path
        let configuration = try ConfigLoader.load(path: path, environment: [:])
        #expect(configuration.projects.map(\.name) == ["shop-prod", "shop-dev"])
        #expect(configuration.accounts.count == 2)
        #expect(configuration.controlToken == .credential("control-token"))
        #expect(configuration.metricsListen == .tcp(host: "127.0.0.1", port: 9464))
        #expect(configuration.loops["quota"]?.interval == 300)
        #expect(configuration.settings.quotaOverrides["cores"] == QuotaThresholds(warning: 0.7, critical: 0.9))
        #expect(configuration.settings.stuck.jobDeadlines["batchStopServers"] == 600)
        let office = try #require(configuration.settings.schedules["office-hours"])
        #expect(office.timeZone.identifier == "Europe/Berlin")
        #expect(office.periods.first?.days == .weekdays(Weekday.workdays))
        #expect(office.skipDates.count == 3)
        let monthEnd = try #require(configuration.settings.schedules["month-end-batch"])
        #expect(monthEnd.periods.map(\.days) == [.lastDayOfMonth, .daysOfMonth([15])])
    }

    func errors(_ yaml: String) -> [ConfigError] {
        do {
            _ = try ConfigLoader.parse(yaml, file: "test.yaml", environment: [:])
            return []
        } catch let error as ConfigErrors {
            return error.errors
        } catch {
            return [ConfigError(file: "?", field: "?", message: "\(error)")]
        }
    }

    let minimal = """
        accounts:
          - {name: a, access_key: {env: AK}, secret_key: {env: SK}}
        regions:
          - {name: r, endpoint: "http://127.0.0.1:1"}
        projects:
          - {name: p, id: "0123", account: a, region: r}

        """

    @Test func errorsNameTheFileTheLineAndTheField() {
        let found = errors(
            minimal + """
                loops:
                  quota: {intervall: 5m}
                  stuck: {interval: fortnight}
                schedules:
                  office:
                    timezone: Europe/Atlantis
                    periods:
                      - {days: funday, start: "8:00", stop: "25:00"}
                """)
        let rendered = found.map(\.description)
        #expect(rendered.contains { $0.hasPrefix("test.yaml:8:") && $0.contains("loops.quota.intervall: unknown key 'intervall' (did you mean 'interval'?)") })
        #expect(rendered.contains { $0.hasPrefix("test.yaml:9:") && $0.contains("loops.stuck.interval: 'fortnight' is not a duration") })
        #expect(rendered.contains { $0.contains("schedules.office.timezone: 'Europe/Atlantis' is not an IANA time zone") })
        #expect(rendered.contains { $0.contains("schedules.office.periods[0].days: 'funday' is not a day selector") })
        #expect(rendered.contains { $0.contains("schedules.office.periods[0].stop: '25:00' is not a time") })
    }

    /// Values that would overflow a date or an integer later (and crash a running daemon on reload)
    /// are refused with the usual position and field.
    @Test func outOfRangeDurationsAndNumbersAreRefused() {
        let found = errors(
            """
            accounts:
              - {name: a, access_key: {env: AK}, secret_key: {env: SK}}
            regions:
              - {name: r, endpoint: "http://127.0.0.1:1", request_timeout: 1e300}
            projects:
              - {name: p, id: "0123", account: a, region: r}
            loops:
              quota: {interval: 1e300}
              stuck: {interval: inf, max_backoff: 100000d}
            auto_stop: {boundary_grace: 400d}
            quota: {warning: nan}
            """)
        let rendered = found.map(\.description)
        #expect(rendered.contains { $0.hasPrefix("test.yaml:4:") && $0.contains("regions[0].request_timeout: 1e300 is outside 0.1s...10m") })
        #expect(rendered.contains { $0.hasPrefix("test.yaml:8:") && $0.contains("loops.quota.interval: 1e300 is outside 0s...1d") })
        #expect(rendered.contains { $0.contains("loops.stuck.interval: 'inf' is not a duration") })
        #expect(rendered.contains { $0.contains("loops.stuck.max_backoff: 100000d is outside 1s...1d") })
        #expect(rendered.contains { $0.contains("auto_stop.boundary_grace: 400d is outside 0s...7d") })
        #expect(rendered.contains { $0.contains("quota.warning: 'nan' is not a number") })
    }

    @Test func secretsAreNeverLiteralAndListenersStayOnLoopback() {
        let literal = errors(
            """
            accounts:
              - {name: a, access_key: AKIAEXAMPLE, secret_key: {env: SK}}
            regions: [{name: r, endpoint: "http://127.0.0.1:1"}]
            projects: [{id: "1", account: a, region: r}]
            listen: {metrics: "0.0.0.0:9464"}
            """)
        #expect(literal.contains { $0.field == "accounts[0].access_key" && $0.message.contains("never written in the configuration") })
        #expect(literal.contains { $0.field == "listen.metrics" && $0.message.contains("not a loopback address") })
        #expect(!literal.map(\.description).joined().contains("AKIAEXAMPLE"))
    }

    @Test func referencesAndYAMLSyntaxAreChecked() {
        let dangling = errors(
            """
            accounts: [{name: a, access_key: {env: AK}, secret_key: {env: SK}}]
            regions: [{name: r, endpoint: "http://127.0.0.1:1"}]
            projects: [{id: "1", account: b, region: q}]
            """)
        #expect(dangling.contains { $0.field == "projects[0].account" && $0.message == "no account named 'b'" })
        #expect(dangling.contains { $0.field == "projects[0].region" && $0.message == "no region named 'q'" })
        let broken = errors("accounts: [unclosed\nregions: {")
        #expect(broken.first?.line != nil)
        #expect(broken.first?.message.hasPrefix("YAML:") == true)
    }

    @Test func secretsResolveFromFilesEnvironmentAndCredentials() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("warden-secrets-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let open = directory.appendingPathComponent("open").path
        let closed = directory.appendingPathComponent("closed").path
        FileManager.default.createFile(atPath: open, contents: Data("s3cret\n".utf8), attributes: [.posixPermissions: 0o644])
        FileManager.default.createFile(atPath: closed, contents: Data("s3cret\n".utf8), attributes: [.posixPermissions: 0o600])
        let resolver = SecretResolver(environment: ["SK": "from-env", "CREDENTIALS_DIRECTORY": directory.path])
        #expect(try resolver.resolve(.file(closed)) == "s3cret")
        #expect(throws: SecretResolver.Failure.self) { try resolver.resolve(.file(open)) }
        #expect(try resolver.resolve(.environment("SK")) == "from-env")
        // systemd-owned credential files are not mode-checked (systemd sets 0400/0440 itself).
        #expect(try resolver.resolve(.credential("open")) == "s3cret")
        do {
            _ = try resolver.resolve(.environment("MISSING"))
        } catch {
            #expect("\(error)".contains("MISSING"))
        }
        // A credential name never leaves $CREDENTIALS_DIRECTORY.
        #expect(throws: SecretResolver.Failure.self) { try resolver.resolve(.credential("../\(directory.lastPathComponent)/closed")) }
        // A secret file another user owns, or in a directory others may write, is refused.
        let foreign = directory.appendingPathComponent("foreign").path
        FileManager.default.createFile(atPath: foreign, contents: Data("s3cret\n".utf8), attributes: [.posixPermissions: 0o600])
        if geteuid() == 0 {
            #expect(chown(foreign, 4242, 4242) == 0)
            #expect(throws: SecretResolver.Failure.self) { try resolver.resolve(.file(foreign)) }
        }
        #expect(chmod(directory.path, 0o777) == 0)
        do {
            _ = try resolver.resolve(.file(closed))
            Issue.record("a secret in a directory others may write must be refused")
        } catch {
            #expect("\(error)".contains("which others may write"))
        }
        #expect(chmod(directory.path, 0o700) == 0)
    }

    /// Tag keys follow the API reference's rules for creating a tag (≤36 characters of A-Z a-z 0-9 - _
    /// and CJK ideographs), and the three keys differ.
    @Test func tagKeysFollowTheDocumentedCharset() {
        let found = errors(
            minimal + """
                tags: {schedule: "warden.schedule", ignore: "an-ignore-key-that-is-longer-than-thirty-six", snooze_until: "warden.schedule"}
                """)
        #expect(found.contains { $0.field == "tags.schedule" && $0.message.contains("does not allow") })
        #expect(found.contains { $0.field == "tags.ignore" && $0.message.contains("at most 36") })
        #expect(found.contains { $0.field == "tags" && $0.message.contains("three different keys") })
        #expect(ConfigLoader.tagKeyProblem("计划-schedule_1") == nil)
        #expect(ConfigLoader.tagKeyProblem("warden-schedule") == nil)
        #expect(ConfigLoader.tagKeyProblem("wärden") != nil)
    }

    @Test func credentialNamesAndLoopbackHostsAreStrict() {
        let found = errors(
            """
            accounts:
              - {name: a, access_key: {credential: ../../etc/shadow}, secret_key: {env: SK}}
            regions: [{name: r, endpoint: "http://127.0.0.1:1"}]
            projects: [{id: "1", account: a, region: r}]
            listen: {metrics: "127.attacker.example:9464", control: "127.0.0.2:9465"}
            """)
        #expect(found.contains { $0.field == "accounts[0].access_key.credential" && $0.message.contains("is not a credential name") })
        #expect(found.contains { $0.field == "listen.metrics" && $0.message.contains("not a loopback address") })
        #expect(!found.contains { $0.field == "listen.control" })
        for host in ["127.0.0.1", "127.1.2.3", "localhost", "::1"] { #expect(ConfigLoader.isLoopback(host)) }
        for host in ["127.attacker.example", "127.0.0.1.nip.io", "127.0.0", "127.0.0.256", "0.0.0.0", "10.0.0.1", "localhost.example"] {
            #expect(!ConfigLoader.isLoopback(host))
        }
    }
}
