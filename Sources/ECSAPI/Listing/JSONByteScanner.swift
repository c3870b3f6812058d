/// Why a server listing page could not be read, and where.
///
/// The fast listing decoder throws it; `ECSClient` wraps it into the same non-retryable
/// `malformedResponse` `ECSError` that a failed `JSONDecoder` decode gives.
public struct ServerListingDecodingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The byte offset in the page at which reading stopped.
    public var offset: Int
    /// What was wrong there.
    public var reason: String

    /// Creates an error.
    public init(offset: Int, reason: String) {
        self.offset = offset
        self.reason = reason
    }

    public var description: String { "byte \(offset): \(reason)" }
}

/// A string as it stands in the page: the bytes between its quotes, and whether they hold escapes.
struct RawJSONString {
    var start: Int
    var end: Int
    var escaped: Bool

    var count: Int { end - start }
}

/// A number as it stands in the page (already checked against the JSON grammar).
struct RawJSONNumber {
    var start: Int
    var end: Int
}

/// A strict, allocation-free reader of JSON over the bytes of an answer.
///
/// It checks everything it passes over, the values it skips included — the grammar, string escapes
/// and surrogate pairs, control characters, UTF-8, nesting up to 512 levels (the limit of
/// Foundation's decoder) — so a page it accepts is valid JSON. It is stricter than Foundation's
/// `JSONDecoder`, which accepts trailing commas and does not look inside values it skips: where the
/// two differ the page is an error here, never a different value.
struct JSONByteScanner {
    let bytes: UnsafeBufferPointer<UInt8>
    var index: Int
    /// Scratch space for unescaping, reused across strings.
    var scratch: [UInt8] = []

    /// Foundation's `JSONDecoder` refuses documents nested deeper than this (the top level is 1).
    static let maxDepth = 512

