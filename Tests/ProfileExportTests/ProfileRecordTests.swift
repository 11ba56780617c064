import Foundation
import OrderedCollections
import PropertyBased
import Testing
@testable import ProfileExport

/// The durable store's record format: binary round trips, old JSON records, damaged records.
@Suite struct ProfileRecordTests {
    func decode(_ bytes: [UInt8], key: Int64 = 7, profileId: String? = "p7") throws(ProfileExportError) -> Profile {
        try bytes.withUnsafeBufferPointer { buffer throws(ProfileExportError) in
            try ProfileRecord.decode(buffer, key: key, profileId: profileId)
        }
    }

    func roundTrip(_ profile: Profile) throws -> Profile {
        let bytes = ProfileRecord.encode(profile)
        #expect(bytes.first == ProfileRecord.version)
        return try decode(bytes, key: profile.key, profileId: profile.profileId)
    }

    /// Whether decoding `bytes` either succeeds or throws a `.store` error (it must never trap).
    func decodesOrFailsCleanly(_ bytes: [UInt8]) -> Bool {
        do {
            _ = try decode(bytes)
            return true
        } catch {
            return error.code == .store
        }
    }

    func throwsStoreError(_ bytes: [UInt8]) -> Bool {
        do {
            _ = try decode(bytes)
            return false
        } catch {
            return error.code == .store
        }
    }

    static let everyValue: JSONObject = [
        "null": .null, "false": .bool(false), "true": .bool(true),
        "int": .int(1), "double": .double(1), "negative": .int(-42), "fraction": .double(-2.5),
        "min": .int(.min), "max": .int(.max), "tiny": .double(.leastNonzeroMagnitude), "huge": .double(.greatestFiniteMagnitude),
        "infinity": .double(-.infinity), "negativeZero": .double(-0.0),
        "empty string": .string(""), "unicode": .string("prénom 😀 \u{0}\u{1F}\"\\ e\u{0301} \u{2028}"),
        "long": .string(String(repeating: "0123456789", count: 100)),
        "empty object": .object([:]), "empty array": .array([]),
        "array": .array([.null, .int(1), .double(1), .string("x"), .array([.array([])]), .object(["k": .bool(true)])]),
        "ordered": .object(["z": .int(1), "a": .object(["y": .null, "b": .int(2)]), "m": .string("m")]),
        "": .string("empty key"), "😀 key": .int(0),
    ]

    static let everyTrigger: [ExportTrigger] = [
        .membership(audienceId: "gold", status: .realized),
        .membership(audienceId: "silver", status: .existing),
        .membership(audienceId: "", status: .exited),
        .identity(added: [Identity(namespace: "ecid", id: "e1"), Identity(namespace: "email", id: "é@x")], removed: []),
        .identity(added: [], removed: [Identity(namespace: "ecid", id: "")]),
        .identity(added: [], removed: []),
        .attribute(paths: [AttributePath(components: ["person", "name", "firstName"]), AttributePath(components: ["a"])]),
        .attribute(paths: []),
        .backfill(audienceIds: ["gold", "silver"]),
        .backfill(audienceIds: []),
    ]

    static var richProfile: Profile {
        var profile = Profile(key: 7, profileId: "p7")
        profile.identities.add(Identity(namespace: "ecid", id: "e1"))
        profile.identities.add(Identity(namespace: "email", id: "a@example.org"))
        profile.identities.add(Identity(namespace: "ecid", id: "e2"))
        profile.identities.add(Identity(namespace: "😀", id: ""))
        profile.attributes = everyValue
        profile.memberships = [
            "gold": Membership(.realized, at: Timestamp(seconds: 1_764_000_000)),
            "old": Membership(.exited, at: Timestamp(seconds: -62_135_596_800)),
            "silver": Membership(.existing, at: Timestamp(seconds: 0)),
        ]
        profile.ruleVersion = -3
        profile.lastDecisions = [
            "flow": ExportDecision(
                exported: true, time: Timestamp(seconds: 1_764_000_001), triggers: everyTrigger,
                stayed: ["silver"]),
            "other": ExportDecision(exported: false, time: Timestamp(seconds: -1), triggers: []),
        ]
        return profile
    }

