// Hubcast — the embedded durable profile store: one SQLite file in WAL mode (through GRDB).

import Foundation
package import GRDB

/// Profiles in one SQLite database file, `profiles.sqlite`, under the configured store folder.
///
/// WAL mode with `synchronous = NORMAL`: a committed ``batch(_:)`` survives a crash of the process
/// (kill -9); a power loss may lose the batches since the last checkpoint (see
/// `checkpointPages(databasePages:)`) but never corrupts the file. Profiles are
/// one compact binary record each (see `ProfileRecord`), indexed by profile id and by every identity.
/// The file is opened through `WALAppendBuffer`, which writes the WAL's appends in large writes.
///
/// The store remembers in memory, for each profile id it wrote or found since it opened, where the
/// profile is (see `knownIds`): 16–32 bytes per profile, ~32 MiB per million.
///
/// SQLite's page cache takes up to `cacheMiB` (by default a quarter of the memory the process may
/// use, see ``defaultCacheMiB``; `storeCacheMiB` in the configuration). Updates go to random
/// profiles, so a cache that holds the whole file spares SQLite reading and parsing each page
/// again (the operating system caches the file either way: what the cache saves is SQLite's own
/// work, which a memory map would not). The cache fills only as pages are read: its memory grows up
/// to the smaller of `cacheMiB` and the file (plus ~10 %).
public final class SQLiteProfileStore: ProfileStore {
    /// The database file.
    public let path: String
    private let queue: DatabaseQueue
    private var current: Database?
    /// The profile the last ``key(profileId:)`` found, without its decisions, until it is checked
    /// out or anything is written.
    private var lookedUp: Profile?
    private var nextKey: Int64 = 1
    /// Profile id → key − 1 for the ids this store wrote or found, so that finding a profile by id
    /// is one search by key instead of two (the profile id index, then the table). Only a hint:
    /// every hit is checked against the row's profile id, an entry that fails the check is
    /// dropped, and an id not found here is looked up in the file — so entries left by a
    /// rolled-back batch, or rows another connection wrote, never give a wrong answer.
    private var knownIds = IdIndex()
    /// How many lookups by profile id `knownIds` answered (for tests and benchmarks).
    package private(set) var idsFoundInMemory = 0
    /// The two statements every update runs, kept for the batch in progress: GRDB's statement cache
    /// hashes the SQL text on every call.
    private var readByKey: Statement?
    private var writeRecord: Statement?
    /// The connection's `wal_autocheckpoint`, as last set.
    private var checkpointEvery = SQLiteProfileStore.checkpointPages(databasePages: 0)

    /// The page cache's size when none is given, in MiB: ``automaticCacheMiB(memoryBytes:)`` of the
    /// memory this process may use (see `MemoryLimit`).
    public static let defaultCacheMiB = automaticCacheMiB(memoryBytes: MemoryLimit.bytes)

    /// A quarter of `memoryBytes` in MiB, at least 64 (64 when it is unknown), at most the largest
    /// cache accepted. SQLite fills its cache only with the pages it reads, so a store smaller than
    /// that takes its own size (with ~10 % of bookkeeping), not the quarter: a small store stays
    /// small, and a large one stops reading and parsing again the pages random updates touch.
    static func automaticCacheMiB(memoryBytes: UInt64?) -> Int {
        guard let memoryBytes else { return 64 }
        return min(cacheMiBRange.upperBound, max(64, Int(clamping: (memoryBytes / 4) >> 20)))
    }
    /// The page cache sizes a store accepts, in MiB.
    public static let cacheMiBRange = 1...1_048_576

    /// Whether the store was opened read-only (see ``init(folder:cacheMiB:readOnly:)``).
    public let isReadOnly: Bool

