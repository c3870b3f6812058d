import Foundation
import PostgresNIO
import Testing
@testable import WardenPostgres

/// The connection URL (no database needed).
@Suite struct PostgresURLTests {
    @Test func partsAndRedaction() throws {
        let url = try PostgresURL("postgres://warden:s%40cret@db.example:6543/state?sslmode=verify-full&sslrootcert=/etc/ssl/ca.pem")
        #expect(url.host == "db.example" && url.port == 6543 && url.username == "warden" && url.password == "s@cret" && url.database == "state")
        #expect(url.tlsMode == .verifyFull && url.rootCertificatePath == "/etc/ssl/ca.pem")
        #expect(!url.redacted.contains("cret"))
        #expect(url.redacted == "postgres://warden@db.example:6543/state?sslmode=verify-full&sslrootcert=/etc/ssl/ca.pem")
    }

    @Test func defaults() throws {
        let url = try PostgresURL("postgresql://warden@127.0.0.1")
        #expect(url.port == 5432 && url.database == "warden" && url.tlsMode == .prefer && url.password == nil)
        #expect(try PostgresURL("postgres://u@[::1]:5433/d?sslmode=disable").host == "::1")
        #expect(try PostgresURL("postgres://u@[::1]:5433/d?sslmode=disable").redacted == "postgres://u@[::1]:5433/d?sslmode=disable")
    }

    @Test(arguments: [
        "mysql://u@h/d", "postgres:///d", "postgres://h/d", "postgres://u@h/d?sslmode=allow", "postgres://u@h/d?sslmode=verify-full&sslrootcert=",
        "postgres://u@h/d?connect_timeout=3",
    ])
    func invalid(_ raw: String) {
        #expect(throws: PostgresStoreError.self) { try PostgresURL(raw) }
    }

    @Test func tlsVerificationIsOnUnlessTurnedOff() throws {
        for mode in ["prefer", "require", "verify-full"] {
            let tls = try PostgresURL("postgres://u@h/d?sslmode=\(mode)").tlsConfiguration(verifyCertificates: true)
            #expect(tls?.certificateVerification == .fullVerification, "\(mode)")
        }
        #expect(try PostgresURL("postgres://u@h/d?sslmode=verify-ca").tlsConfiguration(verifyCertificates: true)?.certificateVerification == .noHostnameVerification)
        #expect(try PostgresURL("postgres://u@h/d?sslmode=require").tlsConfiguration(verifyCertificates: false)?.certificateVerification == CertificateVerification.none)
        #expect(try PostgresURL("postgres://u@h/d?sslmode=disable").tlsConfiguration(verifyCertificates: true) == nil)
        #expect(throws: PostgresStoreError.self) { try PostgresURL("postgres://u@h/d?sslmode=require&sslrootcert=/nonexistent/ca.pem").clientConfiguration() }
    }
}