    // MARK: - Round trips

    @Test func everyValueKindRoundTrips() throws {
        var profile = Profile(key: 1)
        profile.attributes = Self.everyValue
        let decoded = try roundTrip(profile)
        #expect(decoded == profile)
        #expect(decoded.profileId == nil)
        // Order kept at every level; ints and doubles stay apart.
        #expect(Array(decoded.attributes.keys) == Array(Self.everyValue.keys))
        #expect(decoded.attributes["ordered"]?.object.map { Array($0.keys) } == ["z", "a", "m"])
        #expect(decoded.attributes["ordered"]?.object?["a"]?.object.map { Array($0.keys) } == ["y", "b"])
        #expect(decoded.attributes["int"] == .int(1))
        #expect(decoded.attributes["double"] == .double(1))
        if case .double(let zero)? = decoded.attributes["negativeZero"] { #expect(zero.sign == .minus) } else { Issue.record("not a double") }
    }

    @Test func identitiesMembershipsAndDecisionsRoundTrip() throws {
        let profile = Self.richProfile
        let decoded = try roundTrip(profile)
        #expect(decoded == profile)
        #expect(decoded.identities.all == profile.identities.all)
        #expect(Array(decoded.memberships.keys) == ["gold", "old", "silver"])
        #expect(decoded.lastDecisions["flow"]?.triggers == Self.everyTrigger)
        #expect(decoded.lastDecisions["flow"]?.reason(memberOf: ["gold"]) == profile.lastDecisions["flow"]?.reason(memberOf: ["gold"]))
        #expect(decoded.lastDecisions["flow"]?.stayed == ["silver"])
    }

    @Test func emptyProfileRoundTrips() throws {
        let profile = Profile(key: 0)
        #expect(try roundTrip(profile) == profile)
        #expect(ProfileRecord.encode(profile) == [2, 0, 0, 0, 0, 0])
    }

    @Test func deepNestingRoundTrips() throws {
        var value = JSONValue.int(1)
        for level in 0..<300 { value = level % 2 == 0 ? .array([value]) : .object(["k": value]) }
        var profile = Profile(key: 1)
        profile.attributes = ["deep": value]
        #expect(try roundTrip(profile) == profile)
    }

    @Test func randomProfilesRoundTrip() async {
        await propertyCheck(count: 500, input: ProfileRandom.profile) { profile in
            let bytes = ProfileRecord.encode(profile)
            let decoded = try decode(bytes, key: profile.key, profileId: profile.profileId)
            #expect(decoded == profile)
            #expect(ProfileRecord.encode(decoded) == bytes)
            // Read for an update: everything but the decisions.
            var withoutDecisions = profile
            withoutDecisions.lastDecisions = [:]
            let read = try bytes.withUnsafeBufferPointer { buffer throws(ProfileExportError) in
                try ProfileRecord.decode(buffer, key: profile.key, profileId: profile.profileId, decisions: false)
            }
            #expect(read == withoutDecisions)
        }
    }

    /// The outbox and the dry-run lines write triggers directly; the text is that of their JSON value.
    @Test func triggersWriteTheirJSONText() async {
        for trigger in Self.everyTrigger + [.identity(added: [Identity(namespace: "q\"n", id: "\u{1}")], removed: [])] {
            var direct = JSONWriter()
            trigger.write(to: &direct)
            var viaValue = JSONWriter()
            viaValue.value(trigger.json)
            #expect(direct.text == viaValue.text)
        }
        await propertyCheck(count: 300, input: Generator { rng in ProfileRandom.trigger(using: &rng) }) { trigger in
            var direct = JSONWriter()
            trigger.write(to: &direct)
            var viaValue = JSONWriter()
            viaValue.value(trigger.json)
            #expect(direct.bytes == viaValue.bytes)
        }
    }

    // MARK: - The old JSON format

    /// The record as format 1 wrote it (the encoder before the binary format).
    static func jsonRecord(_ profile: Profile) -> [UInt8] {
        var writer = JSONWriter(capacity: 512)
        writer.beginObject()
        writer.key("i")
        writer.beginObject()
        for (namespace, ids) in profile.identities.namespaces {
            writer.key(namespace)
            writer.beginArray()
            for id in ids { writer.value(id) }
            writer.endArray()
        }
        writer.endObject()
        writer.key("a")
        writer.value(.object(profile.attributes))
        writer.key("m")
        writer.beginObject()
        for (audience, membership) in profile.memberships {
            writer.key(audience)
            writer.beginArray()
            writer.value(membership.status.rawValue)
            writer.value(membership.lastQualificationTime.seconds)
            writer.endArray()
        }
        writer.endObject()
        writer.key("g")
        writer.value(profile.ruleVersion)
        writer.key("d")
        writer.beginObject()
        for (dataflow, decision) in profile.lastDecisions {
            writer.key(dataflow)
            writer.value(decision.json)
        }
        writer.endObject()
        writer.endObject()
        return writer.bytes
    }

    @Test func jsonRecordsStillDecode() throws {
        var profile = Self.richProfile
        // JSON has no infinity; format 1 wrote what JSON can hold.
        profile.attributes["infinity"] = .double(-1e300)
        #expect(try decode(Self.jsonRecord(profile)) == profile)
    }

    @Test func aStoredJSONRecordDecodes() throws {
        let text =
            #"{"i":{"ecid":["e4"],"email":["m4"]},"a":{"person":{"name":{"firstName":"John","lastName":"L4"}},"n":4,"f":1.5},"#
            + #""m":{"johns":["realized",1795341600]},"g":1,"d":{"flow":{"exported":true,"time":1795341600,"#
            + #""triggers":[{"type":"membership","audience":"johns","status":"realized"}],"memberOf":["johns"],"stayed":[]}}}"#
        let profile = try decode(Array(text.utf8), key: 5, profileId: "p4")
        #expect(profile.key == 5 && profile.profileId == "p4")
        #expect(profile.identities.all == [Identity(namespace: "ecid", id: "e4"), Identity(namespace: "email", id: "m4")])
        #expect(
            profile.attributes == [
                "person": .object(["name": .object(["firstName": .string("John"), "lastName": .string("L4")])]),
                "n": .int(4), "f": .double(1.5),
            ])
        #expect(profile.memberships == ["johns": Membership(.realized, at: Timestamp(seconds: 1_795_341_600))])
        #expect(profile.ruleVersion == 1)
        #expect(
            profile.lastDecisions["flow"]
                == ExportDecision(
                    exported: true, time: Timestamp(seconds: 1_795_341_600),
                    triggers: [.membership(audienceId: "johns", status: .realized)]))
        // Saving it again writes format 2.
        #expect(ProfileRecord.encode(profile).first == 2)
    }

    @Test func damagedJSONRecordsAreStoreErrors() {
        #expect(throwsStoreError(Array(#"{"i": "#.utf8)))
        #expect(throwsStoreError(Array(#"{"i": {"ecid": "e1"}}"#.utf8)))
        #expect(throwsStoreError(Array(#"{"m": {"a": ["joined", 1]}}"#.utf8)))
    }

    // MARK: - Damaged records

    @Test func everyTruncationIsAStoreError() {
        let bytes = ProfileRecord.encode(Self.richProfile)
        for length in 0..<bytes.count {
            #expect(throwsStoreError(Array(bytes.prefix(length))), "truncated to \(length) of \(bytes.count) bytes")
        }
    }

    @Test func malformedRecordsAreStoreErrors() {
        let valid = ProfileRecord.encode(Self.richProfile)
        #expect(throwsStoreError(valid + [0]), "a byte after the end")
        #expect(throwsStoreError([]), "empty")
        #expect(throwsStoreError([3] + valid.dropFirst()), "unknown format")
        #expect(throwsStoreError([0]))
        // Counts and lengths larger than the record, up to the largest varint; one varint too long.
        #expect(throwsStoreError([2, 0, 1, 0x80 | 1, 0x7F, 5]))
        #expect(throwsStoreError([2, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0, 0, 0, 0]))
        #expect(throwsStoreError([2, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02, 0]))
        #expect(throwsStoreError([2, 0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0]))
        // Unknown tags and statuses; a double cut short; a member, an audience and a dataflow twice.
        #expect(throwsStoreError([2, 0, 1, 1, 0x61, 8, 0, 0]))
        #expect(throwsStoreError([2, 0, 1, 1, 0x61, 4, 0, 0, 0, 0, 0, 0, 0]))
        #expect(throwsStoreError([2, 0, 0, 1, 1, 0x61, 3, 0, 0, 0]))
        #expect(throwsStoreError([2, 0, 2, 1, 0x61, 0, 1, 0x61, 0, 0, 0, 0]))
        #expect(throwsStoreError([2, 0, 0, 2, 1, 0x61, 0, 0, 1, 0x61, 1, 0, 0, 0]))
        #expect(throwsStoreError([2, 0, 0, 0, 0, 2, 1, 0x66, 0, 0, 0, 0, 0, 1, 0x66, 0, 0, 0, 0, 0]))
        // A namespace without ids, an attribute path without steps, a decision that is neither.
        #expect(throwsStoreError([2, 1, 1, 0x65, 0, 0, 0, 0, 0]))
        #expect(throwsStoreError([2, 0, 0, 0, 0, 1, 1, 0x66, 0, 0, 1, 2, 1, 0, 0, 0]))
        #expect(throwsStoreError([2, 0, 0, 0, 0, 1, 1, 0x66, 2, 0, 0, 0, 0]))
        // Nesting far deeper than the limit fails cleanly instead of exhausting the stack.
        let deep: [UInt8] = [2, 0, 1, 1, 0x61] + Array(repeating: [6, 1], count: 100_000).joined() + [0, 0, 0, 0]
        #expect(throwsStoreError(deep))
    }

    @Test func randomBytesNeverTrap() {
        var rng = Xoshiro(seed: (1, 2, 3, 4))
        for round in 0..<20_000 {
            var bytes = (0..<Int.random(in: 0...48, using: &rng)).map { _ in
                // Mostly small bytes, so that counts and tags are often plausible.
                Bool.random(using: &rng) ? UInt8.random(in: 0...8, using: &rng) : UInt8.random(in: .min ... .max, using: &rng)
            }
            if round % 4 != 0, !bytes.isEmpty { bytes[0] = ProfileRecord.version }
            #expect(decodesOrFailsCleanly(bytes), "\(bytes)")
        }
    }

    @Test func flippedBytesNeverTrap() {
        let valid = ProfileRecord.encode(Self.richProfile)
        var rng = Xoshiro(seed: (5, 6, 7, 8))
        for _ in 0..<20_000 {
            var bytes = valid
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                bytes[Int.random(in: 1..<bytes.count, using: &rng)] = UInt8.random(in: .min ... .max, using: &rng)
            }
            #expect(decodesOrFailsCleanly(bytes))
        }
    }
}

