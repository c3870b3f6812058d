import ECSSigning
import Foundation

/// A listed server as it is kept between passes: the fields of `ServerListingView` in about a
/// third of the memory of a `Server`.
///
/// A `Server` is ~390 bytes inline plus a heap allocation for its 36-character id and one for its
/// `updated` timestamp. Kept for a quarter of a million servers (the scheduled and watched part of a
/// one-million-server fleet) that is over 100 MB. Here a canonical UUID id is two integers, a
/// canonical `…Z` timestamp one, the flavor and the fault are shared boxes, and the short strings
/// (states, AZs) stay inline; anything not in canonical form is kept as text, so `server` always
/// gives back exactly the listed values.
public struct CompactServer: Sendable {
    private let id: CompactText
    private let name: String
    private let status: ServerStatus
    private let taskState: String?
    private let vmState: String?
    private let availabilityZone: String?
    private let hostStatus: String?
    private let updated: CompactTimestamp?
    private let tags: [String]?
    private let flavor: SharedBox<ServerFlavorReference>?
    private let fault: SharedBox<ServerFault>?
    private let locked: Bool?

    /// Compacts `server`'s listed fields; `sharing` lets servers of one listing share their flavor.
    public init(_ server: Server, sharing: inout CompactServer.Sharing) {
        id = CompactText(server.id)
        name = server.name
        status = server.status
        taskState = server.taskState
        vmState = server.vmState
        availabilityZone = server.availabilityZone
        hostStatus = server.hostStatus
        updated = server.updated.map(CompactTimestamp.init)
        tags = server.tags
        flavor = server.flavor.map { sharing.box($0) }
        fault = server.fault.map(SharedBox.init)
        locked = server.locked
    }

    /// The server's id, as listed.
    public var serverId: String { id.text }

    /// The server's name, as listed.
    public var serverName: String { name }

    /// Whether the listing carried the server's `tags` field (absent when the microversion is not honoured).
    public var hasTagsField: Bool { tags != nil }

    /// The value of the server's tag `key` (`Server.tagValue(_:)`).
    public func tagValue(_ key: String) -> String? { Server.tagValue(key, in: tags) }

    /// The server, with the listed fields as they were listed (the others empty).
    public var server: Server {
        var server = Server(
            id: id.text, name: name, status: status, taskState: taskState, vmState: vmState, availabilityZone: availabilityZone,
            updated: updated?.text, flavor: flavor?.value, tags: tags, locked: locked)
        server.hostStatus = hostStatus
        server.fault = fault?.value
        return server
    }

    /// Shares equal flavor references among the servers of one listing.
    public struct Sharing: Sendable {
        private var flavors: [ServerFlavorReference: SharedBox<ServerFlavorReference>] = [:]

        public init() {}

        mutating func box(_ flavor: ServerFlavorReference) -> SharedBox<ServerFlavorReference> {
            if let known = flavors[flavor] { return known }
            let box = SharedBox(flavor)
            // Bounded: a listing with more distinct flavors than this just stops sharing new ones.
            if flavors.count < 4096 { flavors[flavor] = box }
            return box
        }
    }
}

/// One immutable value on the heap, shared by reference.
final class SharedBox<Value: Sendable>: Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// An id: a lower-case canonical UUID as its 128 bits, anything else as text.
enum CompactText: Sendable {
    case uuid(UInt64, UInt64)
    case text(String)

    init(_ text: String) {
        var text = text
        self = text.withUTF8 { bytes in
            guard bytes.count == 36 else { return nil }
            var high: UInt64 = 0
            var low: UInt64 = 0
            var digits = 0
            for (offset, byte) in bytes.enumerated() {
                if offset == 8 || offset == 13 || offset == 18 || offset == 23 {
                    guard byte == UInt8(ascii: "-") else { return nil }
                    continue
                }
                let nibble: UInt64
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = UInt64(byte - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = UInt64(byte - UInt8(ascii: "a") + 10)
                default: return nil
                }
                if digits < 16 { high = high << 4 | nibble } else { low = low << 4 | nibble }
                digits += 1
            }
            return .uuid(high, low)
        } ?? .text(text)
    }

