/// Percent-encoding as the official SDK does it (Python's `quote(s, safe='~')` and `unquote(s)`).
public enum PercentEncoding {
    private static let upperHex = Array("0123456789ABCDEF".utf8)

    /// True for the bytes left as they are: `A-Z a-z 0-9 - _ . ~`.
    @inline(__always)
    static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"),
            UInt8(ascii: "."), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    /// Encodes the UTF-8 bytes of `string`, leaving only `A-Z a-z 0-9 - _ . ~` as they are.
    public static func encode(_ string: String) -> String {
        let utf8 = string.utf8
        if utf8.allSatisfy(isUnreserved) { return string }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count * 3)
        for byte in utf8 {
            if isUnreserved(byte) {
                out.append(byte)
            } else {
                out.append(UInt8(ascii: "%"))
                out.append(upperHex[Int(byte >> 4)])
                out.append(upperHex[Int(byte & 0x0F)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes `%XX` escapes (a `%` not followed by two hex digits stays as it is) and reads the
    /// bytes as UTF-8, replacing invalid sequences. `+` is not a space here.
    public static func decode(_ string: String) -> String {
        let bytes = Array(string.utf8)
        guard bytes.contains(UInt8(ascii: "%")) else { return string }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "%"), index + 2 < bytes.count,
                let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2])
            {
                out.append(high << 4 | low)
                index += 3
            } else {
                out.append(byte)
                index += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    @inline(__always)
    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// Splits a raw query string (`a=1&b=%20`) into decoded items, in order.
    /// A parameter without `=` has the empty value; empty segments are skipped.
    public static func parseQuery(_ raw: String) -> [SignableRequest.QueryItem] {
        guard !raw.isEmpty else { return [] }
        return raw.split(separator: "&", omittingEmptySubsequences: true).map { pair in
            if let equals = pair.firstIndex(of: "=") {
                return .init(decode(String(pair[..<equals])), decode(String(pair[pair.index(after: equals)...])))
            }
            return .init(decode(String(pair)), "")
        }
    }
}
