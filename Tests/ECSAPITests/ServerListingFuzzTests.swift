import Foundation
import Testing

@testable import ECSAPI

/// Seeded random mutations of valid listing pages — truncations, byte flips, deleted and repeated
/// ranges, values of the wrong type, deep nesting — fed to both decoders: the fast one must never
/// crash, never read a page the full one refuses, and never give a different value.
///
/// `swift test` runs a bounded number of cases; `LISTING_FUZZ_ITERATIONS=200000` (and
/// `LISTING_FUZZ_SEED`) runs a longer campaign, as `.ci/run` does for a short one.
@Suite struct ServerListingFuzzTests {
    static let defaultIterations = 3000

    static var iterations: Int {
        ProcessInfo.processInfo.environment["LISTING_FUZZ_ITERATIONS"].flatMap(Int.init) ?? defaultIterations
    }

    static var seed: UInt64 {
        ProcessInfo.processInfo.environment["LISTING_FUZZ_SEED"].flatMap(UInt64.init) ?? 0x5EED_0012
    }

    /// Valid pages in the shapes the API and the simulator send, with the spellings the decoders
    /// must agree on.
    static let corpus: [String] = [
        """
        {"servers":[{"id":"89c312bb-285a-4026-a237-d441908c2f9e","name":"web-01","status":"ACTIVE","tenant_id":"74610f3a","addresses":\
        {"net":[{"OS-EXT-IPS-MAC:mac_addr":"fa:16:3e:89:c3:12","addr":"192.168.0.3","version":4}]},"metadata":{"os_type":"Linux"},\
        "OS-EXT-STS:task_state":null,"OS-EXT-STS:vm_state":"active","OS-EXT-STS:power_state":1,"OS-EXT-AZ:availability_zone":"az1-dc1",\
        "links":[{"rel":"self","href":"https://ecs/v2.1/p/servers/89c312bb"}],"image":{"id":"1189efbf","links":[]},\
        "flavor":{"id":"s3.small.1","links":[{"rel":"bookmark","href":"https://ecs/p/flavors/s3.small.1"}]},"created":"2018-05-11T03:21:56Z",\
        "updated":"2018-05-11T03:22:51Z","locked":false,"host_status":"UP","description":"","tags":["warden-schedule=office-hours","solo"]},\
        {"id":"c0ffee00-0000-4000-8000-000000000001","name":"caf\\u00e9 \\ud83d\\ude00","status":"ERROR","OS-EXT-STS:task_state":"",\
        "OS-EXT-STS:vm_state":"ERROR","OS-EXT-AZ:availability_zone":"az1-dc2","updated":"2019-05-22T07:48:19.000000",\
        "flavor":{"id":"c3.large.2","name":"c3.large.2","vcpus":"2","ram":"4096","disk":"0"},"locked":"true","host_status":"DOWN",\
        "fault":{"code":500,"created":"2019-05-22T07:48:53Z","message":"The ECS is in error state."},"tags":[]}],\
        "servers_links":[{"rel":"next","href":"https://ecs/v2.1/p/servers/detail?limit=2&marker=c0ffee00"}]}
        """,
        """
        {"servers":[{"id":"s-1","name":"n","status":"SHUTOFF","OS-EXT-STS:task_state":"powering-on","OS-EXT-STS:vm_state":"stopped",\
        "OS-EXT-AZ:availability_zone":"eu-west-0b","updated":"2018-01-17T03:03:32+08:00","flavor":{"original_name":"s6.xlarge.2",\
        "vcpus":4,"ram":8192.0,"disk":40},"locked":1,"host_status":"","tags":["k","k=v","=v"],"x":[true,false,null,-1.5e-3,{"y":[]}]},\
        {"id":"s-2","status":"ACTIVE","OS-EXT-STS:task_state":"powering-off","locked":null,"tags":null,"fault":null,"flavor":null}]}
        """,
        #"{"count":2,"servers":[{"id":"a","name":null,"status":5,"OS-EXT-STS:task_state":12,"locked":"no","tags":["x",1]},{"id":"b"}]}"#,
    ]

    /// Fragments spliced into pages: structure, escapes, wrong types, numbers at the edges.
    static let fragments: [String] = [
        "{", "}", "[", "]", ",", ":", "\"", "\\", "\\u", "\\ud800", "\\udc00", "null", "true", "false", "0", "-", "01", "1e400", "1e-400",
        "99999999999999999999", "1.5", "e-400", "e-4000", "e-100", ".0", "0e5", "\"\"", "{}", "[]", "\"x\":1,", "\u{7F}", "\u{0}", "é", "😀", " ",
        "{\"id\":\"z\"}", "\"id\":5,", "\"name\":[],", "\"tags\":[1],", "\"flavor\":\"f\",",
    ]