/// Random profiles for the record round trip: any strings, any numbers, nested values.
enum ProfileRandom {
    typealias RNG = any SeededRandomNumberGenerator

    static func text(using rng: inout RNG) -> String {
        var text = String.UnicodeScalarView()
        for _ in 0..<Int.random(in: 0...6, using: &rng) { text.append(RuleRandom.oddScalars.randomElement(using: &rng)!) }
        if Int.random(in: 0..<20, using: &rng) == 0 { text.append(contentsOf: String(repeating: "x", count: 200).unicodeScalars) }
        return String(text)
    }

    static func value(depth: Int, using rng: inout RNG) -> JSONValue {
        switch Int.random(in: 0..<(depth > 0 ? 9 : 7), using: &rng) {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &rng))
        case 2: return .int(Int64.random(in: -1000...1000, using: &rng))
        case 3: return .int(Int64.random(in: .min ... .max, using: &rng))
        case 4:
            var double: Double
            repeat { double = Double(bitPattern: UInt64.random(in: .min ... .max, using: &rng)) } while double.isNaN
            return .double(double)
        case 5: return .double(Double(Int.random(in: -5...5, using: &rng)) / 2)
        case 6: return .string(text(using: &rng))
        case 7: return .array((0..<Int.random(in: 0...4, using: &rng)).map { _ in value(depth: depth - 1, using: &rng) })
        default: return .object(object(depth: depth - 1, using: &rng))
        }
    }

    static func object(depth: Int, using rng: inout RNG) -> JSONObject {
        var object = JSONObject()
        for _ in 0..<Int.random(in: 0...5, using: &rng) { object[text(using: &rng)] = value(depth: depth, using: &rng) }
        return object
    }

    static func strings(using rng: inout RNG) -> [String] {
        (0..<Int.random(in: 0...3, using: &rng)).map { _ in text(using: &rng) }
    }

    static func identities(using rng: inout RNG) -> [Identity] {
        (0..<Int.random(in: 0...2, using: &rng)).map { _ in Identity(namespace: text(using: &rng), id: text(using: &rng)) }
    }

    static func trigger(using rng: inout RNG) -> ExportTrigger {
        switch Int.random(in: 0..<4, using: &rng) {
        case 0: .membership(audienceId: text(using: &rng), status: MembershipStatus.allCases.randomElement(using: &rng)!)
        case 1: .identity(added: identities(using: &rng), removed: identities(using: &rng))
        case 2: .attribute(paths: (0..<Int.random(in: 0...3, using: &rng)).map { _ in RuleRandom.anyPath(using: &rng) })
        default: .backfill(audienceIds: strings(using: &rng))
        }
    }

    static func seconds(using rng: inout RNG) -> Timestamp {
        Timestamp(seconds: Bool.random(using: &rng) ? Int64.random(in: 0...2_000_000_000, using: &rng) : Int64.random(in: .min ... .max, using: &rng))
    }

    static var profile: Generator<Profile, Shrink.None<Profile>> {
        Generator { rng in
            var profile = Profile(key: Int64.random(in: .min ... .max, using: &rng), profileId: Bool.random(using: &rng) ? text(using: &rng) : nil)
            for _ in 0..<Int.random(in: 0...4, using: &rng) {
                profile.identities.add(Identity(namespace: ["ecid", "email", "😀", ""].randomElement(using: &rng)!, id: text(using: &rng)))
            }
            profile.attributes = object(depth: 3, using: &rng)
            for _ in 0..<Int.random(in: 0...4, using: &rng) {
                profile.memberships[text(using: &rng)] = Membership(MembershipStatus.allCases.randomElement(using: &rng)!, at: seconds(using: &rng))
            }
            profile.ruleVersion = Int64.random(in: .min ... .max, using: &rng)
            for _ in 0..<Int.random(in: 0...3, using: &rng) {
                profile.lastDecisions[text(using: &rng)] = ExportDecision(
                    exported: Bool.random(using: &rng), time: seconds(using: &rng),
                    triggers: (0..<Int.random(in: 0...4, using: &rng)).map { _ in trigger(using: &rng) },
                    stayed: strings(using: &rng))
            }
            return profile
        }
    }
}
