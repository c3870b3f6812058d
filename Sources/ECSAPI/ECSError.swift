import Foundation

/// Every failure of an ECS API call: what the API (or the network) said, and whether trying again
/// can help.
///
/// The API's error code (`Ecs.0114`, `Common.0024`, `APIGW.0301`, …) is the primary key: the seeds
/// warn that HTTP status codes "may not be accurate", and throttling may even arrive as HTTP 202.
public struct ECSError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The broad class of a failure, for callers that branch on it.
    public enum Kind: String, Sendable, Equatable {
        /// The API answered with an error (4xx/5xx or an error body on 2xx).
        case api
        /// Flow control: 429, `Common.1503`, 202 `Common.0024`, `Ecs.0603`.
        case throttled
        /// Credentials rejected: 401, invalid token, bad signature.
        case authentication
        /// The connection failed, was reset or closed before an answer.
        case transport
        /// No answer within the request timeout or the call's deadline.
        case timeout
        /// A 2xx answer whose body could not be decoded.
        case malformedResponse
        /// The client refused to send the request (bad input, bad configuration).
        case invalidRequest
    }

    /// The broad class of the failure.
    public var kind: Kind
    /// The HTTP status, when an answer arrived.
    public var httpStatus: Int?
    /// The API error code, e.g. `Ecs.0114`, `Common.0024`, `APIGW.0301`.
    public var code: String?
    /// The human-readable message.
    public var message: String
    /// The request id the API returned (`X-Request-Id` or `X-Openstack-Request-Id`).
    public var requestId: String?
    /// The operation that failed, e.g. `BatchStopServers`.
    public var operation: String
    /// True when the same call may succeed later (throttling, 5xx, dropped connections).
    public var isRetryable: Bool
    /// How many attempts were made before giving up.
    public var attempts: Int
    /// The delay the server asked for (`Retry-After`), when it said one.
    public var retryAfter: Duration?
    /// The IAM token a 401 rejected, so the client can drop it; cleared before the error leaves it.
    var rejectedToken: String?

    /// Creates an error.
    public init(
        kind: Kind,
        httpStatus: Int? = nil,
        code: String? = nil,
        message: String,
        requestId: String? = nil,
        operation: String,
        isRetryable: Bool,
        attempts: Int = 1,
        retryAfter: Duration? = nil
    ) {
        self.kind = kind
        self.httpStatus = httpStatus
        self.code = code
        self.message = message
        self.requestId = requestId
        self.operation = operation
        self.isRetryable = isRetryable
        self.attempts = attempts
        self.retryAfter = retryAfter
    }

    public var description: String {
        var parts = ["\(operation) failed"]
        if let httpStatus { parts.append("HTTP \(httpStatus)") }
        if let code { parts.append(code) }
        parts.append(message)
        if let requestId { parts.append("request \(requestId)") }
        if attempts > 1 { parts.append("after \(attempts) attempts") }
        return parts.joined(separator: ": ")
    }

    /// True when no answer arrived (connection lost, timeout): the cloud may have carried the call
    /// out. Any other failure is an answer that refused it.
    public var mayHaveBeenCarriedOut: Bool { kind == .transport || kind == .timeout }

    /// True for a "not found" answer (`Ecs.0114`, `Ecs.0614`, `Common.0011` for jobs, or HTTP 404).
    public var isNotFound: Bool {
        if let code, ["Ecs.0114", "Ecs.0614", "Common.0011"].contains(code) { return true }
        return httpStatus == 404
    }
}

/// Error codes with a meaning of their own to the client.
enum ErrorCodes {
    /// Flow control answered as HTTP 202.
    static let flowOverLimit = "Common.0024"
    /// API flow control (HTTP 429).
    static let apiFlowControl = "Common.1503"
    /// "The commands are being executed. Try again later." (HTTP 501).
    static let commandsBeingExecuted = "Ecs.0603"
    /// Invalid token (HTTP 401).
    static let invalidToken = "Common.0013"

    static let throttling: Set<String> = [flowOverLimit, apiFlowControl, commandsBeingExecuted]
}

/// The error bodies the seeds show, decoded into one shape.
///
/// - `{"error": {"code", "message", "details"}}` (ECS v1), including the seed example where code and
///   message are swapped;
/// - `{"error_code", "error_msg"}` (IAM and gateway style);
/// - `{"<faultName>": {"code": 404, "message": "…"}}` (OpenStack Nova faults);
/// - `{"code", "message"}` at the top level (job-query errors).
struct ErrorBody: Equatable {
    var code: String?
    var message: String?

    /// Larger 2xx bodies are data, never an error answer.
    static let largestErrorBody = 16 * 1024

    /// Decodes any known error shape; nil when the body holds none.
    static func decode(_ bytes: [UInt8]) -> ErrorBody? {
        guard !bytes.isEmpty,
            let object = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed]) as? [String: Any]
        else { return nil }
        return decode(object)
    }

    static func decode(_ object: [String: Any]) -> ErrorBody? {
        if let error = object["error"] as? [String: Any] {
            var body = ErrorBody(code: error["code"].flatMap(stringValue), message: error["message"].flatMap(stringValue))
            if body.code == nil, let details = error["details"] as? [[String: Any]] {
                body.code = details.lazy.compactMap { $0["code"].flatMap(stringValue) }.first
            }
            return body.orientedCodeFirst()
        }
        // A failed job carries `error_code` and `fail_reason` at the top level too: that is data,
        // not an error answer, so `error_code` alone counts only outside a job.
        if object["error_msg"] != nil || (object["error_code"] != nil && object["job_id"] == nil && object["status"] == nil) {
            return ErrorBody(
                code: object["error_code"].flatMap(stringValue),
                message: object["error_msg"].flatMap(stringValue)
            ).orientedCodeFirst()
        }
        if object.count == 1, let (_, value) = object.first, let fault = value as? [String: Any],
            fault["message"] != nil
        {
            // Nova fault: the numeric code repeats the HTTP status; it is no API error code.
            return ErrorBody(code: nil, message: fault["message"].flatMap(stringValue))
        }
        if object["job_id"] == nil, object["status"] == nil, let code = object["code"].flatMap(stringValue),
            looksLikeErrorCode(code)
        {
            return ErrorBody(code: code, message: object["message"].flatMap(stringValue))
        }
        return nil
    }

    /// Swaps code and message when the code is prose and the message is an error code (seed bug).
    func orientedCodeFirst() -> ErrorBody {
        if let code, let message, !ErrorBody.looksLikeErrorCode(code), ErrorBody.looksLikeErrorCode(message) {
            return ErrorBody(code: message, message: code)
        }
        return self
    }

    /// `Prefix.NNNN` such as `Ecs.0005`, `Common.0024`, `APIGW.0301`, `IMG.0001`.
    static func looksLikeErrorCode(_ text: String) -> Bool {
        guard let dot = text.firstIndex(of: "."), dot != text.startIndex else { return false }
        let prefix = text[..<dot]
        let digits = text[text.index(after: dot)...]
        return prefix.allSatisfy { $0.isLetter } && digits.count >= 3 && digits.allSatisfy { $0.isNumber }
    }

    private static func stringValue(_ any: Any) -> String? {
        switch any {
        case let string as String: return string
        case let number as NSNumber: return number.stringValue
        default: return nil
        }
    }
}
