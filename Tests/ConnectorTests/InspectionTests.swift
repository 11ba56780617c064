// Read-only inspection: `status`, `explain` and `failed list|show` open the store read-only, work on
// files nobody may write and while a connector writes, need no hub secrets, and create nothing.

import Foundation
import GRDB
import HubcastEmulator
import ProfileExport
import Testing

@Suite struct InspectionTests {
    /// Runs `body` on a store made by a run (with failed exports), its configuration taking `hub-b`
    /// from `${HUB_B}` (`body` gets the environment that gives it). The fixture is finished afterwards.
    static func withRanFixture<T>(_ body: (Fixture, _ environment: [String: String?]) async throws -> T) async throws -> T {
        try await SecretsTests.withFixture { fixture in
            let environment: [String: String?] = ["HUB_B": SecretsTests.connectionString(fixture, hub: "beta")]
            let input = try fixture.writeUpdates(200, profiles: 50)
            let run = try await HubcastCLI.run(["run", "--config", fixture.configurationFile, "--input", input], environment: environment)
            // 400 exports (200 updates, each exported by both dataflows), of which the emulator refuses
            // every 25th for good: 16 failed exports, so the run exits 65 (RunExit.exportsFailed).
            #expect(run.status == 65, "\(run.errors.suffix(2000))")
            return try await body(fixture, environment)
        }
    }

    static func inspect(_ config: String) -> [[String]] {
        [
            ["status", "--config", config], ["status", "--json", "--config", config], ["failed", "list", "--config", config],
            ["failed", "show", "1", "--config", config], ["explain", "--config", config, "--profile", "p-1"],
        ]
    }

    /// chmod a-w on the store, and the commands run as a user who may not write it: they used to
    /// fail with SQLite error 8 (attempt to write a readonly database). Nor do they need the hubs'
    /// secrets.
    @Test func readOnlyStoreAndNoSecrets() async throws {
        try await Self.withRanFixture { fixture, _ in
            let store = fixture.folder + "/store"
            let files = try FileManager.default.contentsOfDirectory(atPath: store)
            for file in files { chmod(store + "/" + file, 0o444) }
            chmod(store, 0o555)
            defer {
                chmod(store, 0o755)
                for file in files { chmod(store + "/" + file, 0o644) }
            }
            let before = try Self.snapshot(store)
            for arguments in Self.inspect(fixture.configurationFile) {
                let result = try await HubcastCLI.run(arguments, environment: [:], asNobody: true, timeout: .seconds(60))
                #expect(result.status == 0, "\(arguments.prefix(2)): \(result.errors)")
                #expect(!result.errors.contains("readonly"), "\(result.errors)")
            }
            #expect(try Self.snapshot(store) == before, "nothing changed in the store folder")
            // And while a connector (here: the store's owner) writes to it.
            try await Self.holdingTheWriteLock(store + "/profiles.sqlite") {
                for arguments in Self.inspect(fixture.configurationFile) {
                    let result = try await HubcastCLI.run(arguments, environment: [:], asNobody: true, timeout: .seconds(60))
                    #expect(result.status == 0, "\(arguments.prefix(2)) beside a writer: \(result.errors)")
                }
            }
        }
    }

    /// While a connector holds the write lock (a batch in progress), the commands still read: they
    /// used to wait for the lock to create the connector's tables, then fail. (The lock is held
    /// until every command returned, so one that waited for it would fail, not just be slow: the
    /// status says it, no clock needed.)
    @Test func readsWhileAWriterHoldsTheLock() async throws {
        try await Self.withRanFixture { fixture, environment in
            try await Self.holdingTheWriteLock(fixture.folder + "/store/profiles.sqlite") {
                for arguments in Self.inspect(fixture.configurationFile) {
                    let result = try await HubcastCLI.run(arguments, environment: environment, timeout: .seconds(60))
                    #expect(result.status == 0, "\(arguments.prefix(2)): \(result.errors)")
                }
            }
        }
    }

