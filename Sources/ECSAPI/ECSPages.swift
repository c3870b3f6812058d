/// Where the next page starts: a Nova marker, a v1 page number, or a row offset.
public enum PageCursor: Sendable, Hashable {
    case marker(String)
    case page(Int)
    case offset(Int)
}

/// The pages of a listing, fetched one at a time as the sequence is iterated.
///
/// Each element is one page (an array), so a consumer can process 1,000 servers at a time without
/// holding the whole fleet; `collect()` flattens when the whole list is wanted.
public struct ECSPages<Item: Sendable>: AsyncSequence, Sendable {
    public typealias Element = [Item]
    /// Fetches the page at the cursor (nil = first) and returns its items and the next cursor.
    public typealias FetchPage = @Sendable (PageCursor?) async throws -> (items: [Item], next: PageCursor?)

    let fetchPage: FetchPage
    /// The most pages one listing may take: a listing that goes on past it is broken, not big.
    let maxPages: Int

    /// The default page cap: 1,000 pages of up to 1,000 items, a million servers — an order of
    /// magnitude past any one project's instance quota.
    public static var defaultMaxPages: Int { 1000 }

    /// Creates a sequence from a page fetcher.
    public init(maxPages: Int = ECSPages.defaultMaxPages, fetchPage: @escaping FetchPage) {
        self.fetchPage = fetchPage
        self.maxPages = Swift.max(1, maxPages)
    }

    public func makeAsyncIterator() -> Iterator {
        Iterator(fetchPage: fetchPage, maxPages: maxPages)
    }

    /// Fetches every page and returns all items in order.
    public func collect() async throws -> [Item] {
        var all: [Item] = []
        for try await page in self { all.append(contentsOf: page) }
        return all
    }

    /// Iterates pages until the API says there are no more. A cursor that comes back (a `next`
    /// link that loops, a page served twice) or a listing longer than the page cap ends the
    /// iteration with an error: the listing is a failed part, never a partial one taken as whole.
    public struct Iterator: AsyncIteratorProtocol {
        let fetchPage: FetchPage
        let maxPages: Int
        var cursor: PageCursor?
        var finished = false
        var visited = Set<PageCursor>()
        var pages = 0

        init(fetchPage: @escaping FetchPage, maxPages: Int) {
            self.fetchPage = fetchPage
            self.maxPages = maxPages
        }

        public mutating func next() async throws -> [Item]? {
            guard !finished else { return nil }
            guard pages < maxPages else {
                finished = true
                throw ECSError(
                    kind: .malformedResponse, message: "the listing goes on past \(maxPages) pages; stopped", operation: "pagination", isRetryable: false)
            }
            pages += 1
            let (items, next) = try await fetchPage(cursor)
            if let next {
                guard visited.insert(next).inserted, next != cursor else {
                    finished = true
                    throw ECSError(
                        kind: .malformedResponse, message: "the listing's next page \(next) was already read; stopped", operation: "pagination",
                        isRetryable: false)
                }
                cursor = next
            } else {
                finished = true
            }
            if items.isEmpty && finished { return nil }
            return items
        }
    }
}
