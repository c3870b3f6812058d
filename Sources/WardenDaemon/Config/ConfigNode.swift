import Foundation
import Yams

/// A configuration problem, located: file, line, column and the field's path.
public struct ConfigError: Error, CustomStringConvertible, Equatable, Sendable {
    public var file: String
    public var line: Int?
    public var column: Int?
    /// The dotted path of the field, e.g. `schedules.office.periods[0].start`.
    public var field: String
    public var message: String

    public var description: String {
        var location = file
        if let line { location += ":\(line)" }
        if let column { location += ":\(column)" }
        return field.isEmpty ? "\(location): \(message)" : "\(location): \(field): \(message)"
    }
}

/// Several configuration problems, all reported at once.
public struct ConfigErrors: Error, CustomStringConvertible, Sendable {
    public var errors: [ConfigError]
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}

/// A YAML node with its path and position, read by typed accessors that record every problem
/// (wrong type, unknown key, bad value) with file, line and field instead of stopping at the first.
final class ConfigNode {
    let node: Node?
    let path: String
    let reporter: ConfigReporter

    init(_ node: Node?, path: String, reporter: ConfigReporter) {
        self.node = node
        self.path = path
        self.reporter = reporter
    }

    var exists: Bool { node != nil }
    var mark: Mark? { node?.mark }

    func fail(_ message: String) {
        reporter.fail(path: path, mark: mark, message)
    }

    private func child(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// The mapping's value for `key` (absent → a node that does not exist).
    subscript(_ key: String) -> ConfigNode {
        guard case .mapping(let mapping)? = node else { return ConfigNode(nil, path: child(key), reporter: reporter) }
        let value = mapping.first { $0.key.string == key }?.value
        return ConfigNode(value, path: child(key), reporter: reporter)
    }

    /// Reports keys of this mapping that are not in `known` (typos), with a suggestion.
    func allowOnly(_ known: [String]) {
        guard let node else { return }
        guard case .mapping(let mapping) = node else {
            fail("expected a mapping (key: value)")
            return
        }
        for (key, _) in mapping {
            guard let name = key.string, !known.contains(name) else { continue }
            let suggestion = known.min { Self.distance($0, name) < Self.distance($1, name) }
            var message = "unknown key '\(name)'"
            if let suggestion, Self.distance(suggestion, name) <= max(2, name.count / 3) { message += " (did you mean '\(suggestion)'?)" }
            reporter.fail(path: child(name), mark: key.mark, message)
        }
    }

    /// The keys of a mapping, in order.
    var keys: [String] {
        guard case .mapping(let mapping)? = node else { return [] }
        return mapping.compactMap { $0.key.string }
    }

    /// The (key, value) pairs of a mapping in file order: one pass, where looking each key up
    /// again would make a long mapping quadratic (20,000 schedules took 97 s).
    var entries: [(key: String, node: ConfigNode)] {
        guard case .mapping(let mapping)? = node else { return [] }
        return mapping.compactMap { pair in pair.key.string.map { ($0, ConfigNode(pair.value, path: child($0), reporter: reporter)) } }
    }

    /// The items of a sequence.
    var items: [ConfigNode] {
        guard let node else { return [] }
        guard case .sequence(let sequence) = node else {
            fail("expected a list")
            return []
        }
        return sequence.enumerated().map { ConfigNode($1, path: "\(path)[\($0)]", reporter: reporter) }
    }

    /// True when the node is a single value.
    var isScalar: Bool {
        if case .scalar? = node { return true }
        return false
    }

    /// True when the node is a sequence.
    var isSequence: Bool {
        if case .sequence? = node { return true }
        return false
    }

    var scalar: String? {
        guard let node else { return nil }
        guard case .scalar(let scalar) = node else {
            fail("expected a single value")
            return nil
        }
        return scalar.string
    }

    func string(default value: String? = nil) -> String? {
        scalar ?? value
    }

    func requiredString() -> String? {
        guard exists else {
            fail("is required")
            return nil
        }
        guard let value = scalar, !value.isEmpty else {
            fail("must not be empty")
            return nil
        }
        return value
    }

    func bool(default value: Bool) -> Bool {
        guard let text = scalar else { return value }
        switch text.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default:
            fail("'\(text)' is not true or false")
            return value
        }
    }