    /// Well-formed values of every type, put in place of a member's value: the page stays valid JSON
    /// and the decoders must agree on what each field then reads as.
    static let values: [String] = [
        "null", "true", "false", "0", "1", "-1", "2.0", "0.5", "-1.5e-3", "1e400", "1e-400", "99999999999999999999", "\"\"", "\"x\"",
        "\"TRUE\"", "\"yes\"", "\" 42 \"", "\"ACTIVE\"", "\"SHUTOFF\"", "\"caf\\u00e9\"", "\"\\ud83d\\ude00\"", "{}", "[]", "[\"a\"]", "[1]",
        "{\"id\":\"f\"}", "{\"rel\":\"next\"}", "[{\"rel\":\"next\",\"href\":\"h\"}]", "{\"code\":\"500\",\"message\":null}",
    ]

    /// Replaces the scalar value of a random member (a string, number or literal after `":`) with
    /// one of `values`; nil when the chosen place holds none.
    static func replaceValue(in bytes: [UInt8], using random: inout SplitMix64) -> [UInt8]? {
        let starts = bytes.indices.dropLast().filter { bytes[$0] == UInt8(ascii: "\"") && bytes[$0 + 1] == UInt8(ascii: ":") }
        guard let colon = starts.randomElement(using: &random).map({ $0 + 2 }) else { return nil }
        var start = colon
        while start < bytes.count, bytes[start] == UInt8(ascii: " ") { start += 1 }
        guard start < bytes.count else { return nil }
        var end = start
        if bytes[start] == UInt8(ascii: "\"") {
            end += 1
            while end < bytes.count, bytes[end] != UInt8(ascii: "\"") { end += bytes[end] == UInt8(ascii: "\\") ? 2 : 1 }
            end += 1
        } else if bytes[start] == UInt8(ascii: "{") || bytes[start] == UInt8(ascii: "[") {
            return nil
        } else {
            while end < bytes.count, ![UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]")].contains(bytes[end]) { end += 1 }
        }
        guard end <= bytes.count else { return nil }
        var result = bytes
        result.replaceSubrange(start..<end, with: Array(values.randomElement(using: &random)!.utf8))
        return result
    }

    struct SplitMix64: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static func mutate(_ page: [UInt8], using random: inout SplitMix64) -> [UInt8] {
        var bytes = page
        for _ in 0..<Int.random(in: 1...3, using: &random) where !bytes.isEmpty {
            let at = Int.random(in: 0..<bytes.count, using: &random)
            switch Int.random(in: 0..<11, using: &random) {
            case 8, 9, 10:
                if let replaced = replaceValue(in: bytes, using: &random) { bytes = replaced }
            case 0:
                bytes.removeSubrange(at...)
            case 1:
                bytes[at] = UInt8.random(in: 0...255, using: &random)
            case 2:
                bytes[at] ^= 1 << UInt8.random(in: 0..<8, using: &random)
            case 3:
                bytes.removeSubrange(at..<min(bytes.count, at + Int.random(in: 1...16, using: &random)))
            case 4:
                let end = min(bytes.count, at + Int.random(in: 1...40, using: &random))
                bytes.insert(contentsOf: Array(bytes[at..<end]), at: at)
            case 5, 6:
                bytes.insert(contentsOf: Array(fragments.randomElement(using: &random)!.utf8), at: at)
            default:
                let levels = [2, 300, 509, 510, 511, 600].randomElement(using: &random)!
                let nest = String(repeating: "[", count: levels) + String(repeating: "]", count: levels)
                bytes.insert(contentsOf: Array(("\"deep\":" + nest + ",").utf8), at: at)
            }
        }
        return bytes
    }

    @Test func theCorpusAgrees() {
        for page in Self.corpus {
            let outcome = ListingAgreement.check(page)
            guard case .agreed = outcome else {
                Issue.record("corpus page: \(outcome)")
                continue
            }
        }
    }

    @Test func mutatedPagesAreRefusedOrReadAsTheFullDecoderReadsThem() {
        var random = SplitMix64(state: Self.seed)
        let pages = Self.corpus.map { Array($0.utf8) }
        var tally: [String: Int] = [:]
        var failures = 0
        for iteration in 0..<Self.iterations {
            let input = Self.mutate(pages[iteration % pages.count], using: &random)
            let outcome = ListingAgreement.check(input)
            switch outcome {
            case .agreed: tally["agreed", default: 0] += 1
            case .bothFailed: tally["both refused", default: 0] += 1
            case .onlyFastFailed: tally["only the fast decoder refused", default: 0] += 1
            case .onlyFullFailed, .disagreed:
                failures += 1
                if failures <= 5 {
                    Issue.record("iteration \(iteration): \(outcome)\ninput: \(String(decoding: input, as: UTF8.self))")
                }
            }
        }
        // Enough of the mutations must leave a page both read, or agreement is not being tested.
        #expect(tally["agreed", default: 0] > Self.iterations / 10, "\(tally)")
        print("listing fuzz: \(Self.iterations) cases, seed \(Self.seed): \(tally.sorted { $0.key < $1.key }), \(failures) failures")
    }
}
