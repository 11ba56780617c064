import Foundation
import GRDB
import OrderedCollections
import Testing
@testable import ProfileExport

/// The durable store: a real SQLite file, closed and reopened.
@Suite struct StoreTests {
    static let yaml = ExportRuleTests.yaml

    @Test func restartKeepsEveryProfileMembershipAndDecision() throws {
        let folder = temporaryFolder()
        do {
            let harness = try Harness(Self.yaml, store: try SQLiteProfileStore(folder: folder))
            for index in 0..<200 {
                let name = index % 2 == 0 ? "John" : "Ann"
                try harness.apply(
                    #"{"profileId": "p\#(index)", "timestamp": "2026-11-22T10:00:00Z", "identities": {"ecid": ["e\#(index)"], "email": ["m\#(index)"]}, "attributes": {"person": {"name": {"firstName": "\#(name)", "lastName": "L\#(index)"}}, "n": \#(index), "f": 1.5}}"#
                )
            }
            try harness.apply(#"{"profileId": "p0", "removeIdentities": {"email": ["m0"]}}"#)
        }
        let store = try SQLiteProfileStore(folder: folder)
        #expect(try store.profileCount() == 200)
        let harness = try Harness(Self.yaml, store: store)
        let john = try #require(try harness.profile("p4"))
        #expect(john.memberships["johns"] == Membership(.realized, at: try Timestamp(parsing: "2026-11-22T10:00:00Z")))
        #expect(john.identities.all == [Identity(namespace: "ecid", id: "e4"), Identity(namespace: "email", id: "m4")])
        #expect(john.attributes["n"] == .int(4))
        #expect(john.attributes["f"] == .double(1.5))
        #expect(john.lastDecisions["flow"]?.exported == true)
        #expect(try harness.profile("p5")?.memberships.isEmpty == true)
        // Identity index survives: found by identity, and a removed identity is free again.
        #expect(try store.key(identity: Identity(namespace: "ecid", id: "e4")) == john.key)
        #expect(try store.key(identity: Identity(namespace: "email", id: "m0")) == nil)
        // The next update continues from the stored state: realized → existing, not an export.
        #expect(try harness.apply(#"{"profileId": "p4", "attributes": {"x": 1}}"#).isEmpty)
        // New keys do not collide with stored ones.
        try harness.apply(#"{"profileId": "new", "identities": {"ecid": ["n"]}}"#)
        #expect(try store.profileCount() == 201)
    }

    @Test func aStoredProfileSavedUnderAnotherIdIsFoundByTheNewOne() throws {
        let folder = temporaryFolder()
        let key: Int64
        do {
            let store = try SQLiteProfileStore(folder: folder)
            var profile = Profile(key: store.newKey())
            key = profile.key
            profile.identities.add(Identity(namespace: "ecid", id: "e1"))
            try store.save(profile, previousIdentities: nil)
            profile.profileId = "x"
            profile.attributes["a"] = .int(1)
            try store.save(profile, previousIdentities: profile.identities)
            profile.profileId = "y"
            profile.attributes["a"] = .int(2)
            try store.save(profile, previousIdentities: profile.identities)
            profile.attributes["a"] = .int(3)
            try store.save(profile, previousIdentities: profile.identities)
        }
        let store = try SQLiteProfileStore(folder: folder)
        #expect(try store.key(profileId: "x") == nil)
        #expect(try store.key(profileId: "y") == key)
        #expect(try store.key(identity: Identity(namespace: "ecid", id: "e1")) == key)
        let profile = try #require(try store.profile(key: key))
        #expect(profile.profileId == "y")
        #expect(profile.attributes["a"] == .int(3))
        #expect(try store.profileCount() == 1)
    }

    /// The lookup and the save bind through SQLite's C API: ids are bound whole (non-ASCII, long),
    /// and a record damaged in the file is a store error naming the profile, never a crash.
    @Test func idsAreBoundWholeAndDamagedRecordsAreErrors() throws {
        let folder = temporaryFolder()
        let store = try SQLiteProfileStore(folder: folder)
        let ids = ["a", "ab", "Zoë 🚀", String(repeating: "x", count: 300)]
        var keys: [Int64] = []
        for (index, id) in ids.enumerated() {
            var profile = Profile(key: store.newKey(), profileId: id)
            profile.attributes["n"] = .int(Int64(index))
            try store.save(profile, previousIdentities: nil)
            profile.attributes["n"] = .int(Int64(index) + 10)
            try store.save(profile, previousIdentities: profile.identities)  // the UPDATE path
            keys.append(profile.key)
        }
        for (index, id) in ids.enumerated() {
            #expect(try store.key(profileId: id) == keys[index])
            #expect(try store.checkout(key: keys[index])?.attributes["n"] == .int(Int64(index) + 10))
        }
        #expect(try store.key(profileId: "Zoë") == nil)
        // Text with a NUL is refused rather than looked up differently from how GRDB stores it.
        #expect(throws: ProfileExportError.self) { try store.key(profileId: "a\u{0}") }
        try store.databaseQueue.write { db in
            try db.execute(sql: "UPDATE profiles SET record = x'02ff' WHERE profile_id = 'a'")
        }
        #expect(throws: ProfileExportError.self) { try store.key(profileId: "a") }
        do {
            _ = try store.key(profileId: "a")
        } catch {
            #expect(error.code == .store && error.message.contains("profile \(keys[0])") && error.message.contains("damaged"))
        }
        // The statement was reset after the error: the next lookups work.
        #expect(try store.key(profileId: "Zoë 🚀") == keys[2])
    }

    /// Ids the store wrote or found are found again by key alone, but only once the row's id is
    /// checked: a rolled-back insert, an id changed, and rows changed by another connection never
    /// give a wrong key.
    @Test func idsKnownInMemoryAreCheckedAgainstTheirRows() throws {
        let store = try SQLiteProfileStore(folder: temporaryFolder())
        var first = Profile(key: store.newKey(), profileId: "first")
        first.attributes["n"] = .int(1)
        try store.batch { () throws(ProfileExportError) in try store.save(first, previousIdentities: nil) }
        #expect(try store.key(profileId: "first") == first.key)
        #expect(try store.checkout(key: first.key)?.attributes["n"] == .int(1))
        #expect(store.idsFoundInMemory == 1)

        // A dry run saved "dry"; its key goes to "other" next.
        var dryKey: Int64 = 0
        try store.withoutCommitting { () throws(ProfileExportError) in
            let dry = Profile(key: store.newKey(), profileId: "dry")
            dryKey = dry.key
            try store.save(dry, previousIdentities: nil)
        }
        let other = Profile(key: store.newKey(), profileId: "other")
        #expect(other.key == dryKey)
        try store.save(other, previousIdentities: nil)
        #expect(try store.key(profileId: "dry") == nil)
        #expect(try store.key(profileId: "other") == other.key)

        // A failed batch saved "gone": rolled back, its key has no row.
        #expect(throws: ProfileExportError.self) {
            try store.batch { () throws(ProfileExportError) in
                try store.save(Profile(key: store.newKey(), profileId: "gone"), previousIdentities: nil)
                throw ProfileExportError(.store, "disk full (simulated)")
            }
        }
        #expect(try store.key(profileId: "gone") == nil)
        // The profile takes another id.
        var renamed = try #require(try store.checkout(key: first.key))
        renamed.profileId = "renamed"
        try store.save(renamed, previousIdentities: renamed.identities)
        #expect(try store.key(profileId: "first") == nil)
        #expect(try store.key(profileId: "renamed") == first.key)

        // Another connection renames a row and adds one: both found by their ids in the file.
        try store.databaseQueue.write { db in
            try db.execute(sql: "UPDATE profiles SET profile_id = 'elsewhere' WHERE profile_id = 'other'")
            try db.execute(
                sql: "INSERT INTO profiles (key, profile_id, record) SELECT 100, 'added', record FROM profiles WHERE key = ?",
                arguments: [first.key])
        }
        #expect(try store.key(profileId: "other") == nil)
        #expect(try store.key(profileId: "elsewhere") == other.key)
        #expect(try store.key(profileId: "added") == 100)
        #expect(try store.checkout(key: 100)?.attributes["n"] == .int(1))
        let found = store.idsFoundInMemory
        #expect(try store.key(profileId: "added") == 100)
        #expect(try store.key(profileId: "renamed") == first.key)
        #expect(store.idsFoundInMemory == found + 2)
    }

    /// The engine reads a stored profile without its decisions (it decides every dataflow again);
    /// an update it refuses in a batch that goes on (as a stream skips a bad line) leaves the stored
    /// decisions as they were.
    @Test func aRefusedUpdateLeavesTheStoredDecisions() throws {
        let store = try SQLiteProfileStore(folder: temporaryFolder())
        let harness = try Harness(Self.yaml, store: store)
        try harness.apply(#"{"profileId": "a", "identities": {"ecid": ["1"]}, "attributes": {"person": {"name": {"firstName": "John"}}}}"#)
        let before = try #require(try harness.profile("a"))
        #expect(before.lastDecisions["flow"]?.exported == true)
        let conflict = try ProfileUpdate(jsonLine: #"{"profileId": "c", "identities": {"ecid": ["1"]}}"#)
        _ = try store.batch { () throws(ProfileExportError) in
            #expect(throws: ProfileExportError.self) { try harness.engine.apply(conflict) }
        }
        #expect(try harness.profile("a") == before)
        let key = try #require(try store.key(profileId: "a"))
        #expect(try store.checkoutReplacingDecisions(key: key)?.lastDecisions.isEmpty == true)
        #expect(try store.checkout(key: key)?.lastDecisions == before.lastDecisions)
        // The next update decides every dataflow again.
        try harness.apply(#"{"profileId": "a", "attributes": {"x": 1}}"#)
        let after = try #require(try harness.profile("a"))
        #expect(Array(after.lastDecisions.keys) == ["flow", "second"])
        #expect(after.lastDecisions["flow"]?.exported == false)
    }

    /// The page cache is the size asked for (SQLite counts it in KiB when negative); out of range is
    /// a clear error.
    @Test func thePageCacheIsTheSizeAskedFor() throws {
        func cacheSetting(_ store: SQLiteProfileStore) throws -> Int {
            try store.inBatch { db in try Int.fetchOne(db, sql: "PRAGMA cache_size") ?? 0 }
        }
        #expect(try cacheSetting(SQLiteProfileStore(folder: temporaryFolder("cache-default"))) == -SQLiteProfileStore.defaultCacheMiB * 1024)
        #expect(try cacheSetting(SQLiteProfileStore(folder: temporaryFolder("cache-768"), cacheMiB: 768)) == -768 * 1024)
        #expect { try SQLiteProfileStore(folder: temporaryFolder("cache-0"), cacheMiB: 0) } throws: { error in
            (error as? ProfileExportError)?.message.contains("page cache must be from 1 to 1048576 MiB, not 0") == true
        }
    }

    /// The default page cache is a quarter of the memory the process may use — the control group's
    /// limit when it is lower than the machine's — at least 64 MiB.
    @Test func theDefaultPageCacheIsAQuarterOfTheMemory() throws {
        #expect(SQLiteProfileStore.automaticCacheMiB(memoryBytes: 24 << 30) == 6_144)
        #expect(SQLiteProfileStore.automaticCacheMiB(memoryBytes: 512 << 20) == 128)
        #expect(SQLiteProfileStore.automaticCacheMiB(memoryBytes: 100 << 20) == 64)
        #expect(SQLiteProfileStore.automaticCacheMiB(memoryBytes: nil) == 64)
        #expect(SQLiteProfileStore.automaticCacheMiB(memoryBytes: .max) == SQLiteProfileStore.cacheMiBRange.upperBound)
        // The lowest limit from the process's group up to the root, cgroup v2 and v1 (files as the
        // kernel writes them; `max` and v1's huge number mean none).
        func limit(_ membership: String, _ files: [String: String]) -> UInt64? {
            MemoryLimit.groupLimit(membership: membership) { files[$0] }
        }
        #expect(
            limit(
                "0::/system.slice/hubcast.service\n",
                [
                    "/sys/fs/cgroup/system.slice/hubcast.service/memory.max": "1073741824\n",
                    "/sys/fs/cgroup/system.slice/memory.max": "max\n",
                ]) == 1 << 30)
        #expect(limit("0::/\n", ["/sys/fs/cgroup/memory.max": "536870912\n"]) == 512 << 20)
        #expect(
            limit(
                "4:memory:/process_api/x\n3:cpuset:/\n0::/\n",
                [
                    "/sys/fs/cgroup/memory/process_api/x/memory.limit_in_bytes": "9223372036854771712\n",
                    "/sys/fs/cgroup/memory/process_api/memory.limit_in_bytes": "2147483648\n",
                    "/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
                ]) == 2 << 30)
        #expect(limit("0::/a/b\n", ["/sys/fs/cgroup/a/b/memory.max": "max\n"]) == nil)
        #expect(limit("", [:]) == nil)
        // This process: at most the machine's memory, and the store's default follows it.
        let memory = try #require(MemoryLimit.bytes)
        #expect(memory <= UInt64(sysconf(Int32(_SC_PHYS_PAGES))) * UInt64(sysconf(Int32(_SC_PAGESIZE))))
        #expect(SQLiteProfileStore.defaultCacheMiB == SQLiteProfileStore.automaticCacheMiB(memoryBytes: memory))
    }

    @Test func failedBatchRollsBackEverything() throws {
        let store = try SQLiteProfileStore(folder: temporaryFolder())
        let harness = try Harness(Self.yaml, store: store)
        #expect(throws: ProfileExportError.self) {
            try store.batch { () throws(ProfileExportError) in
                _ = try harness.engine.apply(try ProfileUpdate(jsonLine: #"{"profileId": "a"}"#))
                throw ProfileExportError(.store, "disk full (simulated)")
            }
        }
        #expect(try store.profileCount() == 0)
        #expect(try store.key(profileId: "a") == nil)
    }

    @Test func storeInAnUnwritablePlaceIsAClearError() {
        #expect { try SQLiteProfileStore(folder: "/proc/hubcast-cannot-be-here") } throws: { error in
            (error as? ProfileExportError)?.code == .store
        }
    }

    @Test func namedValuesPersist() throws {
        let folder = temporaryFolder()
        try SQLiteProfileStore(folder: folder).setValue("42", named: "checkpoint")
        #expect(try SQLiteProfileStore(folder: folder).value(named: "checkpoint") == "42")
    }

    /// A new store file has 2 KiB pages; a file an earlier version made with SQLite's 4 KiB keeps
    /// them, through updates and a reopening.
    @Test func newStoresHaveSmallPagesAndOldFilesKeepTheirs() throws {
        func pageSize(_ store: SQLiteProfileStore) throws -> Int {
            try store.inBatch { db in try Int.fetchOne(db, sql: "PRAGMA page_size") ?? 0 }
        }
        #expect(try pageSize(SQLiteProfileStore(folder: temporaryFolder())) == 2048)

        let folder = temporaryFolder()
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let old = try DatabaseQueue(path: folder + "/profiles.sqlite")
        try old.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA page_size = 4096")
            try db.execute(sql: "PRAGMA journal_mode = WAL")
            try db.execute(sql: "CREATE TABLE early (x)")
        }
        try old.close()
        do {
            let store = try SQLiteProfileStore(folder: folder)
            #expect(try pageSize(store) == 4096)
            try Harness(Self.yaml, store: store).apply(#"{"profileId": "p1", "attributes": {"person": {"name": {"firstName": "John"}}}}"#)
        }
        let reopened = try SQLiteProfileStore(folder: folder)
        #expect(try pageSize(reopened) == 4096)
        #expect(
            try Harness(Self.yaml, store: reopened).profile("p1")?.attributes["person"]
                == .object(["name": .object(["firstName": .string("John")])]))
    }

