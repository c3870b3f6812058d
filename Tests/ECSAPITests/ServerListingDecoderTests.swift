import Foundation
import Testing

@testable import ECSAPI

/// The fast listing decoder against the full one on hand-written pages from the API reference
/// (`shared/spec/ecs-api.md` §9.2, §11, §2.11): every field the loops read, in every spelling the
/// full decoder accepts, and the pages it refuses.
@Suite struct ServerListingDecoderTests {
    /// A Nova server with `members` (raw JSON, already comma-separated) after an id.
    func server(_ members: String, id: String = "89c312bb-285a-4026-a237-d441908c2f9e") -> String {
        members.isEmpty ? #"{"id":"\#(id)"}"# : #"{"id":"\#(id)",\#(members)}"#
    }

    func page(_ servers: [String], links: String = "") -> String {
        #"{"servers":[\#(servers.joined(separator: ","))]\#(links)}"#
    }

    func fast(_ json: String) throws -> ServerListingPage {
        try ServerListingDecoder.decodePage(Array(json.utf8))
    }

    func expectAgreement(_ json: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let outcome = ListingAgreement.check(json)
        guard case .agreed = outcome else {
            Issue.record("expected agreement, got \(outcome) for \(json)", sourceLocation: sourceLocation)
            return
        }
    }

    @Test func referenceExampleAtMicroversion226() throws {
        let json = novaReferenceServerPage
        expectAgreement(json)
        let listed = try #require(try fast(json).servers.first)
        #expect(listed.status == .active)
        #expect(listed.taskState == nil)
        #expect(listed.vmState == "active")
        #expect(listed.availabilityZone == "az-test-01")
        #expect(listed.flavor?.id == "s3.small.1")
        #expect(listed.tagPairs == [ServerTag(key: "warden-schedule", value: "office"), ServerTag(key: "solo", value: "")])
        #expect(listed.locked == false)
        #expect(listed.hostStatus == "UP")
        #expect(listed.updatedAt == Date(timeIntervalSince1970: 1_526_008_971))
        // Fields the loops do not read are left empty.
        #expect(listed.metadata.isEmpty && listed.description == nil && listed.created == nil && listed.powerState == nil)
    }

