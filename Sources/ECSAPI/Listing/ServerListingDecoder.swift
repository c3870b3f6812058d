/// One page of a Nova `servers/detail` listing as the loops read it.
public struct ServerListingPage: Sendable {
    /// The servers, with the fields of `ServerListingDecoder.listedFields` only.
    public var servers: [Server]
    /// True when `servers_links` names a `next` page.
    public var hasNextLink: Bool
}

/// Reads a Nova `servers/detail` page straight from the answer's bytes into `Server` values that
/// carry only what the reconcile loops read, in one pass and without building a JSON tree.
///
/// A page of 1,000 servers is about 2 MB of JSON of which the loops need a dozen fields per server;
/// `JSONDecoder` builds the whole document before the first server comes out. This decoder walks
/// the bytes once, checks everything it passes over (see `JSONByteScanner`), keeps the fields
/// listed in `listedFields`, and gives each of them the value the full decoder (`Server`'s
/// `Decodable` conformance with the lenient wrappers) gives, spelling for spelling: numbers as
/// strings, `""` and `null` task states, booleans as strings, unknown statuses kept verbatim,
/// `original_name` for a ≥2.47 flavor. Where the full decoder fails the page (a server without a
/// string `id`, a `name` that is not a string, no `servers` array, malformed JSON) so does this
/// one; where it is lenient, this one is too. A duplicate member keeps its first value, as
/// `JSONDecoder` does.
///
/// The other fields of `Server` (`metadata`, `created`, `powerState`, `tenantId`, `userId`,
/// `description`, `enterpriseProjectId`) are left empty: callers that need them use the full model
/// (`ECSClient.serverDetails`, `ECSClient.server(id:)`).
public enum ServerListingDecoder {
    /// The `Server` fields this decoder fills, as the Nova member names they come from.
    public static let listedFields = [
        "id", "name", "status", "OS-EXT-STS:task_state", "OS-EXT-STS:vm_state", "OS-EXT-AZ:availability_zone", "updated", "flavor",
        "tags", "locked", "host_status", "fault",
    ]

    /// Decodes one page.
    public static func decodePage(_ bytes: [UInt8]) throws(ServerListingDecodingError) -> ServerListingPage {
        let result: Result<ServerListingPage, ServerListingDecodingError> = bytes.withUnsafeBufferPointer { buffer in
            Result { () throws(ServerListingDecodingError) in try decodePage(buffer) }
        }
        return try result.get()
    }

    /// Decodes one page in place, from bytes the caller keeps alive for the call.
    public static func decodePage(_ bytes: UnsafeBufferPointer<UInt8>) throws(ServerListingDecodingError) -> ServerListingPage {
        var reader = ServerPageReader(scanner: JSONByteScanner(bytes))
        return try reader.readPage()
    }
}

/// The walk over one page: the page object, each server, and the few nested objects read.
struct ServerPageReader {
    var scanner: JSONByteScanner
    var interner = ListingStringInterner()

    mutating func readPage() throws(ServerListingDecodingError) -> ServerListingPage {
        var servers: [Server]?
        var links: LinksReading?
        var more = try scanner.beginObject(depth: 1)
        while more {
            let key = try scanner.memberKey()
            if servers == nil, scanner.equals(key, "servers") {
                servers = try readServers()
            } else if links == nil, scanner.equals(key, "servers_links") {
                links = try readLinks()
            } else {
                try scanner.skipValue(depth: 1)
            }
            more = try scanner.nextMember()
        }
        try scanner.expectEnd()
        guard let servers else { throw scanner.failure("the answer has no servers array") }
        return ServerListingPage(servers: servers, hasNextLink: links?.hasNext ?? false)
    }

    private mutating func readServers() throws(ServerListingDecodingError) -> [Server] {
        guard try scanner.peek() == UInt8(ascii: "[") else { throw scanner.failure("servers is not an array") }
        var servers: [Server] = []
        // A page of details is about 2 KB a server: reserve once rather than grow.
        servers.reserveCapacity(min(1000, (scanner.bytes.count - scanner.index) / 1500 + 1))
        var more = try scanner.beginArray(depth: 2)
        while more {
            servers.append(try readServer())
            more = try scanner.nextElement()
        }
        return servers
    }

    /// The members of a server object this decoder reads.
    private enum Field: Int {
        case id, name, status, taskState, vmState, availabilityZone, updated, flavor, tags, locked, hostStatus, fault
    }

    private mutating func serverField(_ key: RawJSONString) -> Field? {
        switch key.escaped ? -1 : key.count {
        case 2: return scanner.equals(key, "id") ? .id : nil
        case 4: return scanner.equals(key, "name") ? .name : scanner.equals(key, "tags") ? .tags : nil
        case 5: return scanner.equals(key, "fault") ? .fault : nil
        case 6: return scanner.equals(key, "status") ? .status : scanner.equals(key, "flavor") ? .flavor : scanner.equals(key, "locked") ? .locked : nil
        case 7: return scanner.equals(key, "updated") ? .updated : nil
        case 11: return scanner.equals(key, "host_status") ? .hostStatus : nil
        case 19: return scanner.equals(key, "OS-EXT-STS:vm_state") ? .vmState : nil
        case 21: return scanner.equals(key, "OS-EXT-STS:task_state") ? .taskState : nil
        case 27: return scanner.equals(key, "OS-EXT-AZ:availability_zone") ? .availabilityZone : nil
        case -1: return escapedField(key)
        default: return nil
        }
    }

