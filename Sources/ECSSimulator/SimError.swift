/// An error the simulated API answers with: HTTP status, error code and message as in seed
/// Appendix A.2, and the body shape of the route family that raises it.
public struct SimError: Error, Sendable, Equatable {
    public var httpStatus: Int
    public var code: String
    public var message: String
    /// Which body shape to use.
    public var shape: Shape

    public enum Shape: Sendable, Equatable {
        /// `{"error": {"code", "message"}}` — ECS v1 routes.
        case ecs
        /// `{"error_code", "error_msg", "request_id"}` — the API gateway (authentication).
        case gateway
        /// `{"<fault>": {"code": <status>, "message"}}` — Nova routes.
        case nova(String)
    }

    public init(_ httpStatus: Int, _ code: String, _ message: String, shape: Shape = .ecs) {
        self.httpStatus = httpStatus
        self.code = code
        self.message = message
        self.shape = shape
    }

    /// The same error with another message.
    public func with(message: String) -> SimError {
        var copy = self
        copy.message = message
        return copy
    }

    static let requestError = SimError(400, "Ecs.0000", "Request error. Try again later or contact customer service.")
    static let quotaExceeded = SimError(400, "Ecs.0001", "Insufficient ECS quota. Contact customer service to increase quota.")
    static let forbidden = SimError(403, "Ecs.0003", "You do not have permission to perform this operation. Contact customer service.")
    static let invalidParameter = SimError(400, "Ecs.0005", "Invalid parameter values. Contact customer service.")
    static let projectMismatch = SimError(400, "Ecs.0023", "project_id in token mismatches with project_id in url.")
    static let flavorMissing = SimError(400, "Ecs.0029", "The flavor does not exist.")
    static let invalidState = SimError(
        400, "Ecs.0100", "The ECS status does not meet requirements. Make the ECS in the required status and try again.")
    static let serverMissing = SimError(404, "Ecs.0114", "The ECS does not exist.")
    static let batchTooLarge = SimError(400, "Ecs.0118", "The number of ECSs exceeds the maximum allowed limit.")
    static let flavorSoldOut = SimError(400, "Ecs.0319", "Insufficient resources for this flavor. Try another flavor.")
    static let busy = SimError(501, "Ecs.0603", "The commands are being executed. Try again later.")
    static let locked = SimError(400, "Ecs.0605", "ECS locked.")
    static let batchServerMissing = SimError(404, "Ecs.0614", "The ECS does not exist.")
    static let tooManyTags = SimError(400, "Ecs.0905", "The number of tags exceeds the maximum allowed limit.")
    static let tagCharset = SimError(400, "Ecs.0906", "Failed to comply with tag character set specifications.")
    static let duplicateTagKey = SimError(400, "Ecs.0908", "The tag key cannot be duplicate.")
    static let tooManyToCreate = SimError(400, "Ecs.0913", "The number of ECSs to be created exceeds the maximum allowed limit")
    static let nameTooLong = SimError(400, "Ecs.0914", "The length of the ECS name exceeds the maximum allowed limit.")
    static let nameInvalid = SimError(400, "Ecs.0915", "The ECS name contains invalid characters.")
    static let flowOverLimit = SimError(202, "Common.0024", "exceeds flow over limit")
    static let emptyBody = SimError(400, "Common.0002", "The request body cannot be left blank.")
    static let invalidJob = SimError(400, "Common.0011", "Failed to query system tasks.")
    static let invalidToken = SimError(401, "Common.0013", "Invalid token.")
    /// Seed A.2 gives `Common.0001` HTTP 500, and only 500.
    static let systemException = SimError(500, "Common.0001", "A system exception occurred. Try again later or contact customer service.")
    static let apiFlowControl = SimError(429, "Common.1503", "Api flow control Error because too many APIs are being executed. Try again later.")
    /// HTTP 503 (seed S1 §10.1: "The system is currently unavailable."). A.2 lists no error code
    /// with 503, so none is invented: the simulator's choice is the gateway shape with `error_msg`
    /// and `request_id` only (docs/simulator.md, assumptions).
    static let unavailable = SimError(503, "", "Service unavailable. Try again later.", shape: .gateway)
    /// A path (or method) no API answers: HTTP 404, "The server cannot find the page requested"
    /// (seed S1 §10.1, A.1). No A.2 code means "no such API" (`Ecs.0000` is a 400 "Request error"),
    /// so the simulator answers as the API gateway in front of the service would, with
    /// `APIGW.0101` — an assumption, like `APIGW.0301` for authentication (docs/simulator.md).
    static let routeMissing = SimError(404, "APIGW.0101", "The API does not exist or has not been published in the environment.", shape: .gateway)

    /// The `fail_reason` of a sub-job failed with `code`: the code's error message of seed A.2
    /// for the codes a start/stop sub-job can fail with, else a generic sentence naming the code.
    static func subJobFailureMessage(code: String) -> String {
        switch code {
        case busy.code: return busy.message
        case locked.code: return locked.message
        case invalidState.code: return invalidState.message
        case flavorSoldOut.code: return flavorSoldOut.message
        case "Ecs.0226": return "Failed to start."
        case "Ecs.0227": return "Failed to reboot."
        case "Ecs.0611": return "Batch operation failed."
        case systemException.code: return systemException.message
        default: return "The sub-job failed (\(code))."
        }
    }

    /// An AK/SK signature failure at the gateway.
    static func signature(_ reason: String) -> SimError {
        SimError(401, "APIGW.0301", "Incorrect IAM authentication information: \(reason)", shape: .gateway)
    }

    /// A Nova-route error in the upstream fault shape.
    static func nova(_ status: Int, _ message: String) -> SimError {
        let fault: String
        switch status {
        case 400: fault = "badRequest"
        case 403: fault = "forbidden"
        case 404: fault = "itemNotFound"
        case 409: fault = "conflictingRequest"
        case 413, 429: fault = "overLimit"
        default: fault = "computeFault"
        }
        return SimError(status, "", message, shape: .nova(fault))
    }

    /// The wire body of this error.
    func body(requestId: String) -> [UInt8] {
        var json = JSONWriter()
        switch shape {
        case .ecs:
            json.object { json in
                json.key("error")
                json.object { json in
                    json.field("code", code)
                    json.field("message", message)
                }
            }
        case .gateway:
            json.object { json in
                if !code.isEmpty { json.field("error_code", code) }
                json.field("error_msg", message)
                json.field("request_id", requestId)
            }
        case .nova(let fault):
            json.object { json in
                json.key(fault)
                json.object { json in
                    json.field("code", httpStatus)
                    json.field("message", message)
                }
            }
        }
        return json.bytes
    }
}