    /// Opens (or creates) the store in `folder`, creating the folder when needed, with a page cache
    /// of up to `cacheMiB` MiB.
    ///
    /// With `readOnly`, for commands that only look (`hubcast status`, `explain`, `failed list`):
    /// the file must exist (nothing is created, an error says there is no store), is opened with
    /// `SQLITE_OPEN_READONLY`, and works on files the process may not write (chmod a-w) and while
    /// a connector writes to them; every write throws.
    public init(folder: String, cacheMiB: Int = SQLiteProfileStore.defaultCacheMiB, readOnly: Bool = false) throws(ProfileExportError) {
        guard Self.cacheMiBRange.contains(cacheMiB) else {
            throw ProfileExportError(
                .store,
                "the store's page cache must be from \(Self.cacheMiBRange.lowerBound) to \(Self.cacheMiBRange.upperBound) MiB, not \(cacheMiB)")
        }
        isReadOnly = readOnly
        if readOnly {
            path = URL(fileURLWithPath: folder).appendingPathComponent("profiles.sqlite").path
            queue = try Self.openReadOnly(path, cacheMiB: cacheMiB)
            do {
                nextKey = try queue.read { db in try Int64.fetchOne(db, sql: "SELECT max(key) FROM profiles") ?? 0 } + 1
            } catch {
                throw Self.failure(error, "cannot read the profile store at \(path)")
            }
            return
        }
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw ProfileExportError(.store, "cannot create the store folder \(folder): \(error.localizedDescription)")
        }
        path = URL(fileURLWithPath: folder).appendingPathComponent("profiles.sqlite").path
        var configuration = Configuration()
        configuration.journalMode = .wal
        // Another process may hold the write lock for a batch (`hubcast status` while `hubcast run`
        // runs): wait for it rather than fail at once.
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            // Before anything is written: a new file gets pages of `pageBytes`; an existing one
            // keeps its own.
            try db.execute(sql: "PRAGMA page_size = \(Self.pageBytes)")
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            // Updates touch random profiles: a page cache of tens of MiB at least (SQLite's default
            // is 2 MiB) saves reading pages back from the OS and parsing them again. No memory map:
            // it would save only the copy from the OS (BENCHMARKS.md). Checkpoints: see
            // `adjustCheckpoints`.
            try db.execute(sql: "PRAGMA cache_size = -\(cacheMiB * 1024)")
            try db.execute(sql: "PRAGMA wal_autocheckpoint = \(Self.checkpointPages(databasePages: 0))")
        }
        do {
            // Through the VFS that writes the WAL's appends in large writes (see `WALAppendBuffer`).
            queue = try DatabaseQueue(path: WALAppendBuffer.uri(forPath: path), configuration: configuration)
            try queue.write { db in
                try db.execute(
                    sql: """
                        CREATE TABLE IF NOT EXISTS profiles (key INTEGER PRIMARY KEY, profile_id TEXT UNIQUE, record BLOB NOT NULL);
                        CREATE TABLE IF NOT EXISTS identities (namespace TEXT NOT NULL, id TEXT NOT NULL, key INTEGER NOT NULL,
                                                               PRIMARY KEY (namespace, id)) WITHOUT ROWID;
                        CREATE TABLE IF NOT EXISTS named_values (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
                        """)
            }
            nextKey = try queue.read { db in try Int64.fetchOne(db, sql: "SELECT max(key) FROM profiles") ?? 0 } + 1
        } catch {
            throw Self.failure(error, "cannot open the profile store at \(path)")
        }
    }

    /// Opens an existing store file read-only, creating no file beside it.
    ///
    /// SQLite reads a WAL-mode file through its `-wal` and `-shm` files, and a read-only
    /// connection that finds none makes them (in a folder it may write) and leaves them behind:
    /// files of the inspecting user that the connector may then not be able to write. So:
    /// - no `-wal` file (no connector has the store open; the last one to close folded the WAL
    ///   into the file): everything is in the database file, which is read as immutable (no
    ///   `-shm`, no locks). A connector that starts meanwhile writes its WAL, not the file, until
    ///   its first checkpoint;
    /// - a `-wal` file (a connector runs, or was killed): read through the WAL with
    ///   `SQLITE_OPEN_READONLY`, also where the user may not write the `-shm` file, and without
    ///   waiting for the connector's batches. If SQLite cannot read so (no `-shm` and a folder it
    ///   may not write) and the WAL holds nothing, the file is read as immutable after all; a WAL
    ///   with content is never skipped.
    static func openReadOnly(_ path: String, cacheMiB: Int) throws(ProfileExportError) -> DatabaseQueue {
        guard FileManager.default.fileExists(atPath: path) else {
            throw ProfileExportError(.store, "there is no profile store at \(path) (a run with this configuration makes it)")
        }
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA cache_size = -\(cacheMiB * 1024)")
        }
        let escaped = path.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? path
        func open(_ location: String) throws -> DatabaseQueue {
            let queue = try DatabaseQueue(path: location, configuration: configuration)
            // Opening is lazy: a first read tells whether the file (and its WAL) can be read.
            try queue.read { db in _ = try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master") }
            return queue
        }
        do {
            guard FileManager.default.fileExists(atPath: path + "-wal") else { return try open("file:\(escaped)?immutable=1") }
            return try open(path)
        } catch let error as DatabaseError
            where [.SQLITE_CANTOPEN, .SQLITE_READONLY].contains(error.resultCode.primaryResultCode) && !Self.hasWALContent(path)
        {
            do {
                return try open("file:\(escaped)?immutable=1")
            } catch {
                throw failure(error, "cannot open the profile store at \(path) to read it")
            }
        } catch {
            throw failure(error, "cannot open the profile store at \(path) to read it")
        }
    }

    /// Whether `path`'s WAL file exists and holds anything.
    private static func hasWALContent(_ path: String) -> Bool {
        let size = (try? FileManager.default.attributesOfItem(atPath: path + "-wal"))?[.size] as? NSNumber
        return (size?.intValue ?? 0) > 0
    }

    private static func failure(_ error: any Error, _ what: String) -> ProfileExportError {
        if let error = error as? ProfileExportError { return error }
        return ProfileExportError(.store, "\(what): \(error)")
    }

    /// Runs `work` on the batch's connection, or alone (autocommit) outside a batch.
    private func withDatabase<T>(_ what: @autoclosure () -> String, _ work: (Database) throws -> T) throws(ProfileExportError) -> T {
        do {
            if let current { return try work(current) }
            return try queue.writeWithoutTransaction { db in try work(db) }
        } catch {
            throw Self.failure(error, what())
        }
    }

    public func batch<T>(_ body: () throws(ProfileExportError) -> T) throws(ProfileExportError) -> T {
        try transaction(commit: true, body)
    }

    /// Runs `body` (batches inside it included) in one transaction that is always rolled back: the
    /// store is as before whatever `body` did (a dry run).
    public func withoutCommitting<T>(_ body: () throws(ProfileExportError) -> T) throws(ProfileExportError) -> T {
        try transaction(commit: false, body)
    }

    private func transaction<T>(commit: Bool, _ body: () throws(ProfileExportError) -> T) throws(ProfileExportError) -> T {
        if current != nil { return try body() }
        var result: Result<T, ProfileExportError>?
        do {
            try queue.inTransaction(.immediate) { db in
                try adjustCheckpoints(db)
                current = db
                defer {
                    current = nil
                    lookedUp = nil
                    readByKey = nil
                    writeRecord = nil
                }
                result = Result { () throws(ProfileExportError) in try body() }
                if case .failure = result { return .rollback }
                return commit ? .commit : .rollback
            }
        } catch {
            throw Self.failure(error, "cannot commit to the profile store")
        }
        if !commit { nextKey = (try? queue.read { db in try Int64.fetchOne(db, sql: "SELECT max(key) FROM profiles") ?? 0 } + 1) ?? nextKey }
        return try result!.get()
    }

    /// The page size of a new store file: 2 KiB instead of SQLite's 4. Every update rewrites one
    /// random page (in the WAL, then at a checkpoint), so the smaller the page around a record, the
    /// less is written per update. The connector's outbox, in the same file, then fills twice as
    /// many pages: it loses less than the profiles gain (BENCHMARKS.md, rules engine, eighth round).
    /// Records up to ~2,000 bytes fit a page. A file made with another page size keeps it.
    static let pageBytes = 2048

    /// How many WAL pages the store lets gather before SQLite checkpoints them into the database:
    /// half as many as the database has, and at least 10,000. Each update rewrites a random page,
    /// and a checkpoint writes every page the WAL holds once, in file order: the more pages it
    /// gathers relative to the database, the more of them were changed several times and the
    /// closer the writes come to one sequential pass. Half, not the whole database's size: a WAL as
    /// large as the database gains little more (BENCHMARKS.md, rules engine, fifth and eighth
    /// rounds). The WAL file grows to that many pages (~half the database file, at least 20 MiB
    /// with 2 KiB pages). Durability against kill -9 is the same; on a power loss,
    /// `synchronous = NORMAL` may lose what was committed since the last checkpoint.
    static func checkpointPages(databasePages: Int) -> Int { max(10_000, databasePages / 2) }

    /// Follows ``checkpointPages(databasePages:)`` as the database grows (checked at every batch).
    private func adjustCheckpoints(_ db: Database) throws {
        let wanted = Self.checkpointPages(databasePages: try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0)
        guard wanted != checkpointEvery else { return }
        try db.execute(sql: "PRAGMA wal_autocheckpoint = \(wanted)")
        checkpointEvery = wanted
    }

    /// The database queue of the store's file, for other tables in it (the connector's outbox and
    /// failed exports; package-only, so GRDB stays out of the public API). Its transactions wait for a ``batch(_:)`` in progress; never use it from
    /// inside one (use ``inBatch(_:)`` there).
    package var databaseQueue: DatabaseQueue { queue }

    /// Runs `body` on the connection of the ``batch(_:)`` in progress, so that its statements commit
    /// or roll back with the batch's profiles; outside a batch, in a batch of its own.
    package func inBatch<T>(_ body: (Database) throws -> T) throws(ProfileExportError) -> T {
        try batch { () throws(ProfileExportError) in try withDatabase("cannot write to the store", body) }
    }

    public func profile(key: Int64) throws(ProfileExportError) -> Profile? {
        try read(key: key, decisions: true)
    }

    private func read(key: Int64, decisions: Bool) throws(ProfileExportError) -> Profile? {
        try withDatabase("cannot read profile \(key)") { db in
            // A cursor's row reads the record in place (no copy into a `Data`, as `fetchOne` would).
            let rows = try Row.fetchCursor(db.cachedStatement(sql: "SELECT record, profile_id FROM profiles WHERE key = ?"), arguments: [key])
            guard let row = try rows.next() else { return nil }
            return try Self.decode(row, record: 0, key: key, profileId: row[1], decisions: decisions)
        }
    }

    /// Decodes the record in column `record` of `row`, without copying it.
    private static func decode(_ row: Row, record: Int, key: Int64, profileId: String?, decisions: Bool = true) throws -> Profile {
        try row.withUnsafeData(atIndex: record) { data in
            guard let data else { throw ProfileExportError(.store, "profile \(key) has no stored record") }
            return try data.withUnsafeBytes { raw in
                try ProfileRecord.decode(raw.bindMemory(to: UInt8.self), key: key, profileId: profileId, decisions: decisions)
            }
        }
    }

    public func checkout(key: Int64) throws(ProfileExportError) -> Profile? {
        lookedUp = nil
        return try profile(key: key)
    }

    /// Reads the profile without its decisions (the engine replaces them all, so decoding them, and
    /// then freeing them, would be work for nothing).
    public func checkoutReplacingDecisions(key: Int64) throws(ProfileExportError) -> Profile? {
        if lookedUp?.key == key, let found = lookedUp.take() { return found }
        lookedUp = nil
        return try read(key: key, decisions: false)
    }

    /// Nothing to write: the file has the profile as it was.
    public func checkin(_ profile: Profile) {
        lookedUp = nil
    }

    /// Finds the key and, in the same query, reads the profile without its decisions, kept for the
    /// ``checkoutReplacingDecisions(key:)`` that usually follows (the engine looks a profile up by
    /// id, then checks it out): one B-tree search instead of two.
    public func key(profileId: String) throws(ProfileExportError) -> Int64? {
        lookedUp = nil
        let profile = try withDatabase("cannot look up a profile id") { db -> Profile? in
            if let known = try knownProfile(profileId, db) {
                idsFoundInMemory += 1
                return known
            }
            // Every update runs these queries: through the C API, the record decoded where SQLite holds it.
            let run = try RawStatement(db.cachedStatement(sql: "SELECT key, record FROM profiles WHERE profile_id = ?"), in: db)
            try run.bind(profileId, at: 1)
            guard try run.step() else { return nil }
            let key = run.int64(at: 0)
            remember(profileId, key: key)
            return try run.withBytes(at: 1) { bytes throws(ProfileExportError) in
                try ProfileRecord.decode(bytes, key: key, profileId: profileId, decisions: false)
            }
        }
        lookedUp = profile
        return profile?.key
    }

    /// The profile `knownIds` places `profileId` at, read by key once its row's id is checked;
    /// `nil` when it knows no such row. An entry whose row is gone or has another id is dropped.
    private func knownProfile(_ profileId: String, _ db: Database) throws -> Profile? {
        var found: Profile?
        var wrong: Int?
        _ = try knownIds.slot(of: profileId) { slot throws -> Bool in
            let key = Int64(slot) + 1
            let run = try RawStatement(batchStatement(\.readByKey, "SELECT profile_id, record FROM profiles WHERE key = ?", db), in: db)
            try run.bind(key, at: 1)
            guard try run.step(), run.column(0, holds: profileId) else {
                wrong = slot
                return false
            }
            found = try run.withBytes(at: 1) { bytes throws(ProfileExportError) in
                try ProfileRecord.decode(bytes, key: key, profileId: profileId, decisions: false)
            }
            return true
        }
        if let wrong { knownIds.remove(profileId, slot: wrong) }
        return found
    }

    /// The statement `sql` from GRDB's cache, kept in `slot` until the batch in progress ends.
    private func batchStatement(_ slot: ReferenceWritableKeyPath<SQLiteProfileStore, Statement?>, _ sql: String, _ db: Database) throws -> Statement {
        if let kept = self[keyPath: slot] { return kept }
        let statement = try db.cachedStatement(sql: sql)
        if current != nil { self[keyPath: slot] = statement }
        return statement
    }

    private func remember(_ profileId: String, key: Int64) {
        let slot = Int(truncatingIfNeeded: key) - 1
        if IdIndex.canHold(slot: slot) { knownIds.insert(profileId, slot: slot) }
    }

    public func key(identity: Identity) throws(ProfileExportError) -> Int64? {
        try withDatabase("cannot look up an identity") { db in
            // Every update with identities runs this query: through the C API.
            let run = try RawStatement(db.cachedStatement(sql: "SELECT key FROM identities WHERE namespace = ? AND id = ?"), in: db)
            try run.bind(identity.namespace, at: 1)
            try run.bind(identity.id, at: 2)
            return try run.step() ? run.int64(at: 0) : nil
        }
    }

    public func newKey() -> Int64 {
        defer { nextKey += 1 }
        return nextKey
    }

    public func save(_ profile: consuming Profile, previousIdentities: IdentityMap?) throws(ProfileExportError) {
        lookedUp = nil
        try withDatabase("cannot save profile \(profile.key)") { db in
            // A stored profile whose id did not change: only its record is rewritten, so the
            // profile id index is left alone (setting the column, even to the same value,
            // rewrites its index entry and dirties one more page). Every update runs this
            // statement: through the C API, as the lookup.
            var saved = false
            if previousIdentities != nil {
                let statement = try batchStatement(\.writeRecord, "UPDATE profiles SET record = ? WHERE key = ? AND profile_id IS ?", db)
                saved = try ProfileRecord.withEncoded(profile) { record throws(ProfileExportError) in
                    // The run, and with it the binding of the record's bytes, ends in here.
                    let run = try RawStatement(statement, in: db)
                    try run.bind(blobInPlace: record, at: 1)
                    try run.bind(profile.key, at: 2)
                    try run.bind(profile.profileId, at: 3)
                    _ = try run.step()
                    return run.changes > 0
                }
            }
            if !saved {
                if let profileId = profile.profileId { remember(profileId, key: profile.key) }
                let record = Data(ProfileRecord.encode(profile))
                try db.cachedStatement(
                    sql: """
                        INSERT INTO profiles (key, profile_id, record) VALUES (?, ?, ?)
                        ON CONFLICT (key) DO UPDATE SET profile_id = excluded.profile_id, record = excluded.record
                        """
                ).execute(arguments: [profile.key, profile.profileId, record])
            }
            if let previousIdentities, previousIdentities == profile.identities { return }
            if let previousIdentities {
                let delete = try db.cachedStatement(sql: "DELETE FROM identities WHERE namespace = ? AND id = ?")
                for identity in previousIdentities.all where !profile.identities.contains(identity) {
                    try delete.execute(arguments: [identity.namespace, identity.id])
                }
            }
            let insert = try db.cachedStatement(sql: "INSERT OR REPLACE INTO identities (namespace, id, key) VALUES (?, ?, ?)")
            for identity in profile.identities.all where !(previousIdentities?.contains(identity) ?? false) {
                try insert.execute(arguments: [identity.namespace, identity.id, profile.key])
            }
        }
    }

    public func forEachProfile(_ body: (Profile) throws(ProfileExportError) -> Void) throws(ProfileExportError) {
        try withDatabase("cannot read the profiles") { db in
            let rows = try Row.fetchCursor(db, sql: "SELECT key, profile_id, record FROM profiles ORDER BY key")
            while let row = try rows.next() {
                let key: Int64 = row[0]
                let profile = try Self.decode(row, record: 2, key: key, profileId: row[1])
                try body(profile)
            }
        }
    }

    public func profileCount() throws(ProfileExportError) -> Int {
        try withDatabase("cannot count the profiles") { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM profiles") ?? 0 }
    }

    public func value(named name: String) throws(ProfileExportError) -> String? {
        try withDatabase("cannot read '\(name)'") { db in
            try String.fetchOne(db.cachedStatement(sql: "SELECT value FROM named_values WHERE name = ?"), arguments: [name])
        }
    }

    public func setValue(_ value: String?, named name: String) throws(ProfileExportError) {
        try withDatabase("cannot write '\(name)'") { db in
            if let value {
                try db.cachedStatement(sql: "INSERT OR REPLACE INTO named_values (name, value) VALUES (?, ?)").execute(arguments: [name, value])
            } else {
                try db.cachedStatement(sql: "DELETE FROM named_values WHERE name = ?").execute(arguments: [name])
            }
        }
    }
}
