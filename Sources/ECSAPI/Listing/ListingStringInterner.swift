/// Shares the strings a fleet repeats across servers (tags such as `warden-schedule=office-hours`,
/// AZs, flavor ids, states) and the tag lists themselves, so a listing kept between passes holds
/// each once rather than once per server.
///
/// Strings of up to 15 UTF-8 bytes are stored inside the `String` value by Swift and need no
/// sharing; longer ones are looked up in a small direct-mapped table keyed by a hash of their bytes
/// (a miss only costs the allocation sharing would have saved). One interner serves one page.
struct ListingStringInterner {
    private static let slots = 256
    private var strings = [String?](repeating: nil, count: slots)
    private var tagLists = [(text: [UInt8], tags: [String])?](repeating: nil, count: slots)

    /// The text of a scanned string, shared with an earlier equal one of the page when there is one.
    mutating func string(_ raw: RawJSONString, in scanner: inout JSONByteScanner) -> String {
        guard !raw.escaped, raw.count > 15 else { return scanner.string(raw) }
        let bytes = UnsafeBufferPointer(rebasing: scanner.bytes[raw.start..<raw.end])
        let slot = Self.slot(bytes)
        if let known = strings[slot], Self.equal(known, bytes) { return known }
        let text = String(decoding: bytes, as: UTF8.self)
        strings[slot] = text
        return text
    }

    /// `text`, shared with an earlier equal string of the page when there is one.
    mutating func string(_ text: String) -> String {
        guard text.utf8.count > 15 else { return text }
        var text = text
        return text.withUTF8 { bytes in
            let slot = Self.slot(bytes)
            if let known = strings[slot], Self.equal(known, bytes) { return known }
            let shared = String(decoding: bytes, as: UTF8.self)
            strings[slot] = shared
            return shared
        }
    }

    /// `tags`, read from the array written as `text`, shared with an earlier server whose tags
    /// were written the same way.
    mutating func tagList(_ tags: [String], text: Range<Int>, in scanner: JSONByteScanner) -> [String] {
        guard !tags.isEmpty else { return tags }
        let bytes = UnsafeBufferPointer(rebasing: scanner.bytes[text])
        let slot = Self.slot(bytes)
        if let known = tagLists[slot], known.text.elementsEqual(bytes) { return known.tags }
        tagLists[slot] = (Array(bytes), tags)
        return tags
    }

    private static func slot(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        // FNV-1a.
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        return Int(truncatingIfNeeded: hash ^ (hash >> 32)) & (slots - 1)
    }

    private static func equal(_ known: String, _ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        known.utf8.withContiguousStorageIfAvailable { $0.elementsEqual(bytes) } ?? known.utf8.elementsEqual(bytes)
    }
}
