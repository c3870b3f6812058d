import ECSSigning
import Foundation

// The seeds disagree with themselves on types (`vcpus` "8" vs 8, `null` vs "" task states, numbers
// as strings). These wrappers decode every documented spelling instead of failing a whole page.

/// An integer the API may send as a number or as a numeric string.
@propertyWrapper
public struct LenientInt: Codable, Sendable, Hashable {
    public var wrappedValue: Int
    public init(wrappedValue: Int) { self.wrappedValue = wrappedValue }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode(Int.self) {
            wrappedValue = value
        } else if let value = try? container.decode(Double.self), value.rounded() == value, let integer = Int(exactly: value) {
            // `Int(exactly:)`, not `Int(_:)`: an integral value past Int's range (`1e20`) must not trap.
            wrappedValue = integer
        } else if let text = try? container.decode(String.self),
            let value = Int(text.trimmingCharacters(in: .whitespaces))
        {
            wrappedValue = value
        } else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "expected an integer or a numeric string")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(wrappedValue)
    }
}

/// An optional integer sent as a number, a numeric string, `""` or `null`.
@propertyWrapper
public struct LenientOptionalInt: Codable, Sendable, Hashable {
    public var wrappedValue: Int?
    public init(wrappedValue: Int?) { self.wrappedValue = wrappedValue }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            wrappedValue = nil
        } else if let value = try? container.decode(Int.self) {
            wrappedValue = value
        } else if let value = try? container.decode(Double.self), value.rounded() == value, let integer = Int(exactly: value) {
            // `Int(exactly:)`, not `Int(_:)`: an integral value past Int's range (`1e20`) must not trap.
            wrappedValue = integer
        } else if let text = try? container.decode(String.self) {
            wrappedValue = Int(text.trimmingCharacters(in: .whitespaces))
        } else {
            wrappedValue = nil
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(wrappedValue)
    }
}

/// An optional string where `null`, `""`, and a number are all accepted; `""` reads as nil.
/// Used for `OS-EXT-STS:task_state` (seed: `null` in JSON, `""` in prose) and similar fields.
@propertyWrapper
public struct BlankAsNil: Codable, Sendable, Hashable {
    public var wrappedValue: String?
    public init(wrappedValue: String?) { self.wrappedValue = wrappedValue }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            wrappedValue = nil
        } else if let text = try? container.decode(String.self) {
            wrappedValue = text.isEmpty ? nil : text
        } else if let number = try? container.decode(Double.self) {
            wrappedValue = LenientNumberText.render(number)
        } else if let flag = try? container.decode(Bool.self) {
            wrappedValue = String(flag)
        } else {
            wrappedValue = nil
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(wrappedValue)
    }
}

/// How `BlankAsNil` renders a number as text: integral values that fit in `Int` without a
/// fraction (`4`), others as Swift prints a `Double` (`1.5`, `1e+20`).
enum LenientNumberText {
    static func render(_ value: Double) -> String {
        if value.rounded() == value, let integer = Int(exactly: value) { return String(integer) }
        return String(value)
    }
}

/// An optional boolean that may arrive as `true`, `"true"`, `"True"`, `1` or `null`.
@propertyWrapper
public struct LenientOptionalBool: Codable, Sendable, Hashable {
    public var wrappedValue: Bool?
    public init(wrappedValue: Bool?) { self.wrappedValue = wrappedValue }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            wrappedValue = nil
        } else if let flag = try? container.decode(Bool.self) {
            wrappedValue = flag
        } else if let text = try? container.decode(String.self) {
            switch text.lowercased() {
            case "true", "1", "yes": wrappedValue = true
            case "false", "0", "no": wrappedValue = false
            default: wrappedValue = nil
            }
        } else if let number = try? container.decode(Int.self) {
            wrappedValue = number != 0
        } else {
            wrappedValue = nil
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(wrappedValue)
    }
}

/// A string-to-string map whose values may be strings, numbers, booleans or null (rendered as text;
/// nulls dropped). `metadata` and `os_extra_specs` are documented as strings but not always sent so.
@propertyWrapper
public struct LenientStringMap: Codable, Sendable, Hashable {
    public var wrappedValue: [String: String]
    public init(wrappedValue: [String: String]) { self.wrappedValue = wrappedValue }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            wrappedValue = [:]
            return
        }
        let raw = try container.decode([String: BlankAsNil].self)
        wrappedValue = raw.compactMapValues { $0.wrappedValue }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(wrappedValue)
    }
}

