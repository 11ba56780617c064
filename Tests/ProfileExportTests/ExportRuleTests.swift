import Foundation
import OrderedCollections
import Testing
@testable import ProfileExport

/// docs/exports.md, docs/payload.md and docs/input.md, one case per rule; each fails if its rule is broken.
@Suite struct ExportRuleTests {
    static let yaml =
        destinationsYAML + """

            audiences:
              - {id: johns, name: Johns, mergePolicy: default, rule: 'person.name.firstName = "John"'}
              - {id: vip, name: VIP, mergePolicy: default}
              - {id: same-policy, mergePolicy: default}
              - {id: other-policy, mergePolicy: other}
            dataflows:
              - id: flow
                destination: hub
                audiences: [johns, vip]
                attributes: [person.name.firstName, person.name.lastName, personalEmail.address]
                partitionKey: ecid
              - id: second
                destination: hub
                audiences: [same-policy]
                attributes: [person.name.lastName]
            """

    func harness() throws -> Harness { try Harness(Self.yaml) }

    func join(_ harness: Harness) throws {
        let items = try harness.apply(
            #"{"profileId": "p", "timestamp": "2026-11-22T10:00:00Z", "identities": {"ecid": ["e1"]}, "attributes": {"person": {"name": {"firstName": "John", "lastName": "Doe"}}}}"#
        )
        #expect(items.map(\.dataflow) == ["flow"])
        #expect(items.first?.triggers.first == .membership(audienceId: "johns", status: .realized))
    }

    @Test func newQualifierIsExportedWithRealizedAtTheUpdateTime() throws {
        let harness = try harness()
        try join(harness)
        let membership = try harness.profile("p")?.memberships["johns"]
        #expect(membership == Membership(.realized, at: try Timestamp(parsing: "2026-11-22T10:00:00Z")))
    }

