import Foundation

/// One call of the control API as `ctl` makes it: a method, a path whose segments are
/// percent-encoded, query items, an optional JSON body.
public struct CtlRequest: Sendable, Equatable {
    public enum Method: String, Sendable {
        case get = "GET"
        case post = "POST"
        case delete = "DELETE"
    }

    public var method: Method
    /// Path segments after `/v1/`, each encoded on its own (a `/` inside one stays inside it).
    public var segments: [String]
    public var query: [(name: String, value: String)]
    /// The JSON body (sorted keys), when there is one.
    public var body: Data?

    public init(_ method: Method, _ segments: [String], query: [(name: String, value: String)] = [], body: [String: String]? = nil) {
        self.method = method
        self.segments = segments
        self.query = query
        self.body = body.flatMap { try? JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]) }
    }

    /// A request whose body is an encoded value.
    public init(_ method: Method, _ segments: [String], json value: some Encodable) throws {
        self.init(method, segments)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        body = try encoder.encode(value)
    }

    /// Calls other than GET change something and need the bearer token.
    public var isMutating: Bool { method != .get }

    /// `/v1/a/b%2Fc?x=1%202`: the request target, every segment and query value percent-encoded.
    public var target: String {
        let path = "/v1/" + segments.map(CtlPercentEncoding.encode).joined(separator: "/")
        guard !query.isEmpty else { return path }
        return path + "?" + query.map { "\(CtlPercentEncoding.encode($0.name))=\(CtlPercentEncoding.encode($0.value))" }.joined(separator: "&")
    }

    public static func == (a: CtlRequest, b: CtlRequest) -> Bool {
        a.method == b.method && a.segments == b.segments && a.body == b.body && a.query.map { "\($0.name)=\($0.value)" } == b.query.map { "\($0.name)=\($0.value)" }
    }
}

/// RFC 3986 percent-encoding: everything but the unreserved characters, byte by byte in UTF-8.
public enum CtlPercentEncoding {
    public static func encode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }
}