    /// A member name written with escapes (`"i\u0064"` is `id`): compared after unescaping.
    private mutating func escapedField(_ key: RawJSONString) -> Field? {
        let names: [(StaticString, Field)] = [
            ("id", .id), ("name", .name), ("status", .status), ("OS-EXT-STS:task_state", .taskState), ("OS-EXT-STS:vm_state", .vmState),
            ("OS-EXT-AZ:availability_zone", .availabilityZone), ("updated", .updated), ("flavor", .flavor), ("tags", .tags), ("locked", .locked),
            ("host_status", .hostStatus), ("fault", .fault),
        ]
        for (name, field) in names where scanner.equals(key, name) { return field }
        return nil
    }

    private mutating func readServer() throws(ServerListingDecodingError) -> Server {
        let depth = 3
        guard try scanner.peek() == UInt8(ascii: "{") else { throw scanner.failure("a server is not an object") }
        var server = Server(id: "", name: "", status: .other(""))
        var seen: UInt16 = 0
        var hasId = false
        var more = try scanner.beginObject(depth: depth)
        while more {
            let key = try scanner.memberKey()
            guard let field = serverField(key), seen & (1 << field.rawValue) == 0 else {
                try scanner.skipValue(depth: depth)
                more = try scanner.nextMember()
                continue
            }
            seen |= 1 << field.rawValue
            switch field {
            case .id:
                guard try scanner.peek() == UInt8(ascii: "\"") else { throw scanner.failure("a server's id is not a string") }
                server.id = scanner.string(try scanner.scanString())
                hasId = true
            case .name:
                let (name, wellTyped) = try scanner.optionalString(depth: depth)
                guard wellTyped else { throw scanner.failure("a server's name is not a string") }
                server.name = name ?? ""
            case .status:
                server.status = try readStatus(depth: depth)
            case .taskState:
                server.taskState = try internedBlankAsNil(depth: depth)
            case .vmState:
                server.vmState = try internedBlankAsNil(depth: depth).map(Self.lowercased)
            case .availabilityZone:
                server.availabilityZone = try internedBlankAsNil(depth: depth)
            case .updated:
                server.updated = try scanner.blankAsNil(depth: depth)
            case .hostStatus:
                server.hostStatus = try internedBlankAsNil(depth: depth)
            case .locked:
                server.locked = try scanner.lenientBool(depth: depth)
            case .flavor:
                server.flavor = try readFlavor(depth: depth)
            case .tags:
                server.tags = try readTags(depth: depth)
            case .fault:
                server.fault = try readFault(depth: depth)
            }
            more = try scanner.nextMember()
        }
        guard hasId else { throw scanner.failure("a server has no id") }
        return server
    }

    /// `status`: a string, kept verbatim when unknown; anything else reads as `""`.
    private mutating func readStatus(depth: Int) throws(ServerListingDecodingError) -> ServerStatus {
        guard try scanner.peek() == UInt8(ascii: "\"") else {
            try scanner.skipValue(depth: depth)
            return ServerStatus(rawValue: "")
        }
        let raw = try scanner.scanString()
        // The statuses a fleet shows nearly always, without building a string.
        if scanner.equals(raw, "ACTIVE") { return .active }
        if scanner.equals(raw, "SHUTOFF") { return .shutoff }
        return ServerStatus(rawValue: scanner.string(raw))
    }

    /// A `BlankAsNil` string drawn from a small set repeated across a fleet (AZs, states), shared.
    private mutating func internedBlankAsNil(depth: Int) throws(ServerListingDecodingError) -> String? {
        guard try scanner.peek() == UInt8(ascii: "\"") else { return try scanner.blankAsNil(depth: depth) }
        let raw = try scanner.scanString()
        guard raw.count > 0 else { return nil }
        return interner.string(raw, in: &scanner)
    }

