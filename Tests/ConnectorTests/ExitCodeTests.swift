// `hubcast run`'s exit status tells a script or systemd what happened: everything acknowledged,
// exports failed, work left in the outbox, a bad configuration, a destination that cannot be used.

import Foundation
import HubcastConnector
import HubcastEmulator
import Testing

@Suite struct ExitCodeTests {
    @Test func everyExportAcknowledgedExitsZero() async throws {
        try await Fixture.with { fixture in
            let input = try fixture.writeUpdates(200, profiles: 50)
            let run = try await HubcastCLI.run(["run", "--config", fixture.configurationFile, "--input", input])
            #expect(run.status == 0, "\(run.errors)")
            #expect(run.errors.contains("updates read 200, applied 200, rejected 0"))
        }
    }

    /// Every event rejected for good: the exports are in the failed-exports store, and the run
    /// says so with 65 (it exited 0).
    @Test func exportsThatFailedExit65() async throws {
        try await Fixture.with({ $0.faults.rejectEvery = 1 }) { fixture in
            let input = try fixture.writeUpdates(60, profiles: 20)
            let run = try await HubcastCLI.run(["run", "--config", fixture.configurationFile, "--input", input])
            #expect(run.status == 65, "\(run.errors)")
            #expect(run.errors.contains("exports failed; see `hubcast failed list --config"))
            let list = try await HubcastCLI.run(["failed", "list", "--config", fixture.configurationFile])
            #expect(list.output.split(separator: "\n").count > 1)
        }
    }

    /// SIGTERM while a slow hub holds the exports: the run stops with work left in the outbox and
    /// exits 75 (it exited 0 with thousands undelivered). The hub stores each event at once and
    /// holds its acknowledgement for ten minutes, so the run cannot finish before the signal.
    @Test func stoppedWithWorkLeftExits75() async throws {
        try await Fixture.with({ $0.faults.settlementDelay = .seconds(600) }) { fixture in
            let input = try fixture.writeUpdates(400, profiles: 100)
            let run = try HubcastProcess([
                "run", "--config", fixture.configurationFile, "--input", input, "--window", "20",
                "--drain-timeout", "0.2",
            ])
            try await waitUntil("the first event arrives") { !fixture.receivedEvents().isEmpty || !run.process.isRunning }
            try #require(run.process.isRunning, "the run ended before the signal: \(run.errors)")
            run.signal(SIGTERM)
            try await run.wait()
            #expect(run.status == 75, "\(run.errors)")
            #expect(run.errors.contains("left in the outbox; the next run sends them"))
            let left = try fixture.delivery().outboxDepth().values.reduce(0, +)
            #expect(left > 0)
        }
    }

    /// A configuration or command line that is not valid exits 64 (EX_USAGE, as ArgumentParser's
    /// own validation does); a bad configuration file exited 1.
    @Test func aBadConfigurationOrCommandLineExits64() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("hubcast-usage-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let config = folder + "/hubcast.yaml"
        try "stor: ./data\ndestinations: []\n".write(toFile: config, atomically: true, encoding: .utf8)
        let badKey = try await HubcastCLI.run(["run", "--config", config, "--input", "-"])
        #expect(badKey.status == 64, "\(badKey.errors)")
        #expect(badKey.errors.contains("unknown key"))
        let missing = try await HubcastCLI.run(["run", "--config", folder + "/none.yaml"])
        #expect(missing.status == 64, "\(missing.errors)")
        let batch = try await HubcastCLI.run(["run", "--config", config, "--batch", "0"])
        #expect(batch.status == 64)
        let lineLimit = try await HubcastCLI.run(["run", "--config", config, "--max-line-bytes", "0"])
        #expect(lineLimit.status == 64)
        #expect(!FileManager.default.fileExists(atPath: folder + "/data"), "nothing ran")
    }

    /// An upload audience whose file is missing is the configuration's fault: 64, naming the file.
    @Test func aMissingUploadFileExits64() async throws {
        try await Fixture.with { fixture in
            let text = try String(contentsOfFile: fixture.configurationFile, encoding: .utf8)
                .replacingOccurrences(of: "audiences:\n", with: "audiences:\n  - id: vip\n    upload: missing.csv\n")
            try text.write(toFile: fixture.configurationFile, atomically: true, encoding: .utf8)
            let run = try await HubcastCLI.run(["run", "--config", fixture.configurationFile, "--input", fixture.writeUpdates(10, profiles: 5)])
            #expect(run.status == 64, "\(run.errors)")
            #expect(run.errors.contains("missing.csv"))
        }
    }

    /// A destination that refuses the credentials, or names a hub the namespace does not have,
    /// exits 69 (EX_UNAVAILABLE), naming the destination and never the key; the exports stay in
    /// the outbox.
    @Test func aDestinationThatCannotBeUsedExits69() async throws {
        try await Fixture.with { fixture in
            let input = try fixture.writeUpdates(30, profiles: 10)
            try fixture.writeConfiguration(key: "V1JPTkdfS0VZ")
            let refused = try await HubcastCLI.run(["run", "--config", fixture.configurationFile, "--input", input])
            #expect(refused.status == 69, "\(refused.errors)")
            #expect(refused.errors.contains("hub-"))
            #expect(!refused.errors.contains("V1JPTkdfS0VZ"))
            let left = try fixture.delivery().outboxDepth().values.reduce(0, +)
            #expect(left > 0)

            try fixture.writeConfiguration()
            let yaml = try String(contentsOfFile: fixture.configurationFile, encoding: .utf8)
            try yaml.replacingOccurrences(of: "EntityPath=alpha", with: "EntityPath=nosuchhub").write(
                toFile: fixture.configurationFile, atomically: true, encoding: .utf8)
            let unknown = try await HubcastCLI.run(["run", "--config", fixture.configurationFile, "--input", input])
            #expect(unknown.status == 69, "\(unknown.errors)")
        }
    }
}