    var text: String {
        switch self {
        case .text(let text): return text
        case .uuid(let high, let low):
            // One allocation: the digits are written straight into the string's storage.
            return String(unsafeUninitializedCapacity: 36) { bytes in
                let hex: StaticString = "0123456789abcdef"
                var position = 0
                for digit in 0..<32 {
                    if position == 8 || position == 13 || position == 18 || position == 23 {
                        bytes[position] = UInt8(ascii: "-")
                        position += 1
                    }
                    let word = digit < 16 ? high : low
                    let shift = UInt64((15 - digit % 16) * 4)
                    bytes[position] = hex.utf8Start[Int((word >> shift) & 0xF)]
                    position += 1
                }
                return 36
            }
        }
    }
}

/// An `updated` time: `yyyy-MM-ddTHH:mm:ssZ` as its epoch second, anything else as text.
enum CompactTimestamp: Sendable {
    case seconds(Int64)
    case text(String)

    init(_ text: String) {
        var text = text
        self = text.withUTF8 { Self.canonicalSeconds($0) }.map(CompactTimestamp.seconds) ?? .text(text)
    }

    /// The epoch second of `yyyy-MM-ddTHH:mm:ssZ` when `bytes` are exactly that form of a real
    /// time (so `format` gives the same bytes back), else nil. Allocates nothing.
    static func canonicalSeconds(_ bytes: UnsafeBufferPointer<UInt8>) -> Int64? {
        guard bytes.count == 20, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"), bytes[10] == UInt8(ascii: "T"),
            bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":"), bytes[19] == UInt8(ascii: "Z")
        else { return nil }
        func number(_ start: Int, _ digits: Int) -> Int64? {
            var value: Int64 = 0
            for offset in start..<(start + digits) {
                let byte = bytes[offset]
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int64(byte - UInt8(ascii: "0"))
            }
            return value
        }
        guard let year = number(0, 4), let month = number(5, 2), let day = number(8, 2), let hour = number(11, 2), let minute = number(14, 2),
            let second = number(17, 2), (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 60
        else { return nil }
        let seconds = CivilTime.daysFromCivil(year: year, month: month, day: day) * 86_400 + hour * 3600 + minute * 60 + second
        // A day past its month's end (say 02-30) names another date: not canonical.
        let back = CivilTime(epochSeconds: seconds)
        guard back.year == year, back.month == month, back.day == day else { return nil }
        return seconds
    }

    var text: String {
        switch self {
        case .text(let text): return text
        case .seconds(let seconds): return Self.format(seconds)
        }
    }

    /// `yyyy-MM-ddTHH:mm:ssZ` (`ECSTimestamp.formatSeconds`'s form), without `String(format:)`.
    static func format(_ seconds: Int64) -> String {
        let time = CivilTime(epochSeconds: seconds)
        guard (0...9999).contains(time.year) else { return ECSTimestamp.formatSeconds(Date(timeIntervalSince1970: TimeInterval(seconds))) }
        // One allocation: the digits are written straight into the string's storage.
        return String(unsafeUninitializedCapacity: 20) { bytes in
            func put(_ value: Int64, at position: Int, digits: Int) {
                var rest = value
                for offset in stride(from: digits - 1, through: 0, by: -1) {
                    bytes[position + offset] = UInt8(ascii: "0") + UInt8(rest % 10)
                    rest /= 10
                }
            }
            put(time.year, at: 0, digits: 4)
            put(time.month, at: 5, digits: 2)
            put(time.day, at: 8, digits: 2)
            put(time.hour, at: 11, digits: 2)
            put(time.minute, at: 14, digits: 2)
            put(time.second, at: 17, digits: 2)
            bytes[4] = UInt8(ascii: "-")
            bytes[7] = UInt8(ascii: "-")
            bytes[10] = UInt8(ascii: "T")
            bytes[13] = UInt8(ascii: ":")
            bytes[16] = UInt8(ascii: ":")
            bytes[19] = UInt8(ascii: "Z")
            return 20
        }
    }
}
