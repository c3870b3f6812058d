import Foundation
import PostgresNIO

/// A PostgreSQL connection URL, `postgres://user:password@host:port/database?sslmode=…&sslrootcert=…`,
/// parsed into the client's configuration. The URL is a secret (it may hold the password):
/// `redacted` is the form to log and to show as the store's location.
///
/// `sslmode` follows libpq's names with one difference: certificates are verified whenever TLS is
/// used (`prefer`, `require`, `verify-ca` without the host name check, `verify-full`), unless the
/// caller turns verification off. Without `sslmode`, `prefer`.
public struct PostgresURL: Sendable, Equatable, CustomStringConvertible {
    /// How the connection uses TLS.
    public enum TLSMode: String, Sendable, CaseIterable {
        case disable
        case prefer
        case require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String
    public var tlsMode: TLSMode
    /// `sslrootcert`: a PEM file of the CA certificates to trust instead of the system's.
    public var rootCertificatePath: String?

    /// Parses `url`; throws `PostgresStoreError` naming what is wrong (never echoing the password).
    public init(_ url: String) throws {
        guard let components = URLComponents(string: url), let scheme = components.scheme, ["postgres", "postgresql"].contains(scheme) else {
            throw PostgresStoreError.invalidURL("expected postgres://user:password@host:port/database")
        }
        guard let host = components.host, !host.isEmpty else { throw PostgresStoreError.invalidURL("no host") }
        guard let user = components.user, !user.isEmpty else { throw PostgresStoreError.invalidURL("no user name") }
        self.host = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        port = components.port ?? 5432
        username = user
        password = components.password
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        database = path.isEmpty ? user : path
        tlsMode = .prefer
        rootCertificatePath = nil
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                guard let mode = item.value.flatMap(TLSMode.init(rawValue:)) else {
                    throw PostgresStoreError.invalidURL(
                        "sslmode '\(item.value ?? "")' is not one of \(TLSMode.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                tlsMode = mode
            case "sslrootcert":
                guard let value = item.value, !value.isEmpty else { throw PostgresStoreError.invalidURL("sslrootcert without a path") }
                rootCertificatePath = value
            default:
                throw PostgresStoreError.invalidURL("unknown parameter '\(item.name)' (known: sslmode, sslrootcert)")
            }
        }
    }

    /// The URL without its password: the store's `location`, safe to log.
    public var redacted: String {
        var components = URLComponents()
        components.scheme = "postgres"
        components.user = username
        components.host = host.contains(":") ? "[\(host)]" : host
        components.port = port
        components.path = "/" + database
        components.queryItems = [URLQueryItem(name: "sslmode", value: tlsMode.rawValue)]
            + (rootCertificatePath.map { [URLQueryItem(name: "sslrootcert", value: $0)] } ?? [])
        return components.string ?? "postgres://\(username)@\(host):\(port)/\(database)"
    }

    public var description: String { redacted }

    /// The client configuration: TLS from `sslmode` (certificates verified unless
    /// `verifyCertificates` is false), and a server-side limit on how long a session may sit idle
    /// inside a transaction, so a stopped or wedged process cannot hold a lease row's lock (and
    /// with it every other node's takeover) for longer than `idleInTransactionTimeout`.
    public func clientConfiguration(
        verifyCertificates: Bool = true, idleInTransactionTimeout: Duration = .seconds(5), applicationName: String = "ecs-warden"
    ) throws -> PostgresClient.Configuration {
        var configuration = PostgresClient.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: try tls(verifyCertificates: verifyCertificates))
        let milliseconds = idleInTransactionTimeout.components.seconds * 1000 + idleInTransactionTimeout.components.attoseconds / 1_000_000_000_000_000
        configuration.options.additionalStartupParameters = [
            ("application_name", applicationName),
            ("idle_in_transaction_session_timeout", "\(max(1, milliseconds))"),
        ]
        return configuration
    }

    private func tls(verifyCertificates: Bool) throws -> PostgresClient.Configuration.TLS {
        guard let tls = try tlsConfiguration(verifyCertificates: verifyCertificates) else { return .disable }
        return tlsMode == .prefer ? .prefer(tls) : .require(tls)
    }

    /// The TLS settings of `sslmode` and `sslrootcert`; nil when TLS is off.
    func tlsConfiguration(verifyCertificates: Bool) throws -> TLSConfiguration? {
        if tlsMode == .disable { return nil }
        var tls = TLSConfiguration.makeClientConfiguration()
        if let rootCertificatePath {
            guard FileManager.default.isReadableFile(atPath: rootCertificatePath) else {
                throw PostgresStoreError.invalidURL("sslrootcert \(rootCertificatePath) cannot be read")
            }
            tls.trustRoots = .file(rootCertificatePath)
        }
        tls.certificateVerification = !verifyCertificates ? .none : tlsMode == .verifyCA ? .noHostnameVerification : .fullVerification
        return tls
    }
}