    static func lowercased(_ text: String) -> String {
        text.utf8.contains { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") || $0 >= 0x80 } ? text.lowercased() : text
    }

    /// `tags`: an array of strings, else nil (an element that is not a string makes it nil).
    private mutating func readTags(depth: Int) throws(ServerListingDecodingError) -> [String]? {
        guard try scanner.peek() == UInt8(ascii: "[") else {
            try scanner.skipValue(depth: depth)
            return nil
        }
        let start = scanner.index
        var tags: [String] = []
        var wellTyped = true
        var more = try scanner.beginArray(depth: depth + 1)
        while more {
            if try scanner.peek() == UInt8(ascii: "\"") {
                let raw = try scanner.scanString()
                if wellTyped { tags.append(interner.string(raw, in: &scanner)) }
            } else {
                try scanner.skipValue(depth: depth + 1)
                wellTyped = false
            }
            more = try scanner.nextElement()
        }
        guard wellTyped else { return nil }
        return interner.tagList(tags, text: start..<scanner.index, in: scanner)
    }

    /// `flavor`: `{id, name, vcpus, ram, disk}` with `original_name` standing in for a missing id
    /// or name; nil when it is not an object or a name member is not a string.
    private mutating func readFlavor(depth: Int) throws(ServerListingDecodingError) -> ServerFlavorReference? {
        guard try scanner.peek() == UInt8(ascii: "{") else {
            try scanner.skipValue(depth: depth)
            return nil
        }
        var id: String?
        var name: String?
        var originalName: String?
        var vcpus: Int?
        var ram: Int?
        var disk: Int?
        var wellTyped = true
        try readMembers(depth: depth + 1, names: ["id", "name", "original_name", "vcpus", "ram", "disk"]) { reader, slot throws(ServerListingDecodingError) in
            switch slot {
            case 0, 1, 2:
                let (value, typed) = try reader.scanner.optionalString(depth: depth + 1)
                wellTyped = wellTyped && typed
                var shared: String?
                if let value { shared = reader.interner.string(value) }
                if slot == 0 { id = shared } else if slot == 1 { name = shared } else { originalName = shared }
            case 3: vcpus = try reader.scanner.lenientInt(depth: depth + 1)
            case 4: ram = try reader.scanner.lenientInt(depth: depth + 1)
            default: disk = try reader.scanner.lenientInt(depth: depth + 1)
            }
        }
        guard wellTyped else { return nil }
        return ServerFlavorReference(id: id ?? originalName, name: name ?? originalName, vcpus: vcpus, ram: ram, disk: disk)
    }

    /// `fault`: `{code, created, message, details}`; nil when it is not an object or a text member
    /// is not a string.
    private mutating func readFault(depth: Int) throws(ServerListingDecodingError) -> ServerFault? {
        guard try scanner.peek() == UInt8(ascii: "{") else {
            try scanner.skipValue(depth: depth)
            return nil
        }
        var fault = ServerFault()
        var wellTyped = true
        try readMembers(depth: depth + 1, names: ["code", "created", "message", "details"]) { reader, slot throws(ServerListingDecodingError) in
            if slot == 0 {
                fault.code = try reader.scanner.lenientInt(depth: depth + 1)
                return
            }
            let (value, typed) = try reader.scanner.optionalString(depth: depth + 1)
            wellTyped = wellTyped && typed
            switch slot {
            case 1: fault.created = value
            case 2: fault.message = value
            default: fault.details = value
            }
        }
        return wellTyped ? fault : nil
    }

    /// Walks the object at the cursor (at `depth`): the first occurrence of each member named in
    /// `names` goes to `read` with its index there, which consumes its value; other members and
    /// repeats are checked and skipped (`JSONDecoder` keeps a repeated member's first value).
    private mutating func readMembers(
        depth: Int, names: [StaticString], _ read: (inout ServerPageReader, Int) throws(ServerListingDecodingError) -> Void
    ) throws(ServerListingDecodingError) {
        var seen: UInt32 = 0
        var more = try scanner.beginObject(depth: depth)
        while more {
            let key = try scanner.memberKey()
            var slot: Int?
            for (index, name) in names.enumerated() where scanner.equals(key, name) {
                slot = index
                break
            }
            if let slot, seen & (1 << slot) == 0 {
                seen |= 1 << slot
                try read(&self, slot)
            } else {
                try scanner.skipValue(depth: depth)
            }
            more = try scanner.nextMember()
        }
    }

    /// `servers_links`: whether a `next` link is there; an entry that is not `{rel, href}` strings
    /// makes the whole list unreadable (no next page), as in the full decoder.
    private struct LinksReading {
        var hasNext: Bool
    }

    private mutating func readLinks() throws(ServerListingDecodingError) -> LinksReading {
        let depth = 1
        guard try scanner.peek() == UInt8(ascii: "[") else {
            try scanner.skipValue(depth: depth)
            return LinksReading(hasNext: false)
        }
        var hasNext = false
        var wellTyped = true
        var more = try scanner.beginArray(depth: depth + 1)
        while more {
            if try scanner.peek() == UInt8(ascii: "{") {
                try readMembers(depth: depth + 2, names: ["rel", "href"]) { reader, slot throws(ServerListingDecodingError) in
                    if slot == 0, try reader.scanner.peek() == UInt8(ascii: "\"") {
                        if reader.scanner.equals(try reader.scanner.scanString(), "next") { hasNext = true }
                    } else {
                        wellTyped = try reader.scanner.optionalString(depth: depth + 2).wellTyped && wellTyped
                    }
                }
            } else {
                try scanner.skipValue(depth: depth + 1)
                wellTyped = false
            }
            more = try scanner.nextElement()
        }
        return LinksReading(hasNext: wellTyped && hasNext)
    }
}
