import Foundation
import Logging

/// Log lines for journald: `<N>` syslog priority prefixes (sd-daemon(3)) so `journalctl -p` works,
/// then the message and its metadata; or one JSON object per line.
public struct JournalLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    let label: String
    let json: Bool

    public init(label: String, level: Logger.Level, json: Bool) {
        self.label = label
        self.logLevel = level
        self.json = json
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }

    public func log(event: LogEvent) {
        var all = metadata
        if let extra = event.metadata { all.merge(extra) { _, new in new } }
        let line: String
        if json {
            var object: [String: String] = ["level": event.level.rawValue, "message": "\(event.message)", "logger": label]
            for (key, value) in all { object[key] = "\(value)" }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
            line = "<\(Self.priority(event.level))>" + String(decoding: data, as: UTF8.self)
        } else {
            let fields = all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            line = "<\(Self.priority(event.level))>\(event.level.rawValue): \(event.message)" + (fields.isEmpty ? "" : " \(fields)")
        }
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
