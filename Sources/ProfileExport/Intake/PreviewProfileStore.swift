// Hubcast — a durable store seen read-only, for a dry run: what it would write stays in memory.

import Foundation
import GRDB

/// The profiles of a durable store (``SQLiteProfileStore``'s `profiles.sqlite`) read through a
/// read-only connection, with everything written kept in memory and dropped at the end: what
/// `hubcast run --dry-run` uses, so that it reports what the next run would export (from the
/// store's profiles, upload fingerprints, mapped audiences and input checkpoint) while the store
/// folder is left as it was — no file created or changed, no write lock taken, so a connector
/// running on the store is never held up. (Beside a running connector it reads as the
/// connector's own readers do, through the WAL and its shared index.)
///
/// All reads happen in one read transaction: they see the store as it was when
/// ``preview(folder:_:)`` started, whatever a running connector commits meanwhile. Without a
/// store file the store starts empty, as the first run would. A batch cannot be rolled back here
/// (as in ``MemoryProfileStore``).
public final class PreviewProfileStore: ProfileStore {
    /// The read transaction's connection while ``preview(folder:_:)`` runs; nil without a file.
    private var database: Database?
    /// The largest key in the file: keys above it were made here.
    private let lastStoredKey: Int64
    private var nextKey: Int64
    /// Profiles saved here, by key.
    private var saved: [Int64: Profile] = [:]
    /// Profile ids given to profiles here.
    private var savedIds: [String: Int64] = [:]
    /// Identities indexed (a key) or removed (nil) here.
    private var savedIdentities: [Identity: Int64?] = [:]
    /// Named values set (a value) or removed (nil) here.
    private var savedValues: [String: String?] = [:]

    private init(database: Database?, lastStoredKey: Int64) {
        self.database = database
        self.lastStoredKey = lastStoredKey
        self.nextKey = lastStoredKey + 1
    }

    /// Runs `body` with a preview of the store in `folder` (``SQLiteProfileStore``'s layout) and
    /// returns what it returns; what `body` throws is thrown as it is. The store is valid only
    /// inside `body`.
    public static func preview<T>(folder: String, _ body: (PreviewProfileStore) throws -> T) throws -> T {
        let path = URL(fileURLWithPath: folder).appendingPathComponent("profiles.sqlite").path
        guard FileManager.default.fileExists(atPath: path) else {
            return try body(PreviewProfileStore(database: nil, lastStoredKey: 0))
        }
        // Opened as `hubcast status` opens it: read-only, waiting for a connector's commit, and
        // read as immutable when no connector has it open (see SQLiteProfileStore.openReadOnly).
        let queue = try SQLiteProfileStore.openReadOnly(path, cacheMiB: 64)
        var result: Result<T, any Error>?
        do {
            try queue.read { db in
                let lastKey = try Int64.fetchOne(db, sql: "SELECT max(key) FROM profiles") ?? 0
                let store = PreviewProfileStore(database: db, lastStoredKey: lastKey)
                defer { store.database = nil }
                result = Result { try body(store) }
            }
        } catch {
            throw ProfileExportError(.store, "cannot read the profile store at \(path): \(error)")
        }
        return try result!.get()
    }

    /// Runs `work` on the read transaction's connection; nil without a store file.
    private func read<T>(_ what: @autoclosure () -> String, _ work: (Database) throws -> T?) throws(ProfileExportError) -> T? {
        guard let database else { return nil }
        do {
            return try work(database)
        } catch let error as ProfileExportError {
            throw error
        } catch {
            throw ProfileExportError(.store, "\(what()): \(error)")
        }
    }

    public func batch<T>(_ body: () throws(ProfileExportError) -> T) throws(ProfileExportError) -> T { try body() }

