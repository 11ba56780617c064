// Hubcast — what SQLite alone does with the store's file, the baseline of `hubcast-bench rules`.

import GRDB
import ProfileExport

extension SQLiteProfileStore {
    /// How long SQLite alone takes when, with this store's schema and settings (WAL, `synchronous =
    /// NORMAL`, cache, checkpoints), reads a profile's record by its key, checking the row's profile
    /// id (as the store does for the ids it knows), and writes it back with one byte changed, in
    /// batches of `batch` rewrites per commit — the storage work of one update, with no rules
    /// engine and no record coding. Fills a fresh store in `folder` with
    /// `profiles` records of `recordBytes` bytes (ids `p0`, `p1`, …) first; then rewrites the
    /// profiles numbered in `order` (each below `profiles`) and returns the time the rewrites took.
    static func rewriteCeiling(
        folder: String, profiles: Int, recordBytes: Int, order: [Int],
        batch: Int, cacheMiB: Int = defaultCacheMiB
    ) throws(ProfileExportError) -> Duration {
        guard profiles > 0, recordBytes > 0, batch > 0 else {
            throw ProfileExportError(.store, "the SQLite baseline needs at least one profile, one record byte and one rewrite per batch")
        }
        if let outside = order.first(where: { !(0..<profiles).contains($0) }) {
            throw ProfileExportError(.store, "the SQLite baseline has profiles 0 to \(profiles - 1), not \(outside)")
        }
        let store = try SQLiteProfileStore(folder: folder, cacheMiB: cacheMiB)
        let ids = (0..<profiles).map { "p\($0)" }
        var record = (0..<recordBytes).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 7) }
        for start in stride(from: 0, to: profiles, by: batch) {
            let end = min(profiles, start + batch)
            try store.inBatch { db in
                let insert = try db.cachedStatement(sql: "INSERT INTO profiles (key, profile_id, record) VALUES (?, ?, ?)")
                for index in start..<end {
                    let run = try RawStatement(insert, in: db)
                    try run.bind(Int64(index + 1), at: 1)
                    try run.bind(ids[index], at: 2)
                    try run.bind(blob: record, at: 3)
                    _ = try run.step()
                }
            }
        }

        let clock = ContinuousClock.now
        for start in stride(from: 0, to: order.count, by: batch) {
            let end = min(order.count, start + batch)
            try store.inBatch { db in
                let read = try db.cachedStatement(sql: "SELECT profile_id, record FROM profiles WHERE key = ?")
                let write = try db.cachedStatement(sql: "UPDATE profiles SET record = ? WHERE key = ?")
                for position in start..<end {
                    let key = Int64(order[position] + 1)
                    do {
                        let run = try RawStatement(read, in: db)
                        try run.bind(key, at: 1)
                        guard try run.step(), run.column(0, holds: ids[order[position]]) else {
                            throw ProfileExportError(.store, "profile \(ids[order[position]]) is missing")
                        }
                        try run.withBytes(at: 1) { bytes in
                            record.withUnsafeMutableBufferPointer { _ = $0.update(fromContentsOf: bytes.prefix($0.count)) }
                        }
                    }
                    record[position % record.count] &+= 1
                    let run = try RawStatement(write, in: db)
                    try run.bind(blob: record, at: 1)
                    try run.bind(key, at: 2)
                    _ = try run.step()
                }
            }
        }
        return ContinuousClock.now - clock
    }

    /// The mean size of the stored profile records, in bytes (0 when there are none).
    func meanRecordBytes() throws(ProfileExportError) -> Int {
        try inBatch { db in Int(try Double.fetchOne(db, sql: "SELECT avg(length(record)) FROM profiles") ?? 0) }
    }
}
