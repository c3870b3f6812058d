import ECSSigning
import Foundation

/// The Swift side of the official-SDK signing oracle (`Tests/SigningOracle/oracle.py`).
///
/// Reads one JSON object per line on stdin and answers one per line on stdout:
/// `sign` returns our `Authorization` and wire query string, `verify` runs our verifier.
@main
struct SigningOraclePeer {
    struct Command: Decodable {
        var op: String
        var access_key: String?
        var secret_key: String?
        var credentials: [String: String]?
        var now: String?
        var max_skew_seconds: Double?
        var method: String?
        var host: String?
        var path: String?
        var query: [[String]]?
        var query_string: String?
        var headers: [[String]]?
        var body_b64: String?
    }

    static func main() {
        while let line = readLine(strippingNewline: true) {
            guard !line.isEmpty else { continue }
            let answer: [String: Any]
            do {
                let command = try JSONDecoder().decode(Command.self, from: Data(line.utf8))
                if command.op == "quit" { return }
                answer = try handle(command)
            } catch {
                answer = ["error": "\(error)"]
            }
            let data = (try? JSONSerialization.data(withJSONObject: answer, options: [.sortedKeys])) ?? Data("{}".utf8)
            // Unbuffered: the oracle waits for each answer line before sending the next command.
            FileHandle.standardOutput.write(data + Data("\n".utf8))
        }
    }

    static func handle(_ command: Command) throws -> [String: Any] {
        let headers = (command.headers ?? []).compactMap { pair -> SignableRequest.Header? in
            pair.count == 2 ? .init(pair[0], pair[1]) : nil
        }
        let body = command.body_b64.flatMap { Data(base64Encoded: $0) }.map { [UInt8]($0) } ?? []
        switch command.op {
        case "sign":
            let request = SignableRequest(
                method: command.method ?? "GET",
                path: command.path ?? "/",
                query: (command.query ?? []).compactMap { $0.count == 2 ? .init($0[0], $0[1]) : nil },
                headers: headers,
                body: body
            )
            let credentials = AccessKeyCredentials(accessKey: command.access_key ?? "", secretKey: command.secret_key ?? "")
            let signed = SDKSigner.sign(request, credentials: credentials, host: command.host)
            return ["authorization": signed.authorization, "query_string": signed.queryString]
        case "verify":
            let keys = command.credentials ?? [:]
            let verifier = SignatureVerifier(maxClockSkew: command.max_skew_seconds ?? 900) { keys[$0] }
            let now = command.now.flatMap(SDKDate.parse) ?? Date()
            do {
                try verifier.verify(
                    method: command.method ?? "GET",
                    path: command.path ?? "/",
                    rawQuery: command.query_string ?? "",
                    headers: headers,
                    body: body,
                    now: now
                )
                return ["ok": true]
            } catch {
                return ["ok": false, "reason": error.description]
            }
        default:
            return ["error": "unknown op \(command.op)"]
        }
    }
}
