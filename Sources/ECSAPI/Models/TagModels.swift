import Foundation

/// A tag filter of `resource_instances/action`: servers carrying `key` with any of `values`
/// (any value when `values` is empty).
public struct TagFilter: Codable, Sendable, Hashable {
    public var key: String
    public var values: [String]

    public init(key: String, values: [String] = []) {
        self.key = key
        self.values = values
    }

    enum CodingKeys: String, CodingKey { case key, values }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        key = try c.decode(String.self, forKey: .key)
        values = try c.decodeIfPresent([String].self, forKey: .values) ?? []
    }
}

/// A name match of `resource_instances/action` (`key` is always `resource_name`).
public struct ResourceMatch: Codable, Sendable, Hashable {
    public var key: String
    public var value: String

    /// Matches servers by name.
    public static func name(_ value: String) -> ResourceMatch { ResourceMatch(key: "resource_name", value: value) }
}

/// The body of `POST /v1/{project_id}/servers/resource_instances/action`.
struct TagQueryBody: Encodable, Sendable {
    var action: String
    var tags: [TagFilter]?
    var notTags: [TagFilter]?
    var matches: [ResourceMatch]?
    /// Strings on the wire, as documented.
    var limit: String?
    var offset: String?

    enum CodingKeys: String, CodingKey {
        case action, tags, matches, limit, offset
        case notTags = "not_tags"
    }
}

/// One server found by a tag query (no status: join with server details).
public struct TaggedResource: Decodable, Sendable, Hashable {
    public var resourceId: String
    public var resourceName: String?
    public var tags: [ServerTag]

    enum CodingKeys: String, CodingKey {
        case resourceId = "resource_id"
        case resourceName = "resource_name"
        case tags
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        resourceId = try c.decode(String.self, forKey: .resourceId)
        resourceName = try c.decodeIfPresent(String.self, forKey: .resourceName)
        tags = try c.decodeIfPresent([ServerTag].self, forKey: .tags) ?? []
    }
}

/// The answer of a tag query: a page of resources (filter) and the total count.
public struct TaggedResourcePage: Decodable, Sendable {
    public var resources: [TaggedResource]
    public var totalCount: Int

    enum CodingKeys: String, CodingKey {
        case resources
        case totalCount = "total_count"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        resources = try c.decodeIfPresent([TaggedResource].self, forKey: .resources) ?? []
        totalCount = try c.decode(LenientInt.self, forKey: .totalCount).wrappedValue
    }
}

/// `{"action": "create"|"delete", "tags": [...]}` for `servers/{id}/tags/action`.
struct TagActionBody: Encodable, Sendable {
    var action: String
    var tags: [TagActionItem]
}

/// A tag in a tag action; a delete may omit the value.
struct TagActionItem: Encodable, Sendable {
    var key: String
    var value: String?
}

/// `{"tags": [{key, value}]}` of one server.
struct ServerTagList: Decodable, Sendable {
    var tags: [ServerTag]
}

/// `{"tags": [{key, values}]}` of a project.
struct ProjectTagList: Decodable, Sendable {
    var tags: [TagFilter]
}
