import Foundation
import Testing
import WardenCore

@testable import WardenDaemon

/// `state:` and `cluster:`: SQLite stays the default; PostgreSQL needs a secret URL; `cluster:`
/// only with PostgreSQL; the node name and TTL are checked.
@Suite struct ClusterConfigTests {
    /// The smallest valid configuration (shared with the loader's tests).
    let minimal = ConfigLoaderTests().minimal

    func parse(_ yaml: String) throws -> DaemonConfiguration {
        try ConfigLoader.parse(minimal + yaml, file: "test.yaml", environment: ["HOSTNAME": "host-1"])
    }

    func messages(_ yaml: String) -> [String] {
        do {
            _ = try parse(yaml)
            return []
        } catch let error as ConfigErrors {
            return error.errors.map { "\($0.field): \($0.message)" }
        } catch {
            return ["\(error)"]
        }
    }

    @Test func sqliteIsTheDefaultAndNothingChanges() throws {
        let configuration = try parse("")
        #expect(configuration.stateBackend == .sqlite)
        #expect(configuration.cluster == nil)
    }

    @Test func postgresWithACredentialAndClusterSettings() throws {
        let configuration = try parse(
            """
            state:
              backend: postgres
              postgres:
                url: {credential: state-db-url}
            cluster:
              node: warden-a
              lease_ttl: 20s

            """)
        #expect(configuration.stateBackend == .postgres(url: .credential("state-db-url")))
        #expect(configuration.cluster == ClusterConfiguration(node: "warden-a", leaseTTL: 20))
    }

    @Test func theNodeDefaultsToTheHostNameAndTheTTLTo15Seconds() throws {
        let configuration = try parse("state: {backend: postgres, postgres: {url: {env: DB_URL}}}\n")
        #expect(configuration.cluster == ClusterConfiguration(node: "host-1", leaseTTL: 15))
    }

    @Test func mistakesAreNamed() {
        #expect(messages("state: {backend: postgres, postgres: {url: \"postgres://u:secret@h/db\"}}\n").contains { $0.contains("secrets are never written") })
        #expect(messages("state: {backend: postgres}\n").contains { $0.contains("is required with backend: postgres") })
        #expect(messages("state: {backend: mysql}\n").contains { $0.contains("must be sqlite or postgres") })
        #expect(messages("cluster: {node: a}\n").contains { $0.contains("cluster mode needs state.backend: postgres") })
        #expect(messages("state: {backend: postgres, postgres: {url: {env: U}}}\ncluster: {lease_ttl: 1s}\n").contains { $0.contains("outside") })
        #expect(messages("state: {backend: postgres, postgres: {url: {env: U}}}\ncluster: {node: \"a b\"}\n").contains { $0.contains("not a node name") })
    }
}
