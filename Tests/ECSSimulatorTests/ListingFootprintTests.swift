import Foundation
import Testing

@testable import ECSAPI
@testable import ECSSimulator

#if canImport(Glibc)
    import Glibc
#endif

/// The heap a listing holds per server once its pages are gone — what the loops keep between
/// passes — for the fast listing path and, for comparison, the full model. Printed for the
/// benchmark, which runs it alone (`--filter ListingFootprintTests`) with `LISTING_FOOTPRINT_CHECK=1`
/// to hold it to its budget: in a whole `swift test` other suites allocate at the same time, so
/// the figure is only printed.
@Suite struct ListingFootprintTests {
    /// Bytes of heap per server kept between passes (`CompactServer`), at most.
    static let budget = 256

    /// Bytes malloc has handed out and not got back — in its arenas and mapped on their own (glibc's
    /// `mallinfo2()`, `uordblks + hblkhd`), 0 where it cannot be read.
    ///
    /// `mallinfo2` is declared in `<malloc.h>`, which the Glibc module does not import: it is looked
    /// up by name and called with the x86-64 convention for an 80-byte result (a hidden pointer to
    /// the caller's buffer in the first argument register).
    static func heapInUse() -> Int {
        #if canImport(Glibc) && arch(x86_64)
            typealias MallInfo2 = @convention(c) (UnsafeMutableRawPointer) -> Void
            guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallinfo2") else { return 0 }
            let mallinfo2 = unsafeBitCast(symbol, to: MallInfo2.self)
            var fields = [Int](repeating: 0, count: 10)
            fields.withUnsafeMutableBytes { mallinfo2($0.baseAddress!) }
            // arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost
            return fields[7] + fields[4]
        #else
            return 0
        #endif
    }

    @Test func listingFootprint() async throws {
        guard Self.heapInUse() > 0 else { return }
        let region = SimulatedRegion(configuration: SimRegionConfiguration(accessKeys: [simAK: simSK], speed: 0, seed: 5))
        let servers = 5000
        await FleetGenerator(projects: 1, serversPerProject: servers, scheduledShare: 0.25, schedules: ["office-hours", "weeknights", "lab"], seed: 5)
            .populate(region, firstProjectIds: [simProject])
        var pages: [[UInt8]] = []
        var marker: String?
        repeat {
            let page = try await ServerListingAgreementTests().renderedPage(region, limit: 1000, marker: marker, microversion: "2.26")
            pages.append(page)
            marker = try ServerListingDecoder.decodePage(page).servers.last?.id
        } while pages.count < servers / 1000

        // Synchronous from here: nothing else of this test allocates in between.
        let beforeCompact = Self.heapInUse()
        var compact: [CompactServer] = []
        var sharing = CompactServer.Sharing()
        for page in pages {
            for server in try ServerListingDecoder.decodePage(page).servers { compact.append(CompactServer(server, sharing: &sharing)) }
        }
        compact.shrinkToFit()
        let compactBytes = Self.heapInUse() - beforeCompact

        let beforeFast = Self.heapInUse()
        var fast: [Server] = []
        for page in pages { fast += try ServerListingDecoder.decodePage(page).servers }
        fast.shrinkToFit()
        let fastBytes = Self.heapInUse() - beforeFast

        let beforeFull = Self.heapInUse()
        var full: [Server] = []
        for page in pages { full += try JSONDecoder().decode(ServerDetailPage.self, from: Data(page)).servers }
        full.shrinkToFit()
        let fullBytes = Self.heapInUse() - beforeFull

        #expect(compact.count == servers && fast.count == servers && full.count == servers)
        let perServer = compactBytes / servers
        print(
            "listing footprint: \(perServer) B/server kept (CompactServer, \(MemoryLayout<CompactServer>.stride) B inline); "
                + "\(fastBytes / servers) B as Server values of the fast decoder, \(fullBytes / servers) B of the full decoder "
                + "(\(MemoryLayout<Server>.stride) B inline); \(servers) servers")
        if ProcessInfo.processInfo.environment["LISTING_FOOTPRINT_CHECK"] == "1" {
            #expect(perServer <= Self.budget, "\(perServer) bytes per server")
        }
        withExtendedLifetime((compact, fast, full)) {}
    }
}

extension Array {
    /// Drops spare capacity, so a measurement counts what is kept rather than growth slack.
    mutating func shrinkToFit() {
        var exact: [Element] = []
        exact.reserveCapacity(count)
        exact.append(contentsOf: self)
        self = exact
    }
}
