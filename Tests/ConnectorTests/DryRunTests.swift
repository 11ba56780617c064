// `hubcast run --dry-run` writes nothing, and on the durable store starts where the next run
// would: it reports what that run then exports.

import Foundation
import HubcastConnector
import HubcastEmulator
import ProfileExport
import Testing

@Suite struct DryRunTests {
    /// Every file under `folder` with its size and modification time, to see that nothing changed.
    static func snapshot(_ folder: String) throws -> [String: String] {
        var files: [String: String] = [:]
        for name in try FileManager.default.subpathsOfDirectory(atPath: folder) {
            let attributes = try FileManager.default.attributesOfItem(atPath: folder + "/" + name)
            files[name] = "\(attributes[.size] ?? 0) \((attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)"
        }
        return files
    }

    /// A dry run, durable or in memory, on a configuration whose store does not exist yet: it
    /// prints the exports and shows the rejected line on stderr, and makes no store folder and no
    /// rejects file (it made both).
    @Test func aDryRunWritesNothing() async throws {
        try await Fixture.with { fixture in
            var lines = try String(contentsOfFile: fixture.writeUpdates(40, profiles: 10), encoding: .utf8).split(separator: "\n").map(String.init)
            lines.insert("{not json", at: 2)
            let input = fixture.folder + "/with-reject.jsonl"
            try (lines.joined(separator: "\n") + "\n").write(toFile: input, atomically: true, encoding: .utf8)
            let store = try fixture.configuration.store
            for extra in [[], ["--memory"]] {
                let run = try await HubcastCLI.run(["run", "--config", fixture.configurationFile, "--input", input, "--dry-run"] + extra)
                #expect(run.status == 0, "\(run.errors)")
                #expect(run.output.split(separator: "\n").count > 10)
                #expect(run.errors.contains("line 3: invalid JSON"))
                #expect(run.errors.contains("rejected 1"))
                #expect(!FileManager.default.fileExists(atPath: store), "\(extra): the dry run made the store folder")
            }
        }
    }

    /// After a run applied the whole file, a durable dry run on the same file starts from the
    /// store's checkpoint: nothing to export (it reported every line's exports again). Once the
    /// file grew, it reports exactly what the next run exports. The store's files are as they
    /// were, byte for byte and time for time.
    @Test func aDurableDryRunStartsFromTheCheckpointAndChangesNothing() async throws {
        try await Fixture.with { fixture in
            let all = try String(contentsOfFile: fixture.writeUpdates(360, profiles: 90, name: "all.jsonl"), encoding: .utf8)
                .split(separator: "\n").map { $0 + "\n" }
            let input = fixture.folder + "/updates.jsonl"
            try all.prefix(300).joined().write(toFile: input, atomically: true, encoding: .utf8)
            let first = try await fixture.connector().run(input: input)
            #expect(first.intake.updatesRead == 300)
            let store = try fixture.configuration.store
            let before = try Self.snapshot(store)

            let caughtUp = try await HubcastCLI.run(["run", "--config", fixture.configurationFile, "--input", input, "--dry-run"])
            #expect(caughtUp.status == 0, "\(caughtUp.errors)")
            #expect(caughtUp.output.isEmpty, "nothing left to export")
            #expect(caughtUp.errors.contains("resumed after line 300"))
            #expect(caughtUp.errors.contains("updates read 0"))

            let file = try #require(FileHandle(forWritingAtPath: input))
            file.seekToEndOfFile()
            file.write(Data(all.dropFirst(300).joined().utf8))
            try file.close()
            let preview = try await HubcastCLI.run(["run", "--config", fixture.configurationFile, "--input", input, "--dry-run"])
            #expect(preview.status == 0, "\(preview.errors)")
            #expect(preview.errors.contains("updates read 60"))
            #expect(try Self.snapshot(store) == before, "the dry run changed the store's files")

            let previewed = preview.output.split(separator: "\n").map { line -> String in
                let object = (try? JSONParser.parse(String(line)))?.object
                if case .string(let dataflow)? = object?["dataflow"] { return dataflow }
                return "?"
            }
            let next = try await fixture.connector().run(input: input)
            #expect(next.intake.updatesRead == 60)
            #expect(tally(previewed) == Dictionary(uniqueKeysWithValues: next.intake.exports.filter { $0.value > 0 }.map { ($0.key, $0.value) }))
            #expect(!previewed.isEmpty)
        }
    }

    /// Standard output on a full disk: an error naming it and the system's reason, exit 1 — it
    /// crashed (SIGILL, `try!` in FileHandle).
    @Test func stdoutOnAFullDiskIsAnErrorNotACrash() async throws {
        try #require(FileManager.default.fileExists(atPath: "/dev/full"))
        try await Fixture.with { fixture in
            let input = try fixture.writeUpdates(300, profiles: 100)
            let run = try HubcastProcess(
                ["run", "--config", fixture.configurationFile, "--input", input, "--dry-run", "--memory"],
                stdout: FileHandle(forWritingAtPath: "/dev/full"))
            try await run.wait()
            #expect(run.process.terminationReason == .exit)
            #expect(run.status == 1)
            #expect(run.errors.contains("cannot write to standard output (/dev/full): No space left on device"), "\(run.errors)")
            #expect(!run.errors.contains("Fatal error"))
        }
    }

    /// Standard output is a pipe whose reader went away (`| head`): the durable dry run ends its
    /// read of the store, then ends as other tools do, killed by SIGPIPE without a message; the
    /// store is as it was.
    @Test func aClosedStdoutPipeEndsTheDryRunQuietly() async throws {
        try await Fixture.with { fixture in
            let input = try fixture.writeUpdates(3000, profiles: 1000)
            _ = try await fixture.connector().run(input: fixture.writeUpdates(30, profiles: 30, name: "first.jsonl"))
            let before = try Self.snapshot(fixture.configuration.store)
            let run = try await HubcastProcess.runWithClosedPipe(
                ["run", "--config", fixture.configurationFile, "--input", input, "--dry-run"], closing: .stdout)
            #expect(run.process.terminationReason == .uncaughtSignal && run.status == SIGPIPE, "\(run.process.terminationReason) \(run.status)")
            #expect(!run.errors.contains("Error"), "\(run.errors)")
            #expect(try Self.snapshot(fixture.configuration.store) == before)
        }
    }

    /// `hubcast run --dry-run` without `--memory` leaves the new audience mappings unrecorded, so the
    /// next real run still sends the backfill (the dry run recorded them in the durable store the
    /// connector uses: the next run found no newly mapped audience, and the profiles that already
    /// qualified were never exported).
    @Test func dryRunOnTheStoreDoesNotSwallowTheBackfill() async throws {
        try await Fixture.with { fixture in
            let (input, before) = try await fixture.prepareSilverBackfill()
            // The user previews what the new mapping will export...
            let preview = try await HubcastCLI.run(["run", "--config", fixture.configurationFile, "--dry-run"])
            #expect(preview.reason == .exit && preview.status == 0)
            // ...then runs the connector: the 30 silver members must still be backfilled.
            _ = try await fixture.connector { $0.backfillRate = 5000 }.run(input: input)
            #expect(fixture.received(hub: "alpha").joined().count - before == 30)
        }
    }
}
