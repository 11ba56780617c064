import Foundation
import GRDB
import OrderedCollections
import Testing
@testable import ProfileExport

/// The store's VFS that gathers WAL appends: what a commit wrote is in the files when the commit
/// returns, as another connection (SQLite's default VFS, no buffer) reads them.
@Suite struct WALAppendBufferTests {
    /// `count` profiles in one batch, each with `padding` bytes of attributes.
    private func save(_ count: Int, from first: Int = 0, padding: Int, to store: SQLiteProfileStore) throws {
        let filler = String(repeating: "x", count: padding)
        try store.batch { () throws(ProfileExportError) in
            for index in first..<(first + count) {
                var profile = Profile(key: store.newKey(), profileId: "p\(index)")
                profile.attributes = ["n": .int(Int64(index)), "filler": .string(filler)]
                try store.save(profile, previousIdentities: nil)
            }
        }
    }

    /// What a plain connection to the store's file reads: the profile ids, and the integrity check.
    private func readElsewhere(_ path: String) throws -> (ids: Set<String>, integrity: String) {
        let other = try DatabaseQueue(path: path)
        defer { try? other.close() }
        return try other.read { db in
            (Set(try String.fetchAll(db, sql: "SELECT profile_id FROM profiles")), try String.fetchOne(db, sql: "PRAGMA integrity_check") ?? "")
        }
    }

    @Test func theStoreWritesItsWALThroughTheBuffer() throws {
        let store = try SQLiteProfileStore(folder: temporaryFolder())
        let inUse = try store.inBatch { db in WALAppendBuffer.isInUse(by: db.sqliteConnection!) }
        #expect(inUse)
        let plain = try DatabaseQueue()
        #expect(try plain.read { db in WALAppendBuffer.isInUse(by: db.sqliteConnection!) } == false)
    }

    @Test func eachCommitIsInTheWALWhenItReturns() throws {
        let store = try SQLiteProfileStore(folder: temporaryFolder())
        // Small commits (a few frames, well under the buffer), each read at once by a connection
        // that does not share the store's buffer: it follows the WAL index to frames that must be there.
        for round in 0..<5 {
            try save(3, from: round * 3, padding: 100, to: store)
            let seen = try readElsewhere(store.path)
            #expect(seen.ids == Set((0..<((round + 1) * 3)).map { "p\($0)" }))
            #expect(seen.integrity == "ok")
        }
    }

    @Test func commitsLargerThanTheBufferAndSpilledPagesArriveWhole() throws {
        let store = try SQLiteProfileStore(folder: temporaryFolder())
        // ~6 MiB in one commit: many times the 64 KiB buffer.
        try save(3000, padding: 2000, to: store)
        // A page cache of 20 pages: SQLite writes changed pages to the WAL before the commit
        // (frames without the commit mark), reads some back and writes some again.
        _ = try store.inBatch { db in try db.execute(sql: "PRAGMA cache_size = 20") }
        try save(3000, from: 3000, padding: 2000, to: store)
        let seen = try readElsewhere(store.path)
        #expect(seen.ids.count == 6000)
        #expect(seen.ids.contains("p5999"))
        #expect(seen.integrity == "ok")

        // A batch that fails after spilling: rolled back, nothing of it anywhere.
        #expect(throws: ProfileExportError.self) {
            try store.batch { () throws(ProfileExportError) in
                for index in 6000..<7000 {
                    var profile = Profile(key: store.newKey(), profileId: "p\(index)")
                    profile.attributes = ["filler": .string(String(repeating: "y", count: 2000))]
                    try store.save(profile, previousIdentities: nil)
                }
                throw ProfileExportError(.store, "stop")
            }
        }
        let after = try readElsewhere(store.path)
        #expect(after.ids.count == 6000)
        #expect(after.integrity == "ok")
        #expect(try store.profileCount() == 6000)
    }

    /// What a kill -9 leaves: the database and WAL files as they are on disk, opened elsewhere
    /// without the WAL index, so SQLite recovers from the WAL and checks every frame's checksum.
    private func recoverCopy(of store: SQLiteProfileStore) throws -> SQLiteProfileStore {
        let folder = temporaryFolder()
        let copy = folder + "/profiles.sqlite"
        try FileManager.default.copyItem(atPath: store.path, toPath: copy)
        try FileManager.default.copyItem(atPath: store.path + "-wal", toPath: copy + "-wal")
        return try SQLiteProfileStore(folder: folder)
    }

    @Test func commitsThatRewriteTheirFramesSurviveACrash() throws {
        let store = try SQLiteProfileStore(folder: temporaryFolder())
        try save(500, padding: 300, to: store)
        #expect(try recoverCopy(of: store).profileCount() == 500)
        // A page cache of 20 pages: a batch changing more pages than that writes some to the WAL
        // before its commit and changes them again; at the commit SQLite writes them over and then
        // rewrites the frames' checksums — the commit frame's header last, after its page.
        _ = try store.inBatch { db in try db.execute(sql: "PRAGMA cache_size = 20") }
        try store.batch { () throws(ProfileExportError) in
            for round in 0..<3 {
                for key in 1...500 {
                    guard var profile = try store.profile(key: Int64(key)) else { throw ProfileExportError(.store, "profile \(key) is missing") }
                    profile.attributes["round"] = .int(Int64(round))
                    try store.save(profile, previousIdentities: profile.identities)
                }
            }
        }
        let recovered = try recoverCopy(of: store)
        #expect(try recovered.profileCount() == 500)
        for key in [1, 250, 500] { #expect(try recovered.profile(key: Int64(key))?.attributes["round"] == .int(2)) }
        #expect(try recovered.inBatch { db in try String.fetchOne(db, sql: "PRAGMA integrity_check") } == "ok")
    }

    @Test func foldersWithURICharactersAreUsedAsNamed() throws {
        let folder = temporaryFolder() + "/a?b#c%41d e"
        let store = try SQLiteProfileStore(folder: folder)
        try save(2, padding: 10, to: store)
        #expect(store.path == folder + "/profiles.sqlite")
        #expect(FileManager.default.fileExists(atPath: store.path))
        #expect(try readElsewhere(store.path).ids == ["p0", "p1"])
    }
}