    /// Runs `body` while a transaction that wrote to the store at `path` is open, after a commit
    /// that left pages in the WAL (as a running connector does). `body` awaits child processes, so
    /// it runs between two database accesses, the transaction open from the first to the second
    /// (GRDB allows that only with `allowsUnsafeTransactions`).
    static func holdingTheWriteLock(_ path: String, _ body: () async throws -> Void) async throws {
        var configuration = GRDB.Configuration()
        configuration.allowsUnsafeTransactions = true
        let writer = try DatabaseQueue(path: path, configuration: configuration)
        try await writer.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 0")
            try db.execute(sql: "INSERT OR REPLACE INTO named_values (name, value) VALUES ('inspection-test-committed', 'x')")
            let walSize = (try? FileManager.default.attributesOfItem(atPath: path + "-wal"))?[.size] as? Int ?? 0
            #expect(walSize > 0, "the WAL holds a commit")
            try db.execute(sql: "BEGIN IMMEDIATE")
            try db.execute(sql: "INSERT OR REPLACE INTO named_values (name, value) VALUES ('inspection-test', 'x')")
        }
        do {
            try await body()
        } catch {
            _ = try? await writer.writeWithoutTransaction { db in try db.execute(sql: "ROLLBACK") }
            throw error
        }
        try await writer.writeWithoutTransaction { db in try db.execute(sql: "ROLLBACK") }
    }

    /// `explain` (and `status`, `failed list`) on a store that does not exist: a clear error, and
    /// nothing created (explain used to create an empty store).
    @Test func aMissingStoreIsAnErrorAndNothingIsCreated() async throws {
        try await SecretsTests.withFixture { fixture in
            for arguments in Self.inspect(fixture.configurationFile) {
                let result = try await HubcastCLI.run(arguments, environment: [:])
                #expect(result.status != 0)
                #expect(result.errors.contains("no store at \(fixture.folder)/store/profiles.sqlite"), "\(arguments.prefix(2)): \(result.errors)")
                #expect(!FileManager.default.fileExists(atPath: fixture.folder + "/store"), "\(arguments.prefix(2)) created the store")
            }
        }
    }

    /// A store no connector ran on (only profiles in it): its connector tables read as empty, and
    /// nothing is added to the folder.
    @Test func aStoreWithoutConnectorTablesReadsAsEmpty() async throws {
        try await SecretsTests.withFixture { fixture in
            _ = try SQLiteProfileStore(folder: fixture.folder + "/store")
            let before = try Self.snapshot(fixture.folder + "/store")
            let status = try await HubcastCLI.run(["status", "--config", fixture.configurationFile], environment: [:])
            #expect(status.status == 0, "\(status.errors)")
            #expect(status.output.contains("connector: has not run on this store yet"))
            let failed = try await HubcastCLI.run(["failed", "list", "--config", fixture.configurationFile], environment: [:])
            #expect(failed.output.contains("no failed exports"), "\(failed.errors)")
            #expect(try Self.snapshot(fixture.folder + "/store") == before)
        }
    }

    /// `failed list` stopped at its limit without saying there were more.
    @Test func failedListSaysHowManyMore() async throws {
        try await Self.withRanFixture { fixture, environment in
            let config = fixture.configurationFile
            let rejected = fixture.emulator.faultCounts.rejected
            #expect(rejected > 4)
            let limited = try await HubcastCLI.run(["failed", "list", "--config", config, "--limit", "3"], environment: environment)
            #expect(limited.output.split(separator: "\n").count == 4)
            #expect(
                limited.errors.contains("\(rejected - 3) more failed exports (\(rejected) in all): --limit \(rejected) or --all lists them"),
                "\(limited.errors)")
            let all = try await HubcastCLI.run(["failed", "list", "--config", config, "--all"], environment: environment)
            #expect(all.output.split(separator: "\n").count == rejected + 1)
            #expect(!all.errors.contains("more failed exports"))
            let exact = try await HubcastCLI.run(["failed", "list", "--config", config, "--limit", "\(rejected)"], environment: environment)
            #expect(!exact.errors.contains("more failed exports"))
            // The largest limit there is lists them all (one more than it overflowed, and trapped).
            let largest = try await HubcastCLI.run(["failed", "list", "--config", config, "--limit", "\(Int.max)"], environment: environment)
            #expect(largest.status == 0, "\(largest.errors)")
            #expect(largest.output.split(separator: "\n").count == rejected + 1)
        }
    }

    /// A missing upload file: said once, with the path and the system's reason, before any store
    /// exists (it used to be found after the store was made, said twice and without the reason).
    @Test func aMissingUploadFileStopsTheRunBeforeTheStore() async throws {
        try await SecretsTests.withFixture { fixture in
            try CheckCommandTests.edit(fixture) {
                $0.replacingOccurrences(of: "audiences:\n", with: "audiences:\n  - id: vip\n    upload: vip.csv\n")
            }
            let input = try fixture.writeUpdates(10, profiles: 5)
            let run = try await HubcastCLI.run(
                ["run", "--config", fixture.configurationFile, "--input", input],
                environment: ["HUB_B": SecretsTests.connectionString(fixture, hub: "beta")])
            #expect(run.status != 0)
            let path = fixture.folder + "/vip.csv"
            #expect(run.errors.contains("cannot read the upload file \(path): No such file or directory"), "\(run.errors)")
            #expect(run.errors.components(separatedBy: "cannot read the upload file").count == 2, "said once: \(run.errors)")
            #expect(!FileManager.default.fileExists(atPath: fixture.folder + "/store"))
        }
    }

    /// Names, sizes and modification times of the files in `folder`.
    static func snapshot(_ folder: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder).sorted().map { name in
            let attributes = try FileManager.default.attributesOfItem(atPath: folder + "/" + name)
            return "\(name) \(attributes[.size] ?? 0) \(attributes[.modificationDate] ?? 0)"
        }
    }
}