    func int(default value: Int, range: ClosedRange<Int>? = nil) -> Int {
        guard let text = scalar else { return value }
        guard let parsed = Int(text) else {
            fail("'\(text)' is not a whole number")
            return value
        }
        if let range, !range.contains(parsed) {
            fail("\(parsed) is outside \(range.lowerBound)...\(range.upperBound)")
            return value
        }
        return parsed
    }

    func double(default value: Double, range: ClosedRange<Double>? = nil) -> Double {
        guard let text = scalar else { return value }
        var cleaned = text.trimmingCharacters(in: .whitespaces)
        var scale = 1.0
        if cleaned.hasSuffix("%") {
            cleaned.removeLast()
            scale = 0.01
        }
        guard let parsed = Double(cleaned).map({ $0 * scale }), parsed.isFinite else {
            fail("'\(text)' is not a number")
            return value
        }
        if let range, !range.contains(parsed) {
            fail("\(text) is outside \(range.lowerBound)...\(range.upperBound)")
            return value
        }
        return parsed
    }

    /// The longest duration any key takes: a year (every number the daemon computes from one stays
    /// far from the limits of its integer and date types).
    static let longestDuration: TimeInterval = 366 * 86_400

    /// A duration: `90s`, `5m`, `2h`, `7d`, `1h30m` or plain seconds, within `range`.
    func duration(default value: TimeInterval, range: ClosedRange<TimeInterval> = 0...ConfigNode.longestDuration) -> TimeInterval {
        guard let text = scalar else { return value }
        guard let parsed = Self.parseDuration(text), parsed.isFinite, parsed >= 0 else {
            fail("'\(text)' is not a duration (use e.g. 30s, 5m, 2h, 7d)")
            return value
        }
        guard range.contains(parsed) else {
            fail("\(text) is outside \(Self.describe(range.lowerBound))...\(Self.describe(range.upperBound))")
            return value
        }
        return parsed
    }

    /// `90s`, `10m`, `2h`, `366d`: a bound as a person writes it.
    static func describe(_ seconds: TimeInterval) -> String {
        for (unit, size) in [("d", 86_400.0), ("h", 3600.0), ("m", 60.0)] where seconds >= size && seconds.truncatingRemainder(dividingBy: size) == 0 {
            return "\(Int(seconds / size))\(unit)"
        }
        return seconds == seconds.rounded() ? "\(Int(seconds))s" : "\(seconds)s"
    }

    static func parseDuration(_ text: String) -> TimeInterval? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let seconds = Double(trimmed) { return seconds }
        var total = 0.0
        var number = ""
        var sawUnit = false
        for character in trimmed {
            if character.isNumber || character == "." {
                number.append(character)
                continue
            }
            guard let value = Double(number) else { return nil }
            switch character {
            case "s": total += value
            case "m": total += value * 60
            case "h": total += value * 3600
            case "d": total += value * 86_400
            case "w": total += value * 7 * 86_400
            default: return nil
            }
            number = ""
            sawUnit = true
        }
        return number.isEmpty && sawUnit ? total : nil
    }

    /// Levenshtein distance, for "did you mean".
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a)
        let b = Array(b)
        guard !a.isEmpty else { return b.count }
        guard !b.isEmpty else { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}

/// Collects the problems of one file.
final class ConfigReporter {
    let file: String
    private(set) var errors: [ConfigError] = []

    init(file: String) {
        self.file = file
    }

    func fail(path: String, mark: Mark?, _ message: String) {
        errors.append(ConfigError(file: file, line: mark?.line, column: mark?.column, field: path, message: message))
    }
}
