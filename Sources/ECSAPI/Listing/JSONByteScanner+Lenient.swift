import Foundation

// The lenient readings of `LenientDecoding.swift` (`BlankAsNil`, `LenientOptionalInt`,
// `LenientOptionalBool`), reproduced value for value over the scanner: the same JSON gives the
// same Swift value on the fast listing path as through `JSONDecoder` and the wrappers.
extension JSONByteScanner {
    /// `BlankAsNil`: a string (`""` reads as nil), `null`, a number rendered as text (integral
    /// values without a fraction), a boolean as `true`/`false`; an object or array reads as nil.
    mutating func blankAsNil(depth: Int) throws(ServerListingDecodingError) -> String? {
        switch try peek() {
        case UInt8(ascii: "\""):
            let raw = try scanString()
            return raw.count == 0 ? nil : string(raw)
        case UInt8(ascii: "n"):
            try scanNull()
            return nil
        case UInt8(ascii: "t"), UInt8(ascii: "f"):
            return String(try scanBool())
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            try skipValue(depth: depth)
            return nil
        default:
            return ReferenceNumber.double(text(try scanNumber())).map(LenientNumberText.render)
        }
    }

    /// `LenientOptionalInt`: an integral number, a numeric string (spaces trimmed), else nil.
    mutating func lenientInt(depth: Int) throws(ServerListingDecodingError) -> Int? {
        switch try peek() {
        case UInt8(ascii: "\""):
            let text = string(try scanString())
            return Int(text.trimmingCharacters(in: .whitespaces))
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            let number = try scanNumber()
            if let plain = plainInteger(number) { return plain }
            // Then as `LenientOptionalInt` does: an Int, else a whole Double.
            let literal = text(number)
            if let value = ReferenceNumber.int(literal) { return value }
            guard let value = ReferenceNumber.double(literal), value.rounded() == value else { return nil }
            return Int(exactly: value)
        default:
            try skipValue(depth: depth)
            return nil
        }
    }

    /// `LenientOptionalBool`: a boolean, `"true"`/`"1"`/`"yes"` and their opposites (any case),
    /// an integral number (non-zero is true), else nil.
    mutating func lenientBool(depth: Int) throws(ServerListingDecodingError) -> Bool? {
        switch try peek() {
        case UInt8(ascii: "t"), UInt8(ascii: "f"):
            return try scanBool()
        case UInt8(ascii: "\""):
            switch string(try scanString()).lowercased() {
            case "true", "1", "yes": return true
            case "false", "0", "no": return false
            default: return nil
            }
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            let number = try scanNumber()
            return (plainInteger(number) ?? ReferenceNumber.int(text(number))).map { $0 != 0 }
        default:
            try skipValue(depth: depth)
            return nil
        }
    }

    /// A string or `null` (nil); anything else is a type mismatch, reported as nil plus false.
    mutating func optionalString(depth: Int) throws(ServerListingDecodingError) -> (value: String?, wellTyped: Bool) {
        switch try peek() {
        case UInt8(ascii: "\""): return (string(try scanString()), true)
        case UInt8(ascii: "n"):
            try scanNull()
            return (nil, true)
        default:
            try skipValue(depth: depth)
            return (nil, false)
        }
    }

    /// The value of a number written as plain digits (`-12`, `4096`) when it fits in `Int`: the
    /// spelling of nearly every number the loops read, read here without Foundation.
    func plainInteger(_ number: RawJSONNumber) -> Int? {
        var position = number.start
        let negative = bytes[position] == UInt8(ascii: "-")
        if negative { position += 1 }
        guard number.end - position <= 18 else { return nil }
        var magnitude = 0
        while position < number.end {
            let byte = bytes[position]
            guard Self.isDigit(byte) else { return nil }
            magnitude = magnitude * 10 + Int(byte - UInt8(ascii: "0"))
            position += 1
        }
        return negative ? -magnitude : magnitude
    }
}

/// Numbers in any other spelling (`4096.0`, `1e3`, `1e-400`, 20 digits) are rare and Foundation's
/// readings of them are particular (`1e-400` is the Int 0 but no Double, `1e-100` a Double but no
/// Int), so they are read by `JSONDecoder` itself, one literal at a time: the same answer by
/// construction.
enum ReferenceNumber {
    static func int(_ literal: String) -> Int? {
        try? JSONDecoder().decode(Int.self, from: Data(literal.utf8))
    }

    static func double(_ literal: String) -> Double? {
        try? JSONDecoder().decode(Double.self, from: Data(literal.utf8))
    }
}
