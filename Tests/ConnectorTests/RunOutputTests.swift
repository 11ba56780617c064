// What `hubcast run` writes, and where: frames with --trace-frames, a clean terminal, a run that
// goes on when its stderr reader goes away, and `hubcast --version`.

import Foundation
import ProfileExport
import HubcastConnector
import HubcastEmulator
import Logging
import Testing

@Suite struct RunOutputTests {
    /// `--trace-frames` reaches the producers: the AMQP frames of the run are in its log (the flag
    /// only raised the log level).
    @Test func traceFramesLogsTheFrames() async throws {
        try await Fixture.with { fixture in
            let input = try fixture.writeUpdates(20, profiles: 5)
            let run = try await HubcastCLI.run(["run", "--config", fixture.configurationFile, "--input", input, "--trace-frames"])
            #expect(run.status == 0, "\(run.errors)")
            let frames = run.errors.split(separator: "\n").filter { $0.contains("frame ") }
            #expect(frames.contains { $0.contains("@open") })
            #expect(frames.contains { $0.contains("@attach") })
            #expect(frames.contains { $0.contains("@transfer") })
            #expect(!run.errors.contains("SAS_KEY_VALUE"))
        }
    }

    /// The same in code: ``ConnectorOptions/traceFrames`` puts the frames in the connector's log.
    @Test func traceFramesOptionLogsThroughTheConnectorsLogger() async throws {
        try await Fixture.with { fixture in
            let input = try fixture.writeUpdates(10, profiles: 5)
            let lines = RecordedLines()
            var logger = Logger(label: "test.trace") { _ in StreamLogHandler(label: "test.trace", stream: lines) }
            logger.logLevel = .debug
            var options = ConnectorOptions()
            options.traceFrames = true
            options.statusInterval = .milliseconds(50)
            let report = try await Connector(configuration: fixture.configuration, options: options, logger: logger).run(input: input)
            #expect(report.outbox.values.reduce(0, +) == 0)
            #expect(lines.all.contains { $0.contains("frame ") && $0.contains("@transfer") })
        }
    }

    /// A reader of stderr that goes away (`2>&1 | head`) must not kill the run in the middle of
    /// its work (SIGPIPE did, at the first log line after): the run goes on, delivers everything
    /// and exits 0.
    @Test func aClosedStderrPipeDoesNotStopTheRun() async throws {
        try await Fixture.with { fixture in
            let input = try fixture.writeUpdates(300, profiles: 100)
            let expected = try Fixture.expected(fixture.dryRun(input))
            let run = try await HubcastProcess.runWithClosedPipe(
                ["run", "--config", fixture.configurationFile, "--input", input, "--verbose"], closing: .stderr)
            #expect(run.process.terminationReason == .exit, "killed by signal \(run.status)")
            #expect(run.status == 0)
            #expect(tally(fixture.receivedEvents()) == tally(expected))
        }
    }

    /// The rejects file on a full disk (`rejects.jsonl` made a link to /dev/full): the run stops
    /// with an error naming the file and the system's reason, exit 1 — it crashed (SIGILL, `try!`
    /// in FileHandle). What was committed stays: a run with room goes on from there.
    @Test func aRejectsFileOnAFullDiskStopsTheRunWithAnError() async throws {
        try #require(FileManager.default.fileExists(atPath: "/dev/full"))
        try await Fixture.with { fixture in
            var lines = try String(contentsOfFile: fixture.writeUpdates(100, profiles: 20), encoding: .utf8).split(separator: "\n").map(String.init)
            lines[9] = "{bad"
            let input = fixture.folder + "/with-reject.jsonl"
            try (lines.joined(separator: "\n") + "\n").write(toFile: input, atomically: true, encoding: .utf8)
            let store = try fixture.configuration.store
            try FileManager.default.createDirectory(atPath: store, withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(atPath: store + "/rejects.jsonl", withDestinationPath: "/dev/full")
            let full = try await HubcastCLI.run(["run", "--config", fixture.configurationFile, "--input", input])
            #expect(full.status == 1, "\(full.errors)")
            #expect(full.errors.contains("rejects.jsonl"))
            #expect(full.errors.contains("No space left on device"))
            #expect(full.errors.contains("line 10 not kept"))
            #expect(!full.errors.contains("Fatal error"))

            try FileManager.default.removeItem(atPath: store + "/rejects.jsonl")
            let again = try await HubcastCLI.run(["run", "--config", fixture.configurationFile, "--input", input])
            #expect(again.status == 0, "\(again.errors)")
        }
    }

    /// On a terminal the progress line is cleared before a log line is written, so the log line
    /// starts at the start of the line (it was glued on: `outbox 6082026-12-07T18:29:56 warning …`).
    @Test func logLinesClearTheProgressLineFirst() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/script"), "util-linux `script` gives the run a terminal")
        let binary = try #require(CrashTests.hubcast)
        try await Fixture.with({ $0.faults.settlementDelay = .milliseconds(300) }) { fixture in
            // Bad lines all along the input, so warnings are logged while the progress line is shown.
            var lines = try String(contentsOfFile: fixture.writeUpdates(800, profiles: 200), encoding: .utf8).split(separator: "\n").map(String.init)
            for index in stride(from: 50, to: lines.count, by: 50) { lines[index] = "{bad line \(index)" }
            let input = fixture.folder + "/with-rejects.jsonl"
            try (lines.joined(separator: "\n") + "\n").write(toFile: input, atomically: true, encoding: .utf8)
            let command = [
                binary, "run", "--config", fixture.configurationFile, "--input", input, "--window", "20", "--outbox-limit", "50",
                "--batch", "20",
            ].map { "'\($0)'" }.joined(separator: " ")
            let transcript = fixture.folder + "/terminal.txt"
            let run = try HubcastProcess(["-qec", command + " 2>&1", transcript], executable: "/usr/bin/script")
            try await run.wait(seconds: 180)
            #expect(run.status == 0, "\(run.errors)")
            let text = try String(contentsOfFile: transcript, encoding: .utf8)
            #expect(text.contains(" · outbox "), "the progress line was shown")
            // The terminal shows a log line from where the last `\r` and erase (ESC [K) left it.
            let logLine = try Regex(#"[0-9]{4}-[0-9]{2}-[0-9]{2}T[^ ]+ warning hubcast"#)
            // Lines end with "\r\n" on a terminal: one Character, not "\n".
            let shown = text.split { $0 == "\r\n" || $0 == "\n" }
            let warnings = shown.compactMap { line in line.firstMatch(of: logLine).map { line[..<$0.range.lowerBound] } }
            #expect(warnings.count >= 10)
            for before in warnings {
                #expect(before.isEmpty || before.hasSuffix("\r\u{1B}[K"), "a log line glued to the progress line: \(before.debugDescription)")
            }
        }
    }

    /// `hubcast --version` prints the version (there was none).
    @Test func versionIsPrinted() async throws {
        let run = try await HubcastCLI.run(["--version"])
        #expect(run.status == 0)
        #expect(run.output.hasPrefix("hubcast "))
        #expect(run.output.split(separator: ".").count >= 3)
    }
}

/// Log lines, as a test's swift-log stream.
final class RecordedLines: TextOutputStream, @unchecked Sendable {
    // @unchecked: every access holds `lock`.
    private let lock = NSLock()
    private var lines: [String] = []

    func write(_ string: String) { lock.withLock { lines.append(string) } }

    var all: [String] { lock.withLock { lines } }
}
