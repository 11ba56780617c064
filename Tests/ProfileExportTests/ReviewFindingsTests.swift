import Foundation
import OrderedCollections
import Testing
@testable import ProfileExport

/// Review findings: each test fails while its bug is present.
@Suite struct ReviewFindingsTests {
    // MARK: Secrets (spec §8, §10)

    static let duplicateKeyYAML = destinationsYAML + """

        audiences:
          - {id: a, name: A, name: B}
        dataflows: []
        """

    /// Yams' duplicate-key error carries the whole YAML text; the loader prints it, SAS key included.
    @Test func duplicateKeyConfigErrorNeverShowsTheSASKey() {
        #expect(throws: ProfileExportError.self) { try ExportConfiguration.parse(yaml: Self.duplicateKeyYAML, file: "hubcast.yaml") }
        do {
            _ = try ExportConfiguration.parse(yaml: Self.duplicateKeyYAML, file: "hubcast.yaml")
        } catch {
            #expect(!error.description.contains("c2VjcmV0"))
            #expect(!error.description.contains("SharedAccessKey="))
        }
    }

    /// Spec §10: every configuration error names the file, the line and the key.
    @Test func duplicateKeyConfigErrorNamesTheLine() {
        do {
            _ = try ExportConfiguration.parse(yaml: Self.duplicateKeyYAML, file: "hubcast.yaml")
            Issue.record("a duplicated key was accepted")
        } catch {
            #expect(error.location?.line == 6)  // "  - {id: a, name: A, name: B}"
        }
    }

    // MARK: ExportStream after a failed batch

    /// A batch whose commit fails is rolled back, but its exports stay in `pending` and are handed
    /// out by the next `nextItem()`; the lines are not re-read, so the updates are lost while events
    /// for them go out.
    @Test func exportsOfARolledBackBatchAreNotHandedOut() throws {
        let folder = temporaryFolder()
        let path = folder + "/updates.jsonl"
        try ((1...3).map(StreamTests.join).joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let store = try SQLiteProfileStore(folder: folder + "/store")
        let harness = try Harness(ExportRuleTests.yaml, store: store)
        nonisolated(unsafe) var failures = 1
        let stream = ExportStream(engine: harness.engine, reader: try LineReader(path: path), onBatch: { _ throws(ProfileExportError) in
            if failures > 0 {
                failures -= 1
                throw ProfileExportError(.store, "outbox full (simulated)")
            }
        })
        #expect(throws: ProfileExportError.self) { try stream.nextItem() }
        #expect(try store.profileCount() == 0)
        // Pulling again must not hand out events of updates that were rolled back.
        var handedOut: [ExportItem] = []
        while let item = try stream.nextItem() { handedOut.append(item) }
        for item in handedOut {
            #expect(try store.profile(key: item.profileKey) != nil, "exported \(item.partitionKey), whose update was rolled back")
        }
    }

    // MARK: Attribute writes (spec §9, §11)

    /// §9: writes are deep-merged. Writing an empty object must not wipe what is stored under it
    /// (here it wipes person.name and makes the profile exit 'johns').
    @Test func emptyObjectWriteDoesNotWipeTheStoredObject() throws {
        let harness = try Harness(ExportRuleTests.yaml)
        try harness.apply(#"{"profileId": "p", "identities": {"ecid": ["e1"]}, "attributes": {"person": {"name": {"firstName": "John"}}}}"#)
        let items = try harness.apply(#"{"profileId": "p", "attributes": {"person": {"name": {}}}}"#)
        let profile = try #require(try harness.profile("p"))
        #expect(profile.attributes["person"]?.value(at: try AttributePath("name.firstName")) == .string("John"))
        #expect(profile.memberships["johns"]?.status.isMember == true)
        #expect(items.isEmpty)
    }

    static let tierYAML = destinationsYAML + """

        audiences:
          - {id: kind-a, rule: 'kind = "A"'}
        dataflows:
          - {id: flow, destination: hub, audiences: [kind-a], attributes: [tier]}
        """

    /// §11: removing (a `null` write to) an attribute the profile lacks does nothing. `tier.level`
    /// is absent, yet the write removes the mapped scalar `tier` itself, silently (no export).
    @Test func nullWriteUnderAScalarDoesNotRemoveTheScalar() throws {
        let harness = try Harness(Self.tierYAML)
        try harness.apply(#"{"profileId": "p", "attributes": {"kind": "A", "tier": "gold"}}"#)
        let items = try harness.apply(#"{"profileId": "p", "attributes": {"tier": {"level": null}}}"#)
        #expect(try harness.profile("p")?.attributes["tier"] == .string("gold"))
        #expect(items.isEmpty)
    }

    // MARK: Input handling (spec §9, §11)

    /// An update without a profileId whose only identities are ones to remove, matching no
    /// profile, names no profile: it must not create an empty profile (no id, no identity) that no
    /// later update can ever reach.
    @Test func removalOnlyUpdateMatchingNoProfileCreatesNoProfile() throws {
        let harness = try Harness(ExportRuleTests.yaml)
        _ = try? harness.apply(#"{"removeIdentities": {"ecid": ["nobody"]}}"#)
        #expect(try harness.engine.store.profileCount() == 0)
    }

    /// JSON text must be UTF-8 (RFC 8259). A line with invalid UTF-8 is malformed and must be
    /// rejected (§9), not silently altered: the id bytes `x\xFF` and `x\xFE` both become "x\u{FFFD}",
    /// so two different identities collapse into one (and the second update is mis-rejected as a conflict).
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
        for line in [#"{"profileId": "p\u0000x"}"#, #"{"identities": {"ecid": ["e\u0000"]}}"#,
                     #"{"profileId": "p", "removeIdentities": {"ec\u0000id": ["e"]}}"#] {
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
