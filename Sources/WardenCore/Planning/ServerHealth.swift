import ECSAPI

/// What the server details say is wrong with a server, whatever its age: the `ERROR` and
/// `UNKNOWN` statuses, a `host_status` of `DOWN`, `MAINTENANCE` or `UNKNOWN` (the reference's
/// values besides `UP` and blank), and a `fault`. Pure.
public enum ServerHealth {
    /// One problem of a server.
    public struct Problem: Sendable, Equatable, Codable {
        /// `status_error`, `status_unknown`, `host_down`, `host_maintenance`, `host_unknown`, `fault`:
        /// a closed set (the metric's `reason` label).
        public var reason: String
        /// What the details say, for people.
        public var detail: String
    }

    /// The reasons, in the order they are checked.
    public static let reasons = ["status_error", "status_unknown", "host_down", "host_maintenance", "host_unknown", "fault"]

    public static func problems(of server: Server) -> [Problem] {
        var problems: [Problem] = []
        switch server.status.rawValue.uppercased() {
        case "ERROR": problems.append(Problem(reason: "status_error", detail: "status ERROR"))
        case "UNKNOWN": problems.append(Problem(reason: "status_unknown", detail: "status UNKNOWN"))
        default: break
        }
        switch server.hostStatus?.uppercased() {
        case "DOWN": problems.append(Problem(reason: "host_down", detail: "host_status DOWN"))
        case "MAINTENANCE": problems.append(Problem(reason: "host_maintenance", detail: "host_status MAINTENANCE"))
        case "UNKNOWN": problems.append(Problem(reason: "host_unknown", detail: "host_status UNKNOWN"))
        default: break
        }
        if let fault = server.fault, fault.code != nil || fault.message != nil {
            let code = fault.code.map { "\($0)" } ?? "-"
            problems.append(Problem(reason: "fault", detail: "fault \(code): \(fault.message ?? "")".trimmingCharacters(in: .whitespaces)))
        }
        return problems
    }
}
