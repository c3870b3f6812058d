import Crypto
import Foundation

/// An access key pair used to sign requests (AK/SK authentication).
///
/// The secret key is never part of `description`, so a credentials value can be logged or
/// interpolated without leaking it.
public struct AccessKeyCredentials: Sendable, Equatable, CustomStringConvertible {
    /// The access key id (AK); it travels in the `Authorization` header.
    public var accessKey: String
    /// The secret access key (SK); it keys the HMAC and never leaves the process.
    public var secretKey: String
    /// The security token of temporary credentials, sent as `X-Security-Token` when present.
    public var securityToken: String?

    /// Creates credentials from an access key pair and an optional security token.
    public init(accessKey: String, secretKey: String, securityToken: String? = nil) {
        self.accessKey = accessKey
        self.secretKey = secretKey
        self.securityToken = securityToken
    }

    public var description: String {
        "AccessKeyCredentials(accessKey: \(accessKey), secretKey: <redacted>)"
    }
}

/// A request as the signer sees it: everything that goes into the canonical request.
public struct SignableRequest: Sendable, Equatable {
    /// The HTTP method, any case.
    public var method: String
    /// The resource path exactly as it is sent on the wire (percent-escapes allowed).
    public var path: String
    /// Query parameters, unencoded, in any order; repeated names are allowed.
    public var query: [QueryItem]
    /// The headers present at signing time, unencoded values, names in any case.
    public var headers: [Header]
    /// The body bytes (empty for none).
    public var body: [UInt8]

    /// One query parameter (unencoded).
    public struct QueryItem: Sendable, Equatable {
        public var name: String
        public var value: String
        public init(_ name: String, _ value: String) {
            self.name = name
            self.value = value
        }
    }

    /// One header (name as given, value unencoded and untrimmed).
    public struct Header: Sendable, Equatable {
        public var name: String
        public var value: String
        public init(_ name: String, _ value: String) {
            self.name = name
            self.value = value
        }
    }

    /// Creates a signable request.
    public init(method: String, path: String, query: [QueryItem] = [], headers: [Header] = [], body: [UInt8] = []) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
    }

    /// The value of the first header named `name`, compared case-insensitively.
    public func headerValue(_ name: String) -> String? {
        let lowered = name.lowercased()
        return headers.first { $0.name.lowercased() == lowered }?.value
    }
}

/// The result of signing: the headers to send and the query string that goes on the wire.
public struct SignedRequest: Sendable, Equatable {
    /// All headers to send, in signing order, values trimmed as signed, `Authorization` last.
    public var headers: [SignableRequest.Header]
    /// The canonical query string, which is also the query string to send (without `?`).
    public var queryString: String
    /// The full `Authorization` header value.
    public var authorization: String
    /// The `SignedHeaders` list (lower-case names joined by `;`).
    public var signedHeaders: String
}

/// Huawei Cloud's `SDK-HMAC-SHA256` request signing, byte-compatible with the official SDK's
/// `Signer` (huaweicloudsdkcore 3.1.219).
///
/// Signing is a pure function of the request, the credentials and the date: the canonical request
/// (method, canonical URI, canonical query, canonical headers, signed-header list, body hash) is
/// hashed into a string to sign, which is HMAC-SHA256'd with the secret key. See
/// `shared/spec/signing.md` for the algorithm and the known-answer vectors it is pinned to.
public enum SDKSigner {
    /// The algorithm name that opens the `Authorization` header.
    public static let algorithm = "SDK-HMAC-SHA256"
    /// Header carrying the signing time (`yyyyMMdd'T'HHmmss'Z'`).
    public static let dateHeader = "X-Sdk-Date"
    /// Header whose value replaces the body hash (the SDK sets `UNSIGNED-PAYLOAD` for non-JSON bodies).
    public static let contentHashHeader = "X-Sdk-Content-Sha256"
    /// SHA-256 of the empty string, the body hash of a request without a body.
    public static let emptyBodyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    /// Signs `request` the way the official SDK does.
    ///
    /// - Parameters:
    ///   - request: the request; `Host` must be among its headers or be given as `host`.
    ///   - host: added as the `Host` header when the request has none.
    ///   - date: the signing time, used only when the request carries no `X-Sdk-Date`.
    /// - Returns: the headers to send (with `X-Sdk-Date`, `Host` and `Authorization`) and the wire query.
    public static func sign(
        _ request: SignableRequest,
        credentials: AccessKeyCredentials,
        host: String? = nil,
        date: Date = Date()
    ) -> SignedRequest {
        var headers = request.headers
        // The SDK looks the content type up by its exact name (`header_params.get("Content-Type")`).
        if let contentType = request.headers.first(where: { $0.name == "Content-Type" })?.value,
            !contentType.hasPrefix("application/json"), !contentType.hasPrefix("application/bson")
        {
            headers.append(.init(contentHashHeader, "UNSIGNED-PAYLOAD"))
        }
        var sdkDate = request.headerValue(dateHeader)
        if sdkDate == nil {
            let formatted = SDKDate.format(date)
            headers.append(.init(dateHeader, formatted))
            sdkDate = formatted
        }
        if let host, request.headerValue("Host") == nil {
            headers.append(.init("Host", host))
        }
        for index in headers.indices {
            headers[index].value = trimHeaderValue(headers[index].value)
        }
        let signed = SignableRequest(method: request.method, path: request.path, query: request.query, headers: headers, body: request.body)
        let names = signedHeaderNames(signed.headers)
        let signature = signature(of: signed, signedHeaderNames: names, date: sdkDate ?? "", secretKey: credentials.secretKey)
        let signedList = names.joined(separator: ";")
        let authorization = "\(algorithm) Access=\(credentials.accessKey), SignedHeaders=\(signedList), Signature=\(signature)"
        headers.append(.init("Authorization", authorization))
        return SignedRequest(
            headers: headers,
            queryString: canonicalQueryString(request.query),
            authorization: authorization,
            signedHeaders: signedList
        )
    }

