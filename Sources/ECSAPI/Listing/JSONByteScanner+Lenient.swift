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
            guard let value = double(try scanNumber()) else { return nil }
            return LenientNumberText.render(value)
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
            if let exact = exactInteger(number) { return exact }
            guard let value = double(number), value.rounded() == value else { return nil }
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
            return exactInteger(try scanNumber()).map { $0 != 0 }
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

    /// The number as a `Double` when `JSONDecoder` reads it as one: not when it overflows to an
    /// infinity, nor when a non-zero number underflows to zero.
    func double(_ number: RawJSONNumber) -> Double? {
        guard let value = Double(text(number)), value.isFinite else { return nil }
        if value == 0 {
            var position = number.start
            while position < number.end, bytes[position] | 0x20 != UInt8(ascii: "e") {
                if bytes[position] >= UInt8(ascii: "1"), bytes[position] <= UInt8(ascii: "9") { return nil }
                position += 1
            }
        }
        return value
    }

    /// The value of a number when it is an integer that fits in `Int` exactly, whatever its
    /// spelling (`12`, `12.0`, `1.2e1`) — what `JSONDecoder` gives for an `Int`.
    func exactInteger(_ number: RawJSONNumber) -> Int? {
        var position = number.start
        let negative = bytes[position] == UInt8(ascii: "-")
        if negative { position += 1 }
        // The significant digits and where the decimal point falls among them.
        var digits: [UInt8] = []
        var pointAt = 0
        var seenPoint = false
        while position < number.end {
            let byte = bytes[position]
            if Self.isDigit(byte) {
                digits.append(byte - UInt8(ascii: "0"))
                if !seenPoint { pointAt += 1 }
            } else if byte == UInt8(ascii: ".") {
                seenPoint = true
            } else {
                break
            }
            position += 1
        }
        if position < number.end {
            // An exponent: `e`, an optional sign, digits (bounded: a huge one is never an Int).
            position += 1
            var exponentNegative = false
            if bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") {
                exponentNegative = bytes[position] == UInt8(ascii: "-")
                position += 1
            }
            var exponent = 0
            while position < number.end {
                exponent = min(exponent * 10 + Int(bytes[position] - UInt8(ascii: "0")), 10_000)
                position += 1
            }
            pointAt += exponentNegative ? -exponent : exponent
        }
        // Digits past the point must all be zero.
        for (offset, digit) in digits.enumerated() where offset >= max(pointAt, 0) && digit != 0 { return nil }
        guard pointAt > 0 else { return 0 }
        var magnitude: UInt64 = 0
        for offset in 0..<pointAt {
            let digit = offset < digits.count ? UInt64(digits[offset]) : 0
            let (times10, overflowA) = magnitude.multipliedReportingOverflow(by: 10)
            let (sum, overflowB) = times10.addingReportingOverflow(digit)
            if overflowA || overflowB { return nil }
            magnitude = sum
        }
        if negative {
            if magnitude == UInt64(Int.max) + 1 { return Int.min }
            return magnitude <= UInt64(Int.max) ? -Int(magnitude) : nil
        }
        return magnitude <= UInt64(Int.max) ? Int(magnitude) : nil
    }
}