// Missing keys decode as nil / empty rather than failing, for the optional wrappers above.
// Each lenient field first tries the well-typed value straight from the keyed container (what the
// API sends almost always, and several times cheaper than decoding a wrapper through a nested
// decoder: a 1,000-server page has ~15,000 such fields), and falls back to the wrapper's lenient
// reading only when that fails.
extension KeyedDecodingContainer {
    public func decode(_ type: LenientOptionalInt.Type, forKey key: Key) throws -> LenientOptionalInt {
        if let number = try? decodeIfPresent(Int.self, forKey: key) { return LenientOptionalInt(wrappedValue: number) }
        return try decodeIfPresent(type, forKey: key) ?? LenientOptionalInt(wrappedValue: nil)
    }

    public func decode(_ type: BlankAsNil.Type, forKey key: Key) throws -> BlankAsNil {
        do {
            let text = try decodeIfPresent(String.self, forKey: key)
            return BlankAsNil(wrappedValue: text.flatMap { $0.isEmpty ? nil : $0 })
        } catch {
            return try decodeIfPresent(type, forKey: key) ?? BlankAsNil(wrappedValue: nil)
        }
    }

    public func decode(_ type: LenientOptionalBool.Type, forKey key: Key) throws -> LenientOptionalBool {
        if let flag = try? decodeIfPresent(Bool.self, forKey: key) { return LenientOptionalBool(wrappedValue: flag) }
        return try decodeIfPresent(type, forKey: key) ?? LenientOptionalBool(wrappedValue: nil)
    }

    public func decode(_ type: LenientStringMap.Type, forKey key: Key) throws -> LenientStringMap {
        if let map = try? decodeIfPresent([String: String].self, forKey: key) { return LenientStringMap(wrappedValue: map) }
        return try decodeIfPresent(type, forKey: key) ?? LenientStringMap(wrappedValue: [:])
    }
}

/// A closed set of known values plus `unknown(raw)`, so a value the API adds later never fails a
/// decode: `ServerStatus`, `JobStatus`, sale states.
public protocol OpenEnum: RawRepresentable, Codable, Sendable, Hashable where RawValue == String {
    /// Builds the value for `raw`, or the unknown case carrying it.
    init(rawValue: String)
}

extension OpenEnum {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        self.init(rawValue: (try? container.decode(String.self)) ?? "")
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// Parses every timestamp format the seeds use: `…Z` with 0, 3 or 6 fractional digits, zone-less
/// timestamps with microseconds (read as UTC), and numeric offsets such as `+08:00`.
public enum ECSTimestamp {
    /// Parses an ECS timestamp; nil when it is none of the documented forms.
    public static func parse(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 19 else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for byte in bytes[range] {
                guard byte >= 48, byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            return value
        }
        guard bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"),
            bytes[10] == UInt8(ascii: "T") || bytes[10] == UInt8(ascii: " "),
            bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":"),
            let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
            (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        var index = 19
        var fraction = 0.0
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            var scale = 0.1
            while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
                fraction += Double(bytes[index] - 48) * scale
                scale /= 10
                index += 1
            }
        }
        var offsetSeconds = 0
        if index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "Z"), UInt8(ascii: "z"):
                index += 1
            case UInt8(ascii: "+"), UInt8(ascii: "-"):
                let sign = bytes[index] == UInt8(ascii: "+") ? 1 : -1
                let rest = bytes[(index + 1)...].filter { $0 != UInt8(ascii: ":") }
                guard rest.count == 4, let value = Int(String(decoding: rest, as: UTF8.self)) else { return nil }
                offsetSeconds = sign * ((value / 100) * 3600 + (value % 100) * 60)
                index = bytes.count
            default:
                return nil
            }
        }
        guard index == bytes.count else { return nil }
        let days = Int(CivilTime.daysFromCivil(year: Int64(year), month: Int64(month), day: Int64(day)))
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offsetSeconds
        return Date(timeIntervalSince1970: TimeInterval(seconds) + fraction)
    }

    /// Formats as `yyyy-MM-dd'T'HH:mm:ss'Z'` (server `created`/`updated` style).
    public static func formatSeconds(_ date: Date) -> String {
        let c = CivilTime(epochSeconds: Int64(date.timeIntervalSince1970.rounded(.down)))
        return String(format: "%04lld-%02lld-%02lldT%02lld:%02lld:%02lldZ", c.year, c.month, c.day, c.hour, c.minute, c.second)
    }
}
