import Crypto
import Foundation

/// Why a signed request was rejected. Each case maps to a 401 at the simulator's gateway.
public enum SignatureRejection: Error, Sendable, Equatable, CustomStringConvertible {
    /// No `Authorization` header.
    case missingAuthorization
    /// The header is not `SDK-HMAC-SHA256 Access=…, SignedHeaders=…, Signature=…`.
    case malformedAuthorization
    /// An algorithm other than `SDK-HMAC-SHA256`.
    case unsupportedAlgorithm(String)
    /// The access key is not known.
    case unknownAccessKey(String)
    /// No `X-Sdk-Date` header, or it is not signed.
    case missingDate
    /// `X-Sdk-Date` is not `yyyyMMdd'T'HHmmss'Z'`.
    case malformedDate(String)
    /// `X-Sdk-Date` is further from the verifier's clock than allowed.
    case clockSkew(seconds: Int)
    /// A header named in `SignedHeaders` is absent.
    case missingSignedHeader(String)
    /// The recomputed signature differs.
    case signatureMismatch

    public var description: String {
        switch self {
        case .missingAuthorization: return "the request carries no Authorization header"
        case .malformedAuthorization: return "the Authorization header is malformed"
        case .unsupportedAlgorithm(let name): return "unsupported signing algorithm \(name)"
        case .unknownAccessKey(let key): return "unknown access key \(key)"
        case .missingDate: return "the request carries no signed X-Sdk-Date header"
        case .malformedDate(let value): return "X-Sdk-Date '\(value)' is not yyyyMMddTHHmmssZ"
        case .clockSkew(let seconds): return "X-Sdk-Date is \(seconds) s away from the server clock"
        case .missingSignedHeader(let name): return "signed header \(name) is absent"
        case .signatureMismatch: return "the signature does not match"
        }
    }
}

/// The parts of an `SDK-HMAC-SHA256` `Authorization` header.
public struct SDKAuthorization: Sendable, Equatable {
    public var accessKey: String
    public var signedHeaders: [String]
    public var signature: String

    /// Parses `SDK-HMAC-SHA256 Access=AK, SignedHeaders=a;b, Signature=hex`.
    public static func parse(_ value: String) throws(SignatureRejection) -> SDKAuthorization {
        let trimmed = SDKSigner.trimHeaderValue(value)
        guard let space = trimmed.firstIndex(of: " ") else { throw .malformedAuthorization }
        let algorithm = String(trimmed[..<space])
        guard algorithm == SDKSigner.algorithm else { throw .unsupportedAlgorithm(algorithm) }
        var fields: [String: String] = [:]
        for part in trimmed[trimmed.index(after: space)...].split(separator: ",") {
            let item = part.trimmingCharacters(in: .whitespaces)
            guard let equals = item.firstIndex(of: "=") else { throw .malformedAuthorization }
            fields[String(item[..<equals])] = String(item[item.index(after: equals)...])
        }
        guard let access = fields["Access"], !access.isEmpty,
            let signed = fields["SignedHeaders"], !signed.isEmpty,
            let signature = fields["Signature"], !signature.isEmpty
        else { throw .malformedAuthorization }
        return SDKAuthorization(
            accessKey: access,
            signedHeaders: signed.split(separator: ";").map { String($0) },
            signature: signature
        )
    }
}

/// Verifies `SDK-HMAC-SHA256` signatures as a gateway does: it recomputes the signature over the
/// headers named in `SignedHeaders` (HTTP clients add others after signing), checks the access key
/// and checks `X-Sdk-Date` against its own clock.
public struct SignatureVerifier: Sendable {
    /// Looks up the secret key of an access key; nil for an unknown key.
    public var secretKey: @Sendable (String) -> String?
    /// The largest accepted distance between `X-Sdk-Date` and the verifier's clock.
    public var maxClockSkew: TimeInterval

    /// Creates a verifier. The real gateway allows roughly 15 minutes of skew.
    public init(maxClockSkew: TimeInterval = 15 * 60, secretKey: @escaping @Sendable (String) -> String?) {
        self.secretKey = secretKey
        self.maxClockSkew = maxClockSkew
    }

    /// Checks a request as received.
    ///
    /// - Parameters:
    ///   - method: the HTTP method.
    ///   - path: the path as received (percent-escapes intact, no query).
    ///   - rawQuery: the query string as received, without `?`.
    ///   - headers: every header received (names in any case).
    ///   - body: the body bytes.
    ///   - now: the verifier's clock.
    /// - Returns: the access key that signed the request.
    @discardableResult
    public func verify(
        method: String,
        path: String,
        rawQuery: String,
        headers: [SignableRequest.Header],
        body: [UInt8],
        now: Date
    ) throws(SignatureRejection) -> String {
        var received: [String: String] = [:]
        for header in headers where received[header.name.lowercased()] == nil {
            received[header.name.lowercased()] = header.value
        }
        guard let authorizationValue = received["authorization"] else { throw .missingAuthorization }
        let authorization = try SDKAuthorization.parse(authorizationValue)
        guard let secret = secretKey(authorization.accessKey) else { throw .unknownAccessKey(authorization.accessKey) }
        let names = authorization.signedHeaders.map { $0.lowercased() }
        guard names.contains("x-sdk-date"), let dateValue = received["x-sdk-date"] else { throw .missingDate }
        let dateText = SDKSigner.trimHeaderValue(dateValue)
        guard let signedAt = SDKDate.parse(dateText) else { throw .malformedDate(dateText) }
        let skew = signedAt.timeIntervalSince(now)
        guard abs(skew) <= maxClockSkew else { throw .clockSkew(seconds: Int(skew)) }
        var signedHeaders: [SignableRequest.Header] = []
        for name in names {
            guard let value = received[name] else { throw .missingSignedHeader(name) }
            signedHeaders.append(.init(name, value))
        }
        let request = SignableRequest(
            method: method,
            path: path,
            query: PercentEncoding.parseQuery(rawQuery),
            headers: signedHeaders,
            body: body
        )
        let expected = SDKSigner.signature(of: request, signedHeaderNames: names, date: dateText, secretKey: secret)
        guard constantTimeEqual(expected, authorization.signature) else { throw .signatureMismatch }
        return authorization.accessKey
    }

    private func constantTimeEqual(_ lhs: String, _ rhs: String) -> Bool {
        let a = Array(lhs.utf8)
        let b = Array(rhs.utf8)
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}
