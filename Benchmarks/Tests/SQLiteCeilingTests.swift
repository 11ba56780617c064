// The benchmarks' own checks: `HUBCAST_BENCHMARKS=1 swift test --filter BenchmarkTests`.

import Foundation
import GRDB
@testable import hubcast_bench
import ProfileExport
import Testing

@Suite struct SQLiteCeilingTests {
    func temporaryFolder() -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("hubcast-bench-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return folder
    }

    /// The benchmark's SQLite baseline rewrites the records it names, and refuses one it lacks.
    @Test func sqliteCeilingRewritesTheRecordsItNames() throws {
        let folder = temporaryFolder()
        let elapsed = try SQLiteProfileStore.rewriteCeiling(folder: folder, profiles: 20, recordBytes: 64, order: [3, 3, 19, 0], batch: 3)
        #expect(elapsed > .zero)
        let store = try SQLiteProfileStore(folder: folder)
        #expect(try store.profileCount() == 20)
        #expect(try store.meanRecordBytes() == 64)
        // Each rewrite changes one byte of the record it read: profile 3 was rewritten twice.
        let records = try store.inBatch { db in
            try Data.fetchAll(db, sql: "SELECT record FROM profiles WHERE profile_id IN ('p3', 'p4') ORDER BY key")
        }
        #expect(records[0] != records[1])
        #expect(zip(records[0], records[1]).filter { $0 != $1 }.count == 2)

        #expect { try SQLiteProfileStore.rewriteCeiling(folder: temporaryFolder(), profiles: 2, recordBytes: 8, order: [1, 2], batch: 1) } throws: {
            ($0 as? ProfileExportError)?.description.contains("has profiles 0 to 1, not 2") == true
        }
        #expect(throws: ProfileExportError.self) {
            try SQLiteProfileStore.rewriteCeiling(folder: temporaryFolder(), profiles: 0, recordBytes: 8, order: [], batch: 1)
        }
    }
}
