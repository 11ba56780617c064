import Foundation
import PropertyBased
import Testing
@testable import ProfileExport

/// `ProfileEngine.prefetch` is a hint: applying updates after it gives exactly what applying them
/// without it gives, in both stores, whatever the updates name.
@Suite struct PrefetchTests {
    /// Updates over a few profiles: new and known ids, identities only, unknown profiles, removals,
    /// writes into objects the profile has and has not, a conflict.
    static func updates() -> [ProfileUpdate] {
        var rng = Xoshiro(seed: (21, 22, 23, 24))
        var updates: [ProfileUpdate] = []
        for index in 0..<600 {
            var update = ProfileUpdate(profileId: Int.random(in: 0..<5, using: &rng) == 0 ? nil : "p\(Int.random(in: 0..<40, using: &rng))")
            if update.profileId == nil || Int.random(in: 0..<6, using: &rng) == 0 {
                update.identities = [Identity(namespace: "ecid", id: "e\(Int.random(in: 0..<50, using: &rng))")]
            }
            switch Int.random(in: 0..<4, using: &rng) {
            case 0: update.attributes = ["person": .object(["name": .object(["firstName": .string(["John", "Ann"][index % 2])])])]
            case 1: update.attributes = ["loyalty": .object(["points": .int(Int64(index))]), "web": .object(["visits": .int(Int64(index))])]
            case 2: update.removeAttributes = [try! AttributePath("loyalty.points")]
            default: update.attributes = ["person": .string("flat"), "x": .null]
            }
            updates.append(update)
        }
        return updates
    }

    /// What applying `updates` gives: each update's items or error, then every stored profile.
    static func outcome(_ updates: [ProfileUpdate], store: any ProfileStore, prefetch: Bool) throws -> ([String], [Profile]) {
        let engine = ProfileEngine(configuration: try ExportConfiguration.parse(yaml: ExportRuleTests.yaml), store: store)
        var results: [String] = []
        try store.batch { () throws(ProfileExportError) in
            for start in stride(from: 0, to: updates.count, by: ProfileEngine.prefetchGroup) {
                let group = updates[start..<min(updates.count, start + ProfileEngine.prefetchGroup)]
                if prefetch { engine.prefetch(group) }
                for update in group {
                    do throws(ProfileExportError) {
                        results.append(try engine.apply(update, receivedAt: Timestamp(seconds: 100)).map(\.jsonLine).joined(separator: "\n"))
                    } catch {
                        results.append("error: \(error)")
                    }
                }
            }
        }
        var profiles: [Profile] = []
        try store.forEachProfile { profiles.append($0) }
        return (results, profiles)
    }

    @Test(arguments: ["memory", "sqlite"])
    func prefetchingChangesNothing(store kind: String) throws {
        let updates = Self.updates()
        func store(_ name: String) throws -> any ProfileStore {
            guard kind == "sqlite" else { return MemoryProfileStore() }
            return try SQLiteProfileStore(folder: temporaryFolder(name))
        }
        let plain = try Self.outcome(updates, store: try store("plain"), prefetch: false)
        let ahead = try Self.outcome(updates, store: try store("ahead"), prefetch: true)
        let sameItems = plain.0 == ahead.0, sameProfiles = plain.1 == ahead.1
        #expect(sameItems, "the exports or errors differ")
        #expect(sameProfiles, "the stored profiles differ")
        #expect(plain.0.contains { $0.hasPrefix("error: ") })
        #expect(plain.0.contains { $0.contains("\"membership\"") })
        #expect(plain.1.count > 30)
    }
}