    init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
        // A UTF-8 byte order mark is accepted, as Foundation accepts it.
        index = bytes.count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF ? 3 : 0
    }

    func failure(_ reason: String) -> ServerListingDecodingError {
        ServerListingDecodingError(offset: index, reason: reason)
    }

    var isAtEnd: Bool { index >= bytes.count }

    @inline(__always)
    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    /// The next byte that is not whitespace, not consumed.
    @inline(__always)
    mutating func peek() throws(ServerListingDecodingError) -> UInt8 {
        skipWhitespace()
        guard index < bytes.count else { throw failure("unexpected end of the answer") }
        return bytes[index]
    }

    /// Consumes `byte` after optional whitespace.
    @inline(__always)
    mutating func expect(_ byte: UInt8, _ what: String) throws(ServerListingDecodingError) {
        guard try peek() == byte else { throw failure("expected \(what)") }
        index += 1
    }

    /// After the whole document: only whitespace may follow.
    mutating func expectEnd() throws(ServerListingDecodingError) {
        skipWhitespace()
        guard isAtEnd else { throw failure("unexpected bytes after the answer") }
    }

    // MARK: Objects and arrays

    /// Consumes `{`; true when the object has members.
    mutating func beginObject(depth: Int) throws(ServerListingDecodingError) -> Bool {
        try beginContainer(UInt8(ascii: "{"), closedBy: UInt8(ascii: "}"), depth: depth, "an object")
    }

    /// Reads a member's key and its colon.
    mutating func memberKey() throws(ServerListingDecodingError) -> RawJSONString {
        guard try peek() == UInt8(ascii: "\"") else { throw failure("expected a member name") }
        let key = try scanString()
        try expect(UInt8(ascii: ":"), "':' after a member name")
        return key
    }

    /// After a member's value: true when another member follows (`,`), false at `}`.
    mutating func nextMember() throws(ServerListingDecodingError) -> Bool {
        try next(closedBy: UInt8(ascii: "}"), "expected ',' or '}' in an object")
    }

    /// Consumes `[`; true when the array has elements.
    mutating func beginArray(depth: Int) throws(ServerListingDecodingError) -> Bool {
        try beginContainer(UInt8(ascii: "["), closedBy: UInt8(ascii: "]"), depth: depth, "an array")
    }

    /// After an element: true when another follows (`,`), false at `]`.
    mutating func nextElement() throws(ServerListingDecodingError) -> Bool {
        try next(closedBy: UInt8(ascii: "]"), "expected ',' or ']' in an array")
    }

    private mutating func beginContainer(_ open: UInt8, closedBy close: UInt8, depth: Int, _ what: String) throws(ServerListingDecodingError) -> Bool {
        guard depth <= Self.maxDepth else { throw failure("nested more than \(Self.maxDepth) levels deep") }
        try expect(open, what)
        if try peek() == close {
            index += 1
            return false
        }
        return true
    }

    private mutating func next(closedBy close: UInt8, _ expectation: String) throws(ServerListingDecodingError) -> Bool {
        let byte = try peek()
        guard byte == UInt8(ascii: ",") || byte == close else { throw failure(expectation) }
        index += 1
        return byte == UInt8(ascii: ",")
    }

    /// Passes over one value of any kind, checking it; `depth` is the level of its container.
    mutating func skipValue(depth: Int) throws(ServerListingDecodingError) {
        switch try peek() {
        case UInt8(ascii: "\""):
            _ = try scanString()
        case UInt8(ascii: "{"):
            var more = try beginObject(depth: depth + 1)
            while more {
                _ = try memberKey()
                try skipValue(depth: depth + 1)
                more = try nextMember()
            }
        case UInt8(ascii: "["):
            var more = try beginArray(depth: depth + 1)
            while more {
                try skipValue(depth: depth + 1)
                more = try nextElement()
            }
        case UInt8(ascii: "t"), UInt8(ascii: "f"):
            _ = try scanBool()
        case UInt8(ascii: "n"):
            try scanNull()
        default:
            _ = try scanNumber()
        }
    }

    // MARK: Literals

    mutating func scanBool() throws(ServerListingDecodingError) -> Bool {
        if matchLiteral("true") { return true }
        if matchLiteral("false") { return false }
        throw failure("invalid literal")
    }

    mutating func scanNull() throws(ServerListingDecodingError) {
        guard matchLiteral("null") else { throw failure("invalid literal") }
    }

    /// Consumes `null` when it is next; false (nothing consumed) otherwise.
    mutating func consumeNull() throws(ServerListingDecodingError) -> Bool {
        guard try peek() == UInt8(ascii: "n") else { return false }
        try scanNull()
        return true
    }

    private mutating func matchLiteral(_ literal: StaticString) -> Bool {
        let count = literal.utf8CodeUnitCount
        guard bytes.count - index >= count else { return false }
        let start = literal.utf8Start
        for offset in 0..<count where bytes[index + offset] != start[offset] { return false }
        index += count
        return true
    }

    // MARK: Numbers

    /// Reads a number, checked against the JSON grammar:
    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    mutating func scanNumber() throws(ServerListingDecodingError) -> RawJSONNumber {
        skipWhitespace()
        let start = index
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count, Self.isDigit(bytes[index]) else { throw failure("expected a value") }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else {
            skipDigits()
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard index < bytes.count, Self.isDigit(bytes[index]) else { throw failure("expected a digit after '.'") }
            skipDigits()
        }
        if index < bytes.count, bytes[index] | 0x20 == UInt8(ascii: "e") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count, Self.isDigit(bytes[index]) else { throw failure("expected a digit in an exponent") }
            skipDigits()
        }
        if index < bytes.count, Self.isDigit(bytes[index]) { throw failure("a number has a leading zero") }
        return RawJSONNumber(start: start, end: index)
    }

    @inline(__always)
    private mutating func skipDigits() {
        while index < bytes.count, Self.isDigit(bytes[index]) { index += 1 }
    }

    @inline(__always)
    static func isDigit(_ byte: UInt8) -> Bool { byte &- UInt8(ascii: "0") < 10 }

    // MARK: Strings

    /// Reads a string at the cursor (which must be on its opening quote), checking escapes,
    /// surrogate pairs, control characters and UTF-8, and returns where its content lies.
    mutating func scanString() throws(ServerListingDecodingError) -> RawJSONString {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw failure("expected a string") }
        index += 1
        let start = index
        var escaped = false
        while true {
            skipPlainBytes()
            guard index < bytes.count else { throw failure("unterminated string") }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let string = RawJSONString(start: start, end: index, escaped: escaped)
                index += 1
                return string
            } else if byte == UInt8(ascii: "\\") {
                escaped = true
                try skipEscape()
            } else if byte < 0x20 {
                throw failure("a control character in a string")
            } else {
                try skipUTF8Sequence()
            }
        }
    }

    /// Passes over printable ASCII other than `"` and `\`, eight bytes at a time where it can.
    @inline(__always)
    private mutating func skipPlainBytes() {
        let count = bytes.count
        if let base = bytes.baseAddress {
            let raw = UnsafeRawPointer(base)
            while index &+ 8 <= count {
                let word = raw.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                if Self.holdsSpecialByte(word) { break }
                index &+= 8
            }
        }
        while index < count {
            let byte = bytes[index]
            guard byte >= 0x20, byte < 0x80, byte != UInt8(ascii: "\""), byte != UInt8(ascii: "\\") else { return }
            index += 1
        }
    }

    /// True when one of the eight bytes is a control character, `"`, `\` or not ASCII.
    @inline(__always)
    static func holdsSpecialByte(_ word: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let below0x20 = (word &- ones &* 0x20) & ~word
        let quote = word ^ (ones &* 0x22)
        let backslash = word ^ (ones &* 0x5C)
        let isQuote = (quote &- ones) & ~quote
        let isBackslash = (backslash &- ones) & ~backslash
        return ((below0x20 | isQuote | isBackslash) & highs) | (word & highs) != 0
    }

    /// At a backslash: one escape, and for `\u` a complete surrogate pair where one is needed.
    private mutating func skipEscape() throws(ServerListingDecodingError) {
        index += 1
        guard index < bytes.count else { throw failure("unterminated escape") }
        switch bytes[index] {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"),
            UInt8(ascii: "t"):
            index += 1
        case UInt8(ascii: "u"):
            index += 1
            let unit = try hexUnit()
            if (0xD800...0xDBFF).contains(unit) {
                guard bytes.count - index >= 2, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                    throw failure("a high surrogate without its low surrogate")
                }
                index += 2
                guard (0xDC00...0xDFFF).contains(try hexUnit()) else { throw failure("a high surrogate without its low surrogate") }
            } else if (0xDC00...0xDFFF).contains(unit) {
                throw failure("a low surrogate without its high surrogate")
            }
        default:
            throw failure("an invalid escape")
        }
    }

    /// Four hex digits at the cursor.
    private mutating func hexUnit() throws(ServerListingDecodingError) -> UInt16 {
        guard bytes.count - index >= 4 else { throw failure("a short \\u escape") }
        var value: UInt16 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw failure("a non-hex digit in a \\u escape")
            }
            value = value << 4 | UInt16(digit)
            index += 1
        }
        return value
    }

    /// One well-formed UTF-8 sequence of two to four bytes (no overlong forms, no surrogates,
    /// nothing past U+10FFFF).
    private mutating func skipUTF8Sequence() throws(ServerListingDecodingError) {
        let lead = bytes[index]
        let length: Int
        var lowest: UInt8 = 0x80
        var highest: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0:
            length = 3
            lowest = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED:
            length = 3
            highest = 0x9F
        case 0xF0:
            length = 4
            lowest = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4:
            length = 4
            highest = 0x8F
        default: throw failure("invalid UTF-8")
        }
        guard bytes.count - index >= length else { throw failure("invalid UTF-8") }
        let second = bytes[index + 1]
        guard second >= lowest, second <= highest else { throw failure("invalid UTF-8") }
        for offset in 2..<(length > 2 ? length : 2) where bytes[index + offset] & 0xC0 != 0x80 {
            throw failure("invalid UTF-8")
        }
        index += length
    }

    /// The text of a scanned string (escapes resolved).
    mutating func string(_ raw: RawJSONString) -> String {
        guard raw.escaped else {
            return String(decoding: UnsafeBufferPointer(rebasing: bytes[raw.start..<raw.end]), as: UTF8.self)
        }
        unescape(raw)
        return String(decoding: scratch, as: UTF8.self)
    }

    /// True when the scanned string's text is exactly `literal` (ASCII).
    mutating func equals(_ raw: RawJSONString, _ literal: StaticString) -> Bool {
        let count = literal.utf8CodeUnitCount
        if raw.escaped {
            unescape(raw)
            guard scratch.count == count else { return false }
            let start = literal.utf8Start
            for offset in 0..<count where scratch[offset] != start[offset] { return false }
            return true
        }
        guard raw.count == count else { return false }
        let start = literal.utf8Start
        for offset in 0..<count where bytes[raw.start + offset] != start[offset] { return false }
        return true
    }

    /// Resolves the escapes of a scanned (so well-formed) string into `scratch`.
    private mutating func unescape(_ raw: RawJSONString) {
        scratch.removeAll(keepingCapacity: true)
        var position = raw.start
        while position < raw.end {
            let byte = bytes[position]
            guard byte == UInt8(ascii: "\\") else {
                scratch.append(byte)
                position += 1
                continue
            }
            let kind = bytes[position + 1]
            position += 2
            switch kind {
            case UInt8(ascii: "b"): scratch.append(0x08)
            case UInt8(ascii: "f"): scratch.append(0x0C)
            case UInt8(ascii: "n"): scratch.append(0x0A)
            case UInt8(ascii: "r"): scratch.append(0x0D)
            case UInt8(ascii: "t"): scratch.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = UInt32(hexValue(at: position))
                position += 4
                if (0xD800...0xDBFF).contains(scalar) {
                    let low = UInt32(hexValue(at: position + 2))
                    position += 6
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                }
                appendUTF8(scalar)
            default: scratch.append(kind)
            }
        }
    }

    private func hexValue(at position: Int) -> UInt16 {
        var value: UInt16 = 0
        for offset in 0..<4 {
            let byte = bytes[position + offset]
            let digit = byte <= UInt8(ascii: "9") ? byte - UInt8(ascii: "0") : (byte | 0x20) - UInt8(ascii: "a") + 10
            value = value << 4 | UInt16(digit)
        }
        return value
    }

    private mutating func appendUTF8(_ scalar: UInt32) {
        switch scalar {
        case 0..<0x80:
            scratch.append(UInt8(scalar))
        case 0x80..<0x800:
            scratch.append(UInt8(0xC0 | scalar >> 6))
            scratch.append(UInt8(0x80 | scalar & 0x3F))
        case 0x800..<0x10000:
            scratch.append(UInt8(0xE0 | scalar >> 12))
            scratch.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            scratch.append(UInt8(0x80 | scalar & 0x3F))
        default:
            scratch.append(UInt8(0xF0 | scalar >> 18))
            scratch.append(UInt8(0x80 | scalar >> 12 & 0x3F))
            scratch.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            scratch.append(UInt8(0x80 | scalar & 0x3F))
        }
    }

    /// The text of a scanned number.
    func text(_ number: RawJSONNumber) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: bytes[number.start..<number.end]), as: UTF8.self)
    }
}