    /// `saveKeepingIdentities` (what the engine calls for an update of a stored profile that names
    /// no identity) stores the changed profile, keeps it found by its identities, follows a new
    /// profile id, and counts it once — in both stores.
    @Test(arguments: ["memory", "sqlite"]) func savingAProfileWithItsIdentitiesKeepsThemIndexed(store kind: String) throws {
        let store: any ProfileStore = kind == "memory" ? MemoryProfileStore() : try SQLiteProfileStore(folder: temporaryFolder())
        let ecid = Identity(namespace: "ecid", id: "e1")
        let key = try store.batch { () throws(ProfileExportError) in
            var profile = Profile(key: try store.newKey(), profileId: "p1")
            profile.identities.add(ecid)
            try store.save(profile, previousIdentities: nil)
            return profile.key
        }
        let checkedOut = try store.batch { () throws(ProfileExportError) in try store.checkoutReplacingDecisions(key: key) }
        try store.batch { () throws(ProfileExportError) in
            guard var profile = checkedOut else { throw ProfileExportError(.store, "profile \(key) is missing") }
            profile.attributes["a"] = .int(2)
            profile.profileId = "p2"
            try store.saveKeepingIdentities(profile)
        }
        #expect(try store.profile(key: key)?.attributes["a"] == .int(2))
        #expect(try store.profile(key: key)?.identities.all == [ecid])
        #expect(try store.key(identity: ecid) == key)
        #expect(try store.key(profileId: "p2") == key)
        #expect(try store.key(profileId: "p1") == nil)
        #expect(try store.profileCount() == 1)
    }

