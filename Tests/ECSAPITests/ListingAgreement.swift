import Foundation

@testable import ECSAPI

/// The fast listing decoder and the full one (`JSONDecoder` over `ServerDetailPage`) on the same
/// bytes.
enum ListingAgreement: Equatable {
    /// Both read the page and give equal views of every server, and the same next-page answer.
    case agreed(servers: Int)
    /// Both refuse the page.
    case bothFailed
    /// Only the fast decoder refuses the page (it is stricter about malformed JSON).
    case onlyFastFailed(String)
    /// Only the full decoder refuses the page: a bug of the fast decoder.
    case onlyFullFailed(servers: Int)
    /// Both read the page but differ: a bug of the fast decoder.
    case disagreed(String)

    static func check(_ bytes: [UInt8]) -> ListingAgreement {
        let full = try? JSONDecoder().decode(ServerDetailPage.self, from: Data(bytes))
        let fast: ServerListingPage
        do {
            fast = try ServerListingDecoder.decodePage(bytes)
        } catch {
            return full == nil ? .bothFailed : .onlyFastFailed(error.description)
        }
        guard let full else { return .onlyFullFailed(servers: fast.servers.count) }
        if full.hasNextLink != fast.hasNextLink { return .disagreed("next link: full \(full.hasNextLink), fast \(fast.hasNextLink)") }
        if full.servers.count != fast.servers.count { return .disagreed("servers: full \(full.servers.count), fast \(fast.servers.count)") }
        for (fullServer, fastServer) in zip(full.servers, fast.servers) {
            let expected = ServerListingView(fullServer)
            let actual = ServerListingView(fastServer)
            if expected != actual { return .disagreed("full: \(expected)\nfast: \(actual)") }
        }
        return .agreed(servers: full.servers.count)
    }

    static func check(_ json: String) -> ListingAgreement { check(Array(json.utf8)) }

    /// True for the outcomes a correct fast decoder may give.
    var isAcceptable: Bool {
        switch self {
        case .agreed, .bothFailed, .onlyFastFailed: return true
        case .onlyFullFailed, .disagreed: return false
        }
    }
}

/// The Nova server-details example of the API reference (`shared/spec/ecs-api.md` §9.2) at
/// microversion 2.26, with a member from the future.
let novaReferenceServerPage = """
        {"servers": [{"tenant_id": "74610f3a5ad941998e91f076297ecf27", "addresses": {}, "metadata": {},
          "OS-EXT-STS:task_state": null, "description": "zt-test", "OS-EXT-AZ:availability_zone": "az-test-01",
          "OS-EXT-STS:power_state": 1, "id": "89c312bb-285a-4026-a237-d441908c2f9e", "locked": false,
          "image": {"id": "1189efbf-d48b-46ad-a823-94b942e2a000", "links": []}, "created": "2018-05-11T03:21:56Z",
          "host_status": "UP", "tags": ["warden-schedule=office", "solo"],
          "flavor": {"links": [{"rel": "bookmark", "href": "https://None/flavors/s3.small.1"}], "id": "s3.small.1"},
          "OS-EXT-STS:vm_state": "active", "name": "zt-test", "OS-SRV-USG:launched_at": "2018-05-11T03:22:16.701600",
          "updated": "2018-05-11T03:22:51Z", "status": "ACTIVE", "new-field-from-the-future": {"x": 1}}]}
        """