    @Test func everyStatusOfTheReferenceAndUnknownOnes() throws {
        let statuses = [
            "ACTIVE", "BUILD", "REBOOT", "HARD_REBOOT", "REBUILD", "MIGRATING", "RESIZE", "SHUTOFF", "REVERT_RESIZE", "VERIFY_RESIZE",
            "ERROR", "DELETED", "SHELVED", "SHELVED_OFFLOADED", "UNKNOWN", "PAUSED", "SUSPENDED", "SOFT_DELETED", "active", "Shutoff",
            "SHELVING_SOMETHING", "", "ÉTAT",
        ]
        let json = page(statuses.enumerated().map { server(#""status":"\#($0.element)""#, id: "s-\($0.offset)") })
        expectAgreement(json)
        let listed = try fast(json).servers
        #expect(listed.map(\.status) == statuses.map(ServerStatus.init(rawValue:)))
        // A status that is not a string, or none, reads as "" — as in the full decoder.
        for members in [#""status":null"#, #""status":5"#, #""status":{"a":1}"#, ""] {
            expectAgreement(page([server(members)]))
            #expect(try fast(page([server(members)])).servers.first?.status == .other(""))
        }
    }

    @Test func everyTaskAndVmStateSpelling() throws {
        let taskStates = [
            "scheduling", "block_device_mapping", "networking", "spawning", "rebooting", "reboot_pending", "reboot_started", "rebooting_hard",
            "reboot_pending_hard", "reboot_started_hard", "rebuilding", "rebuild_block_device_mapping", "rebuild_spawnning", "rebuild_spawning",
            "migrating", "resize_prep", "resize_migrating", "resize_migrated", "resize_finish", "resize_reverting", "powering-off", "powering-on",
            "deleting", "shelving", "shelving_offloading", "shelving_image_pending_upload", "shelving_image_uploading", "unshelving",
        ]
        let vmStates = ["building", "active", "stopped", "resized", "error", "deleted", "shelved", "shelved_offloaded", "STOPPED", "Active"]
        var servers: [String] = []
        for (index, task) in taskStates.enumerated() {
            servers.append(server(#""OS-EXT-STS:task_state":"\#(task)","OS-EXT-STS:vm_state":"\#(vmStates[index % vmStates.count])""#, id: "t-\(index)"))
        }
        // "" and null are both "no task"; a number, a boolean, an object read as the full decoder reads them.
        for (index, spelling) in [#""""#, "null", "0", "12", "-3", "1.5", "1e2", "-0.0", "1e400", "1e-400", "true", "false", "{}", "[\"x\"]", "1e-100", "123456789012345678901234"].enumerated() {
            servers.append(server(#""OS-EXT-STS:task_state":\#(spelling),"OS-EXT-STS:vm_state":\#(spelling)"#, id: "x-\(index)"))
        }
        servers.append(server("", id: "missing"))
        let json = page(servers)
        expectAgreement(json)
        let listed = try fast(json).servers
        #expect(listed[0].taskState == "scheduling")
        #expect(listed[8].vmState == "stopped")
        #expect(listed[taskStates.count].taskState == nil)
        #expect(listed[taskStates.count + 1].taskState == nil)
        #expect(listed[taskStates.count + 3].taskState == "12")
        #expect(listed[taskStates.count + 5].taskState == "1.5")
        #expect(listed[taskStates.count + 10].taskState == "true")
        #expect(listed.last?.taskState == nil)
    }

    @Test func tagsAsKeyValueStringsBareKeysAndBrokenLists() throws {
        let spellings = [
            #"["warden-schedule=office-hours","solo","k=","=v","a=b=c"]"#, "[]", "null", #"["x",1]"#, #""warden-schedule=office""#, "{}",
            #"["\u0077arden-schedule=lab"]"#,
        ]
        let json = page(spellings.enumerated().map { server(#""tags":\#($0.element)"#, id: "t-\($0.offset)") } + [server("", id: "none")])
        expectAgreement(json)
        let listed = try fast(json).servers
        #expect(listed[0].tagValue("warden-schedule") == "office-hours")
        #expect(listed[0].tagPairs.map(\.key) == ["warden-schedule", "solo", "k", "", "a"])
        #expect(listed[1].tags == [])
        #expect(listed[2].tags == nil)
        #expect(listed[3].tags == nil)
        #expect(listed[4].tags == nil)
        #expect(listed[6].tags == ["warden-schedule=lab"])
        #expect(listed.last?.tags == nil)
    }

    @Test func timeFormatsOfTheReference() throws {
        let times = [
            "2019-05-22T07:48:53Z", "2016-04-25T20:04:47.591Z", "2019-05-22T07:48:19.000000", "2018-05-25T01:47:55.755922",
            "2018-01-17T03:03:32+08:00", "2019-02-13T06:52:13.855000Z", "2019-05-22 07:48:53", "not a time", "",
        ]
        let json = page(times.enumerated().map { server(#""updated":"\#($0.element)""#, id: "u-\($0.offset)") } + [server(#""updated":null"#, id: "n")])
        expectAgreement(json)
        let listed = try fast(json).servers
        #expect(listed[0].updatedAt == Date(timeIntervalSince1970: 1_558_511_333))
        #expect(listed[4].updatedAt == Date(timeIntervalSince1970: 1_516_129_412))
        #expect(listed[7].updated == "not a time" && listed[7].updatedAt == nil)
        #expect(listed[8].updated == nil)
    }

    @Test func unicodeAndEscapedNames() throws {
        let names = [
            #"caf\u00e9"#, #"\ud83d\ude00 smile"#, #"tab\there \"quoted\" back\\slash \/ slash"#, "名前-サーバー", "emoji 🚀 direct",
            #"nul\u0000byte"#, #"\u00"# + "41",
        ]
        let json = page(names.enumerated().map { server(#""name":"\#($0.element)""#, id: "n-\($0.offset)") })
        expectAgreement(json)
        let listed = try fast(json).servers
        #expect(listed[0].name == "café")
        #expect(listed[1].name == "😀 smile")
        #expect(listed[2].name == "tab\there \"quoted\" back\\slash / slash")
        #expect(listed[3].name == "名前-サーバー")
        #expect(listed[5].name == "nul\u{0}byte")
        #expect(listed[6].name == "A")
        // An escaped member name is the name it spells.
        expectAgreement(page([#"{"i\u0064":"x","n\u0061me":"y","\u0073tatus":"SHUTOFF"}"#]))
        #expect(try fast(page([#"{"i\u0064":"x","n\u0061me":"y"}"#])).servers.first?.name == "y")
        // A missing or null name reads as "".
        expectAgreement(page([server(#""name":null"#), server("")]))
    }

    @Test func numbersAndBooleansAsStrings() throws {
        let flavors = [
            #"{"id":"c3.large.2","name":"c3.large.2","vcpus":"2","ram":"4096","disk":"0"}"#,
            #"{"id":"c3.large.2","vcpus":2,"ram":4096.0,"disk":" 40 "}"#, #"{"original_name":"s6.xlarge.2","vcpus":4,"ram":8192,"disk":40}"#,
            #"{"id":"x","vcpus":1.5,"ram":"many","disk":true}"#, #"{"id":5}"#, #"{"id":null,"name":null}"#, "null", #""s3.small.1""#,
            #"{"vcpus":99999999999999999999,"ram":-1e3,"disk":1e2}"#, #"{"vcpus":8192.01e-400,"ram":41e-4000,"disk":1e-100}"#,
            #"{"vcpus":9007199254740993.0,"ram":1e400,"disk":"1e2"}"#,
        ]
        let locks = [
            #"true"#, #"false"#, #""true""#, #""True""#, #""1""#, #""yes""#, #""no""#, #""maybe""#, "1", "0", "2.0", "0.5", "null", "[]", "1e-400",
        ]
        var servers = flavors.enumerated().map { server(#""flavor":\#($0.element)"#, id: "f-\($0.offset)") }
        servers += locks.enumerated().map { server(#""locked":\#($0.element)"#, id: "l-\($0.offset)") }
        let json = page(servers)
        expectAgreement(json)
        let listed = try fast(json).servers
        #expect(listed[0].flavor == ServerFlavorReference(id: "c3.large.2", name: "c3.large.2", vcpus: 2, ram: 4096, disk: 0))
        #expect(listed[1].flavor == ServerFlavorReference(id: "c3.large.2", vcpus: 2, ram: 4096, disk: 40))
        #expect(listed[2].flavor == ServerFlavorReference(id: "s6.xlarge.2", name: "s6.xlarge.2", vcpus: 4, ram: 8192, disk: 40))
        #expect(listed[4].flavor == nil)
        #expect(listed[7].flavor == nil)
        let locked = listed[flavors.count...].map(\.locked)
        #expect(locked == [true, false, true, true, true, true, false, nil, true, false, true, nil, nil, nil, false])
        // Foundation reads a number that underflows as the Int 0 but as no Double: so does the fast path.
        #expect(listed[9].flavor == ServerFlavorReference(id: nil, vcpus: 0, ram: 0, disk: nil))
        #expect(listed[10].flavor == ServerFlavorReference(id: nil, vcpus: 9_007_199_254_740_993, ram: nil, disk: nil))
    }

    @Test func faultsAndHostStatus() throws {
        let faults = [
            #"{"code":500,"created":"2019-05-22T07:48:53Z","message":"The ECS is in error state.","details":"x"}"#, #"{"code":"500","message":"m"}"#,
            #"{"code":null,"message":null}"#, #"{"message":42}"#, #"{"code":1e300}"#, "null", "[]", "{}",
        ]
        var servers = faults.enumerated().map { server(#""status":"ERROR","fault":\#($0.element)"#, id: "e-\($0.offset)") }
        servers += ["UP", "DOWN", "MAINTENANCE", "UNKNOWN", ""].enumerated().map { server(#""host_status":"\#($0.element)""#, id: "h-\($0.offset)") }
        let json = page(servers)
        expectAgreement(json)
        let listed = try fast(json).servers
        #expect(listed[0].fault == ServerFault(code: 500, created: "2019-05-22T07:48:53Z", message: "The ECS is in error state.", details: "x"))
        #expect(listed[1].fault?.code == 500)
        #expect(listed[3].fault == nil)
        #expect(listed[4].fault == ServerFault())
        #expect(listed[faults.count + 1].hostStatus == "DOWN")
        #expect(listed[faults.count + 4].hostStatus == nil)
    }

    @Test func nextLinksAndUnknownPageMembers() throws {
        let next = #","servers_links":[{"rel":"next","href":"https://ecs/v2.1/p/servers/detail?limit=1000&marker=abc"}]"#
        for links in [
            next, "", #","servers_links":[]"#, #","servers_links":null"#, #","servers_links":[{"rel":"self"}]"#,
            #","servers_links":[{"rel":"next","href":5}]"#, #","servers_links":[{"rel":"next"},7]"#, #","servers_links":{"rel":"next"}"#,
            #","servers_links":[{"href":"h","rel":"next"}],"count":"3","extra":{"deep":[[[{}]]]}"#,
        ] {
            expectAgreement(page([server("")], links: links))
        }
        #expect(try fast(page([server("")], links: next)).hasNextLink)
        #expect(try !fast(page([server("")])).hasNextLink)
        #expect(try fast(#"{"servers":[]}"#).servers.isEmpty)
    }

    @Test func sharedStringsAreNeverMixedUp() throws {
        // More distinct long values of one length than the interner has slots: collisions happen.
        let servers = (0..<1500).map { index in
            let n = String(format: "%04d", index)
            return server(
                #""OS-EXT-AZ:availability_zone":"region-az-long-\#(n)","tags":["team=platform-engineering-\#(n)","warden-schedule=office-hours"],"#
                    + #""flavor":{"id":"flavor-with-a-long-id-\#(index % 7)"}"#, id: "s-\(n)")
        }
        let json = page(servers)
        expectAgreement(json)
        let listed = try fast(json).servers
        #expect(listed[1234].availabilityZone == "region-az-long-1234")
        #expect(listed[1234].tags == ["team=platform-engineering-1234", "warden-schedule=office-hours"])
    }

    @Test func tagValueReadsTagsAsTagPairsDoes() {
        let tags = ["warden-schedule=office", "solo", "k=", "=v", "a=b=c", "é=accent", "e\u{301}=combining", "", "warden-schedule=lab"]
        let server = Server(id: "s", name: "n", status: .active, tags: tags)
        for key in ["warden-schedule", "solo", "k", "", "a", "a=b", "é", "e\u{301}", "missing", "warden"] {
            #expect(server.tagValue(key) == server.tagPairs.first { $0.key == key }?.value, "\(key)")
        }
        #expect(Server(id: "s", name: "n", status: .active).tagValue("solo") == nil)
    }

    @Test func duplicateMembersKeepTheFirstValueAsJSONDecoderDoes() throws {
        let json = page([#"{"id":"first","id":"second","name":"a","name":7,"status":"ACTIVE","status":"ERROR","tags":["x"],"tags":null}"#])
        expectAgreement(json)
        let listed = try #require(try fast(json).servers.first)
        #expect(listed.id == "first" && listed.name == "a" && listed.status == .active && listed.tags == ["x"])
    }

    @Test func pagesTheFullDecoderRefusesAreRefused() {
        let refused = [
            "", "null", "[]", #"{"servers":null}"#, #"{"servers":{}}"#, #"{"count":1}"#, #"{"servers":[null]}"#, #"{"servers":[1]}"#,
            page([#"{"name":"no id"}"#]), page([#"{"id":null}"#]), page([#"{"id":5}"#]), page([server(#""name":5"#)]),
            page([server(#""name":["a"]"#)]), page([#"{"id":"\ud800"}"#]), page([server("")]) + "x", #"{"servers":[]"#, #"{"servers":[{"id":"a""#,
        ]
        for json in refused {
            #expect(ListingAgreement.check(json) == .bothFailed, "\(json)")
        }
        #expect(throws: ServerListingDecodingError.self) { try fast(page([server(#""name":5"#)])) }
    }

    @Test func malformedJSONTheFullDecoderLetsPassIsRefusedNotMisread() {
        // Foundation's decoder accepts trailing commas and does not look inside skipped values.
        for json in [
            page([server(#""x":1,"#)]), page([server(#""x":01"#)]), page([server(#""x":"\ud800""#)]), page([server(#""x":"a\#tb""#)]),
            #"{"servers":[],}"#,
        ] {
            let outcome = ListingAgreement.check(json)
            #expect(outcome.isAcceptable, "\(outcome) for \(json)")
            #expect(throws: ServerListingDecodingError.self) { try fast(json) }
        }
    }

    @Test func nestingDeeperThanFoundationAllowsIsRefused() {
        func nested(_ levels: Int) -> String {
            page([server(#""x":\#(String(repeating: "[", count: levels))\#(String(repeating: "]", count: levels))"#)])
        }
        // The server object is level 3; Foundation allows 512 levels in all.
        expectAgreement(nested(509))
        #expect(ListingAgreement.check(nested(510)) == .bothFailed)
        #expect(ListingAgreement.check(nested(5000)) == .bothFailed)
    }

    @Test func theErrorSaysWhereAndWhy() {
        do throws(ServerListingDecodingError) {
            _ = try ServerListingDecoder.decodePage(Array(page([#"{"name":"no id"}"#]).utf8))
            Issue.record("expected an error")
        } catch {
            #expect(error.reason == "a server has no id")
            #expect(error.offset > 0)
        }
    }
}