    /// The lower-case hex HMAC-SHA256 signature of `request` over the given signed headers.
    ///
    /// Header values are trimmed here, so a verifier can pass the values it received as they are.
    public static func signature(of request: SignableRequest, signedHeaderNames names: [String], date: String, secretKey: String) -> String {
        let canonical = canonicalRequest(request, signedHeaderNames: names)
        let toSign = stringToSign(canonicalRequest: canonical, date: date)
        let key = SymmetricKey(data: Array(secretKey.utf8))
        let mac = HMAC<SHA256>.authenticationCode(for: Array(toSign.utf8), using: key)
        return Hex.encode(mac)
    }

    /// `SDK-HMAC-SHA256` `\n` date `\n` hex(SHA-256(canonical request)).
    public static func stringToSign(canonicalRequest: String, date: String) -> String {
        "\(algorithm)\n\(date)\n\(Hex.encode(SHA256.hash(data: Array(canonicalRequest.utf8))))"
    }

    /// The six-line canonical request.
    public static func canonicalRequest(_ request: SignableRequest, signedHeaderNames names: [String]) -> String {
        var lowered: [String: String] = [:]
        for header in request.headers {
            // The SDK keeps the last value for a name; HTTP clients rarely repeat signed headers.
            lowered[header.name.lowercased()] = trimHeaderValue(header.value)
        }
        var canonicalHeaders = ""
        for name in names {
            canonicalHeaders += "\(name):\(lowered[name] ?? "")\n"
        }
        return [
            request.method.uppercased(),
            canonicalURI(request.path),
            canonicalQueryString(request.query),
            canonicalHeaders,
            names.joined(separator: ";"),
            payloadHash(request),
        ].joined(separator: "\n")
    }

    /// Every header whose name has no `_`, lower-cased and sorted.
    public static func signedHeaderNames(_ headers: [SignableRequest.Header]) -> [String] {
        headers.map { $0.name.lowercased() }.filter { !$0.contains("_") }.sorted(by: codePointLess)
    }

    /// The body hash line: empty-body hash, the `X-Sdk-Content-Sha256` value, or hex SHA-256.
    static func payloadHash(_ request: SignableRequest) -> String {
        if request.body.isEmpty { return emptyBodyHash }
        if let declared = request.headerValue(contentHashHeader), !declared.isEmpty { return declared }
        return Hex.encode(SHA256.hash(data: request.body))
    }

    /// The path percent-decoded, each `/`-separated segment re-encoded, always ending in `/`.
    public static func canonicalURI(_ path: String) -> String {
        let decoded = PercentEncoding.decode(path)
        var result = decoded.split(separator: "/", omittingEmptySubsequences: false)
            .map { PercentEncoding.encode(String($0)) }
            .joined(separator: "/")
        if !result.hasSuffix("/") { result += "/" }
        return result
    }

    /// Parameters sorted by name then value (code-point order), each `enc(name)=enc(value)`, joined by `&`.
    public static func canonicalQueryString(_ items: [SignableRequest.QueryItem]) -> String {
        items.sorted { lhs, rhs in
            // Swift's `==` treats canonically equivalent strings (é and e + U+0301) as equal; Python
            // does not, so names are compared by code points here too.
            if !lhs.name.unicodeScalars.elementsEqual(rhs.name.unicodeScalars) { return codePointLess(lhs.name, rhs.name) }
            return codePointLess(lhs.value, rhs.value)
        }
        .map { "\(PercentEncoding.encode($0.name))=\(PercentEncoding.encode($0.value))" }
        .joined(separator: "&")
    }

    /// Python's `str.strip()`: removes leading and trailing whitespace, as the SDK does.
    public static func trimHeaderValue(_ value: String) -> String {
        let scalars = value.unicodeScalars
        guard let first = scalars.firstIndex(where: { !isPythonWhitespace($0) }),
            let last = scalars.lastIndex(where: { !isPythonWhitespace($0) })
        else { return "" }
        return String(scalars[first...last])
    }

    static func isPythonWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        if (0x1C...0x1F).contains(scalar.value) { return true }
        return scalar.properties.isWhitespace
    }

    /// Compares two strings by Unicode code points, as Python does (Swift's `<` is not that order).
    static func codePointLess(_ lhs: String, _ rhs: String) -> Bool {
        lhs.unicodeScalars.lexicographicallyPrecedes(rhs.unicodeScalars) { $0.value < $1.value }
    }
}

/// Lower-case hexadecimal encoding.
enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func encode<D: Digest>(_ digest: D) -> String {
        digest.withUnsafeBytes { encode($0) }
    }

    static func encode(_ code: HashedAuthenticationCode<SHA256>) -> String {
        code.withUnsafeBytes { encode($0) }
    }
}