    public func profile(key: Int64) throws(ProfileExportError) -> Profile? {
        if let profile = saved[key] { return profile }
        guard key <= lastStoredKey else { return nil }
        return try read("cannot read profile \(key)") { db -> Profile? in
            let rows = try Row.fetchCursor(db.cachedStatement(sql: "SELECT record, profile_id FROM profiles WHERE key = ?"), arguments: [key])
            guard let row = try rows.next() else { return nil }
            return try Self.decode(row, key: key, profileId: row[1])
        }
    }

    public func checkout(key: Int64) throws(ProfileExportError) -> Profile? { try profile(key: key) }

    /// Nothing to write: the profile is as it was.
    public func checkin(_ profile: Profile) {}

    public func key(profileId: String) throws(ProfileExportError) -> Int64? {
        if let key = savedIds[profileId] { return key }
        let stored = try read("cannot look up a profile id") { db in
            try Int64.fetchOne(db.cachedStatement(sql: "SELECT key FROM profiles WHERE profile_id = ?"), arguments: [profileId])
        }
        // A profile saved here under another id no longer has this one.
        guard let stored, saved[stored].map({ $0.profileId == profileId }) ?? true else { return nil }
        return stored
    }

    public func key(identity: Identity) throws(ProfileExportError) -> Int64? {
        if let entry = savedIdentities[identity] { return entry }
        return try read("cannot look up an identity") { db in
            try Int64.fetchOne(
                db.cachedStatement(sql: "SELECT key FROM identities WHERE namespace = ? AND id = ?"),
                arguments: [identity.namespace, identity.id])
        }
    }

    public func newKey() -> Int64 {
        defer { nextKey += 1 }
        return nextKey
    }

    /// Keeps `profile` here and indexes it as ``SQLiteProfileStore`` would: its identities point at
    /// it, and the previous ones it lost point nowhere.
    public func save(_ profile: consuming Profile, previousIdentities: IdentityMap?) {
        let key = profile.key
        if let profileId = profile.profileId { savedIds[profileId] = key }
        if previousIdentities != profile.identities {
            for identity in previousIdentities?.all ?? [] where !profile.identities.contains(identity) {
                savedIdentities[identity] = .some(nil)
            }
            for identity in profile.identities.all where !(previousIdentities?.contains(identity) ?? false) {
                savedIdentities[identity] = key
            }
        }
        saved[key] = profile
    }

    public func forEachProfile(_ body: (Profile) throws(ProfileExportError) -> Void) throws(ProfileExportError) {
        _ = try read("cannot read the profiles") { db -> Void? in
            let rows = try Row.fetchCursor(db, sql: "SELECT record, profile_id, key FROM profiles ORDER BY key")
            while let row = try rows.next() {
                let key: Int64 = row[2]
                try body(saved[key] ?? Self.decode(row, key: key, profileId: row[1]))
            }
            return nil
        }
        for key in saved.keys.filter({ $0 > lastStoredKey }).sorted() {
            try body(saved[key]!)
        }
    }

    public func profileCount() throws(ProfileExportError) -> Int {
        let stored = try read("cannot count the profiles") { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM profiles") } ?? 0
        return stored + saved.keys.filter { $0 > lastStoredKey }.count
    }

    public func value(named name: String) throws(ProfileExportError) -> String? {
        if let entry = savedValues[name] { return entry }
        return try read("cannot read '\(name)'") { db in
            try String.fetchOne(db.cachedStatement(sql: "SELECT value FROM named_values WHERE name = ?"), arguments: [name])
        }
    }

    public func setValue(_ value: String?, named name: String) {
        savedValues[name] = .some(value)
    }

    /// Decodes the record in column 0 of `row`, without copying it.
    private static func decode(_ row: Row, key: Int64, profileId: String?) throws -> Profile {
        try row.withUnsafeData(atIndex: 0) { data in
            guard let data else { throw ProfileExportError(.store, "profile \(key) has no stored record") }
            return try data.withUnsafeBytes { raw in
                try ProfileRecord.decode(raw.bindMemory(to: UInt8.self), key: key, profileId: profileId)
            }
        }
    }
}