    /// Identities that later updates of a stored profile add or remove are found, or free, at
    /// once; updates naming none (saved without reading them) leave them as they were.
    @Test(arguments: ["memory", "sqlite"]) func identitiesOfLaterUpdatesAreIndexed(store kind: String) throws {
        let store: any ProfileStore = kind == "memory" ? MemoryProfileStore() : try SQLiteProfileStore(folder: temporaryFolder())
        let harness = try Harness(Self.yaml, store: store)
        let e1 = Identity(namespace: "ecid", id: "e1"), e2 = Identity(namespace: "ecid", id: "e2")
        try harness.apply(#"{"profileId": "p1", "attributes": {"n": 1}}"#)
        let key = try #require(try store.key(profileId: "p1"))
        try harness.apply(#"{"profileId": "p1", "identities": {"ecid": ["e1", "e2"]}}"#)
        try harness.apply(#"{"profileId": "p1", "attributes": {"n": 2}}"#)
        #expect(try store.key(identity: e1) == key)
        try harness.apply(#"{"profileId": "p1", "removeIdentities": {"ecid": ["e1"]}}"#)
        try harness.apply(#"{"profileId": "p1", "attributes": {"n": 3}}"#)
        #expect(try store.key(identity: e1) == nil)
        #expect(try store.key(identity: e2) == key)
        // Found by the identity alone: no second profile.
        try harness.apply(#"{"identities": {"ecid": ["e2"]}, "attributes": {"n": 4}}"#)
        #expect(try store.profileCount() == 1)
        #expect(try harness.profile("p1")?.attributes["n"] == .int(4))
    }

    /// Checkpoints gather half as many WAL pages as the database has (at least 10,000), and the
    /// store follows the database as it grows.
    @Test func checkpointsFollowTheDatabaseSize() throws {
        #expect(SQLiteProfileStore.checkpointPages(databasePages: 0) == 10_000)
        #expect(SQLiteProfileStore.checkpointPages(databasePages: 20_000) == 10_000)
        #expect(SQLiteProfileStore.checkpointPages(databasePages: 170_000) == 85_000)

        let store = try SQLiteProfileStore(folder: temporaryFolder())
        func setting() throws -> Int { try store.inBatch { db in try Int.fetchOne(db, sql: "PRAGMA wal_autocheckpoint") ?? 0 } }
        #expect(try setting() == 10_000)
        // ~30,000 pages of 2 KiB.
        try store.inBatch { db in
            try db.execute(
                sql: """
                    CREATE TABLE filler (data BLOB);
                    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 30000)
                    INSERT INTO filler SELECT zeroblob(1900) FROM n;
                    """)
        }
        let pages = try store.inBatch { db in try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0 }
        #expect(pages > 30_000)
        #expect(try setting() == pages / 2)
    }
}
