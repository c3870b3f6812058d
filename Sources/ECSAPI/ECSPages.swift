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

    /// Creates a sequence from a page fetcher.
    public init(fetchPage: @escaping FetchPage) {
        self.fetchPage = fetchPage
    }

    public func makeAsyncIterator() -> Iterator {
        Iterator(fetchPage: fetchPage)
    }

    /// Fetches every page and returns all items in order.
    public func collect() async throws -> [Item] {
        var all: [Item] = []
        for try await page in self { all.append(contentsOf: page) }
        return all
    }

    /// Iterates pages until the API says there are no more.
    public struct Iterator: AsyncIteratorProtocol {
        let fetchPage: FetchPage
        var cursor: PageCursor?
        var finished = false

        public mutating func next() async throws -> [Item]? {
            guard !finished else { return nil }
            let (items, next) = try await fetchPage(cursor)
            if let next, next != cursor {
                cursor = next
            } else {
                finished = true
            }
            if items.isEmpty && finished { return nil }
            return items
        }
    }
}