    @Test func sameValueOverwriteOfMappedAttributeIsExported() throws {
        let harness = try harness()
        try join(harness)
        let items = try harness.apply(
            #"{"profileId": "p", "timestamp": "2026-11-22T11:00:00Z", "attributes": {"person": {"name": {"lastName": "Doe"}}}}"#)
        #expect(items.map(\.dataflow) == ["flow"])
        #expect(items.first?.triggers == [.attribute(paths: [try AttributePath("person.name.lastName")])])
        // The re-evaluation kept the profile qualified: existing, with the time it qualified.
        #expect(items.first?.payloadText.contains(#""johns":{"lastQualificationTime":"2026-11-22T10:00:00Z","status":"existing"}"#) == true)
    }

    @Test func unmappedAttributeWriteIsNotExported() throws {
        let harness = try harness()
        try join(harness)
        let items = try harness.apply(#"{"profileId": "p", "attributes": {"person": {"gender": "m"}, "loyalty": {"points": 3}}}"#)
        #expect(items.isEmpty)
        let profile = try #require(try harness.profile("p"))
        #expect(profile.lastDecisions["flow"]?.exported == false)
        #expect(harness.engine.explanation(of: profile, dataflow: "flow")?.contains("member of johns") == true)
        #expect(harness.engine.explanation(of: profile, dataflow: "flow")?.contains("realized → existing is not a change") == true)
    }

    @Test func realizedToExistingIsNotAnExport() throws {
        let harness = try harness()
        try join(harness)
        #expect(try harness.apply(#"{"profileId": "p", "timestamp": "2026-11-23T10:00:00Z"}"#).isEmpty)
        #expect(try harness.profile("p")?.memberships["johns"]?.status == .existing)
        #expect(try harness.apply(#"{"profileId": "p", "timestamp": "2026-11-24T10:00:00Z"}"#).isEmpty)
    }

    @Test func exitIsExportedWithExitedAtTheUpdateTime() throws {
        let harness = try harness()
        try join(harness)
        let items = try harness.apply(
            #"{"profileId": "p", "timestamp": "2026-11-23T08:30:00Z", "attributes": {"person": {"name": {"firstName": "Jon"}}}}"#)
        #expect(items.map(\.dataflow) == ["flow"])
        #expect(items.first?.triggers.first == .membership(audienceId: "johns", status: .exited))
        #expect(items.first?.payloadText.contains(#""johns":{"lastQualificationTime":"2026-11-23T08:30:00Z","status":"exited"}"#) == true)
        // A later update: the exit is not listed again and nothing is exported.
        #expect(try harness.apply(#"{"profileId": "p", "attributes": {"person": {"name": {"lastName": "X"}}}}"#).isEmpty)
    }

    @Test func identityChangeOfAMemberIsExported() throws {
        let harness = try harness()
        try join(harness)
        let items = try harness.apply(#"{"profileId": "p", "identities": {"email": ["a@b.c"]}}"#)
        #expect(items.first?.triggers == [.identity(added: [Identity(namespace: "email", id: "a@b.c")], removed: [])])
        #expect(items.first?.payloadText.hasSuffix(#""identityMap":{"ecid":[{"id":"e1"}],"email":[{"id":"a@b.c"}]}}"#) == true)
        let removal = try harness.apply(#"{"profileId": "p", "removeIdentities": {"email": ["a@b.c"]}}"#)
        #expect(removal.first?.triggers == [.identity(added: [], removed: [Identity(namespace: "email", id: "a@b.c")])])
        // The emptied namespace disappears from identityMap (docs/payload.md#identity-map).
        #expect(removal.first?.payloadText.hasSuffix(#""identityMap":{"ecid":[{"id":"e1"}]}}"#) == true)
    }

    @Test func resendingOrRemovingAbsentIdentitiesIsNoChange() throws {
        let harness = try harness()
        try join(harness)
        #expect(try harness.apply(#"{"profileId": "p", "identities": {"ecid": ["e1"]}, "removeIdentities": {"email": ["nope"]}}"#).isEmpty)
    }

    @Test func identityChangeOfANonMemberIsNotExported() throws {
        let harness = try harness()
        #expect(
            try harness.apply(#"{"profileId": "q", "identities": {"ecid": ["e9"]}, "attributes": {"person": {"name": {"firstName": "Ann"}}}}"#)
                .isEmpty)
        #expect(try harness.apply(#"{"profileId": "q", "identities": {"email": ["q@x"]}}"#).isEmpty)
        let profile = try #require(try harness.profile("q"))
        #expect(harness.engine.explanation(of: profile, dataflow: "flow")?.contains("none of the mapped audiences") == true)
    }

    @Test func mergePolicyDecidesWhichUnmappedAudiencesRideAlong() throws {
        let harness = try harness()
        try harness.apply(
            #"{"profileId": "p", "segmentMembership": {"ups": {"same-policy": {"status": "realized"}, "other-policy": {"status": "realized"}}}}"#)
        let items = try harness.apply(
            #"{"profileId": "p", "timestamp": "2026-11-22T10:00:00Z", "attributes": {"person": {"name": {"firstName": "John"}}}}"#)
        let flow = try #require(items.first { $0.dataflow == "flow" })
        #expect(flow.payloadText.contains(#""same-policy":"#))
        #expect(!flow.payloadText.contains(#""other-policy":"#))
        // Unmapped in this dataflow, though mapped in another: no mapping times, listed as (c).
        #expect(flow.payloadText.contains(#""ups":{"johns":{"lastQualificationTime":"2026-11-22T10:00:00Z","status":"realized"},"same-policy":"#))
    }

    @Test func noMergePolicyRideAlongWithoutAMappedEntry() throws {
        let harness = try harness()
        // Member of 'same-policy' (mapped only in 'second'): 'second' exports on the join.
        let items = try harness.apply(#"{"profileId": "p", "segmentMembership": {"ups": {"same-policy": {"status": "realized"}}}}"#)
        #expect(items.map(\.dataflow) == ["second"])
        #expect(items.first?.payloadText.contains("johns") == false)
    }

    @Test func missingMappedAttributeIsLeftOutNotNull() throws {
        let harness = try harness()
        let items = try harness.apply(#"{"profileId": "p", "attributes": {"person": {"name": {"firstName": "John"}}}}"#)
        #expect(items.first?.payloadText.hasPrefix(#"{"person":{"name":{"firstName":"John"}},"segmentMembership""#) == true)
        #expect(items.first?.payloadText.contains("null") == false)
    }

    @Test func removingAMappedAttributeIsAChangeAndAbsentRemovalIsNot() throws {
        let harness = try harness()
        try join(harness)
        let items = try harness.apply(#"{"profileId": "p", "removeAttributes": ["person.name.lastName"]}"#)
        #expect(items.first?.triggers == [.attribute(paths: [try AttributePath("person.name.lastName")])])
        #expect(items.first?.payloadText.contains("Doe") == false)
        #expect(try harness.apply(#"{"profileId": "p", "removeAttributes": ["person.name.lastName", "personalEmail.address"]}"#).isEmpty)
        let nullWrite = try harness.apply(#"{"profileId": "p", "attributes": {"person": {"name": {"lastName": "Roe"}}}}"#)
        #expect(nullWrite.count == 1)
        let removed = try harness.apply(#"{"profileId": "p", "attributes": {"person": {"name": {"lastName": null}}}}"#)
        #expect(removed.first?.triggers == [.attribute(paths: [try AttributePath("person.name.lastName")])])
    }

    @Test func writesApplyBeforeRemovals() throws {
        let harness = try harness()
        try join(harness)
        try harness.apply(#"{"profileId": "p", "attributes": {"personalEmail": {"address": "x@y"}}, "removeAttributes": ["personalEmail.address"]}"#)
        #expect(try harness.profile("p")?.attributes["personalEmail"] == nil)
    }

    @Test func partitionKeyFallsBackToProfileIdThenFirstIdentity() throws {
        let harness = try harness()
        let withId = try harness.apply(
            #"{"profileId": "p", "identities": {"email": ["a"]}, "attributes": {"person": {"name": {"firstName": "John"}}}}"#)
        #expect(withId.first?.partitionKey == "p")
        let withEcid = try harness.apply(#"{"profileId": "p", "identities": {"ecid": ["e5", "e6"]}}"#)
        #expect(withEcid.first?.partitionKey == "e5")
        let anonymous = try harness.apply(
            #"{"identities": {"email": ["z"], "ecid2": ["y"]}, "attributes": {"person": {"name": {"firstName": "John"}}}}"#)
        #expect(anonymous.first?.partitionKey == "z")
    }

    @Test func identityConflictsAreRejectedAndChangeNothing() throws {
        let harness = try harness()
        try harness.apply(#"{"profileId": "a", "identities": {"ecid": ["1"]}}"#)
        try harness.apply(#"{"profileId": "b", "identities": {"ecid": ["2"]}}"#)
        for line in [
            #"{"identities": {"ecid": ["1", "2"]}}"#, #"{"profileId": "a", "identities": {"ecid": ["2"]}}"#,
            #"{"profileId": "c", "identities": {"ecid": ["1"]}, "attributes": {"x": 1}}"#,
        ] {
            #expect { try harness.apply(line) } throws: { ($0 as? ProfileExportError)?.code == .identityConflict }
        }
        #expect(try harness.profile("a")?.identities.all == [Identity(namespace: "ecid", id: "1")])
        #expect(try harness.profile("c") == nil)
    }

    @Test func anonymousProfileTakesTheFirstProfileIdThatNamesIt() throws {
        let harness = try harness()
        try harness.apply(#"{"identities": {"ecid": ["1"]}, "attributes": {"x": 1}}"#)
        try harness.apply(#"{"profileId": "named", "identities": {"ecid": ["1"]}, "attributes": {"y": 2}}"#)
        let profile = try #require(try harness.profile("named"))
        #expect(profile.attributes["x"] == .int(1) && profile.attributes["y"] == .int(2))
        #expect(try harness.engine.store.profileCount() == 1)
        #expect { try harness.apply(#"{"profileId": "other", "identities": {"ecid": ["1"]}}"#) } throws: {
            ($0 as? ProfileExportError)?.code == .identityConflict
        }
    }

    @Test func removingAnIdentityOfAnotherProfileIsNoChangeNotAConflict() throws {
        let harness = try harness()
        try harness.apply(#"{"profileId": "a", "identities": {"ecid": ["1"]}}"#)
        try harness.apply(#"{"profileId": "b", "identities": {"ecid": ["2"]}}"#)
        try harness.apply(#"{"profileId": "a", "removeIdentities": {"ecid": ["2"]}}"#)
        #expect(try harness.profile("b")?.identities.all == [Identity(namespace: "ecid", id: "2")])
        #expect(try harness.profile("a")?.identities.all == [Identity(namespace: "ecid", id: "1")])
        // Without a profile id, identities to remove that belong to two profiles are ambiguous.
        #expect { try harness.apply(#"{"removeIdentities": {"ecid": ["1", "2"]}}"#) } throws: {
            ($0 as? ProfileExportError)?.code == .identityConflict
        }
    }

    @Test func removingIdentitiesOfNoProfileMakesNoProfile() throws {
        let harness = try harness()
        #expect { try harness.apply(#"{"removeIdentities": {"ecid": ["nobody"]}, "attributes": {"x": 1}}"#) } throws: {
            ($0 as? ProfileExportError)?.code == .invalidUpdate
        }
        #expect(try harness.engine.store.profileCount() == 0)
    }

    @Test func profileFoundByIdentityWithoutProfileId() throws {
        let harness = try harness()
        try harness.apply(#"{"profileId": "a", "identities": {"ecid": ["1"]}}"#)
        try harness.apply(#"{"identities": {"ecid": ["1"], "email": ["m"]}, "attributes": {"x": 1}}"#)
        let profile = try harness.profile("a")
        #expect(profile?.identities.all.count == 2)
        #expect(profile?.attributes["x"] == .int(1))
        #expect(try harness.engine.store.profileCount() == 1)
    }

    @Test func upstreamStatusesApplyOnlyToAudiencesWithoutRule() throws {
        let harness = try harness()
        let items = try harness.apply(#"{"profileId": "p", "segmentMembership": {"ups": {"johns": {"status": "realized"}}}}"#)
        #expect(items.isEmpty)
        #expect(try harness.profile("p")?.memberships["johns"] == nil)
    }

    @Test(arguments: [
        #"not json"#, #"[1]"#, #"{"timestamp": "yesterday", "profileId": "p"}"#, #"{"attributes": {"a": 1}}"#,
        #"{"profileId": 5}"#, #"{"profileId": "p", "identities": {"ecid": [1]}}"#,
        #"{"profileId": "p", "removeAttributes": ["a..b"]}"#,
        #"{"profileId": "p", "segmentMembership": {"ups": {"a": {"status": "maybe"}}}}"#,
    ])
    func malformedUpdatesAreRefusedWithAReason(line: String) throws {
        #expect { try ProfileUpdate(jsonLine: line) } throws: { error in
            guard let error = error as? ProfileExportError else { return false }
            return (error.code == .invalidUpdate || error.code == .invalidJSON) && !error.message.isEmpty
        }
    }

    // MARK: Attribute writes (docs/input.md#attribute-writes)

    /// docs/input.md#attribute-writes: writes are deep-merged. Writing an empty object leaves what is
    /// stored under it (it wiped person.name and made the profile exit 'johns').
    @Test func emptyObjectWriteDoesNotWipeTheStoredObject() throws {
        let harness = try Harness(ExportRuleTests.yaml)
        try harness.apply(#"{"profileId": "p", "identities": {"ecid": ["e1"]}, "attributes": {"person": {"name": {"firstName": "John"}}}}"#)
        let items = try harness.apply(#"{"profileId": "p", "attributes": {"person": {"name": {}}}}"#)
        let profile = try #require(try harness.profile("p"))
        #expect(profile.attributes["person"]?.value(at: try AttributePath("name.firstName")) == .string("John"))
        #expect(profile.memberships["johns"]?.status.isMember == true)
        #expect(items.isEmpty)
    }

    static let tierYAML =
        destinationsYAML + """

            audiences:
              - {id: kind-a, rule: 'kind = "A"'}
            dataflows:
              - {id: flow, destination: hub, audiences: [kind-a], attributes: [tier]}
            """

    /// docs/input.md#attribute-writes: removing (a `null` write to) an attribute the profile lacks
    /// does nothing. `tier.level` is absent, so the mapped scalar `tier` stays as it is (the write
    /// removed `tier` itself, silently: no export).
    @Test func nullWriteUnderAScalarDoesNotRemoveTheScalar() throws {
        let harness = try Harness(Self.tierYAML)
        try harness.apply(#"{"profileId": "p", "attributes": {"kind": "A", "tier": "gold"}}"#)
        let items = try harness.apply(#"{"profileId": "p", "attributes": {"tier": {"level": null}}}"#)
        #expect(try harness.profile("p")?.attributes["tier"] == .string("gold"))
        #expect(items.isEmpty)
    }

    // MARK: Input handling (docs/input.md)

    /// An update without a profileId whose only identities are ones to remove, matching no
    /// profile, names no profile: it must not create an empty profile (no id, no identity) that no
    /// later update can ever reach.
    @Test func removalOnlyUpdateMatchingNoProfileCreatesNoProfile() throws {
        let harness = try Harness(ExportRuleTests.yaml)
        _ = try? harness.apply(#"{"removeIdentities": {"ecid": ["nobody"]}}"#)
        #expect(try harness.engine.store.profileCount() == 0)
    }

    /// JSON text must be UTF-8 (RFC 8259). A line with invalid UTF-8 is malformed and is rejected
    /// (docs/input.md), not silently altered (the id bytes `x\xFF` and `x\xFE` both became "x\u{FFFD}",
    /// so two different identities collapsed into one and the second update was mis-rejected as a conflict).
    @Test func invalidUTF8InAnUpdateIsRejectedNotAltered() throws {
        var bytes = Array(#"{"profileId": "a", "identities": {"ecid": ["x"#.utf8)
        bytes.append(0xFF)
        bytes += Array(#""]}}"#.utf8)
        #expect(throws: ProfileExportError.self) {
            try bytes.withUnsafeBufferPointer { try ProfileUpdate(json: JSONParser.parse(bytes: $0)) }
        }
    }

    /// SQLite text ends at a NUL, so "p\u0000x" would be stored as "p": two profiles, or two
    /// identities, would become one in the durable store but not in memory. Such ids are refused
    /// with the reason, in updates and in uploads.
    @Test func idsWithANulCharacterAreRefused() throws {
        for line in [
            #"{"profileId": "p\u0000x"}"#, #"{"identities": {"ecid": ["e\u0000"]}}"#,
            #"{"profileId": "p", "removeIdentities": {"ec\u0000id": ["e"]}}"#,
        ] {
            #expect {
                try ProfileUpdate(jsonLine: line)
            } throws: { error in
                (error as? ProfileExportError)?.message.contains("NUL character") == true
            }
        }
        let (identities, rejected) = UploadFile.parse("ecid,a\u{0}b\necid,ok\n")
        #expect(identities == [Identity(namespace: "ecid", id: "ok")])
        #expect(rejected.map(\.line) == [1] && rejected.first?.reason.contains("NUL") == true)
    }
}

/// Decisions share the plan's trigger lists when they have one trigger; these check that a list
/// is never changed through a decision that has more, and that dataflows mapping more attributes
/// than the plan keeps lists for decide the same.
@Suite struct SharedTriggerTests {
    @Test func triggerListsStayCorrectWhenCombined() throws {
        let harness = try Harness(ExportRuleTests.yaml)
        // Joining `johns`, gaining an identity and writing mapped attributes in one update: three
        // triggers, in spec order.
        let first = try harness.apply(
            #"{"profileId": "p", "identities": {"ecid": ["e1"]}, "attributes": {"person": {"name": {"firstName": "John", "lastName": "Doe"}}}}"#)
        let paths = [try AttributePath("person.name.firstName"), try AttributePath("person.name.lastName")]
        #expect(
            first.first?.triggers == [
                .membership(audienceId: "johns", status: .realized),
                .identity(added: [Identity(namespace: "ecid", id: "e1")], removed: []),
                .attribute(paths: paths),
            ])
        // Another profile joining alone, then writing the same attributes alone: one trigger each,
        // as the shared lists hold them.
        let joined = try harness.apply(#"{"profileId": "q", "attributes": {"person": {"name": {"firstName": "John"}}}}"#)
        #expect(joined.first?.triggers == [.membership(audienceId: "johns", status: .realized), .attribute(paths: [paths[0]])])
        let rewrite = try harness.apply(#"{"profileId": "q", "attributes": {"person": {"name": {"firstName": "John", "lastName": "Roe"}}}}"#)
        #expect(rewrite.first?.triggers == [.attribute(paths: paths)])
        let left = try harness.apply(#"{"profileId": "q", "attributes": {"person": {"name": {"firstName": "Jim"}}}}"#)
        // Left: no longer in a mapped audience, so the write is not a trigger (docs/exports.md#attribute-changes).
        #expect(left.first?.triggers == [.membership(audienceId: "johns", status: .exited)])
        let stayedIn = try harness.apply(#"{"profileId": "p", "attributes": {"person": {"name": {"lastName": "Dee"}}}}"#)
        #expect(stayedIn.first?.triggers == [.attribute(paths: [paths[1]])])
        // Each profile's stored decision is still what it was told.
        #expect(try harness.profile("q")?.lastDecisions["flow"]?.triggers == [.membership(audienceId: "johns", status: .exited)])
        #expect(try harness.profile("p")?.lastDecisions["flow"]?.triggers == [.attribute(paths: [paths[1]])])
        #expect(MembershipStatus.allCases.map(\.ordinal) == [0, 1, 2])
    }

    /// At the largest count with shared lists, and above it.
    @Test(arguments: [DataflowPlan.maxSharedAttributes, DataflowPlan.maxSharedAttributes + 2])
    func dataflowsMappingManyAttributes(count: Int) throws {
        let names = (0..<count).map { "a\($0)" }
        let harness = try Harness(
            destinationsYAML + """

                audiences:
                  - {id: all, rule: 'a0 exists'}
                dataflows:
                  - {id: wide, destination: hub, audiences: [all], attributes: [\(names.joined(separator: ", "))]}
                """)
        try harness.apply(#"{"profileId": "p", "attributes": {"a0": 1}}"#)
        let last = "a\(count - 1)"
        let items = try harness.apply(#"{"profileId": "p", "attributes": {""# + last + #"": 1, "a3": 2, "x": 3}}"#)
        #expect(items.first?.triggers == [.attribute(paths: [try AttributePath("a3"), try AttributePath(last)])])
    }
}
