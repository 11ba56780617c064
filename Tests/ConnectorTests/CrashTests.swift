// kill -9 of a running `hubcast run`, then a restart: nothing committed is lost.

import Foundation
import HubcastConnector
import HubcastEmulator
import ProfileExport
import Testing

@Suite struct CrashTests {
    /// The `hubcast` executable the package built, beside the test bundle.
    static var hubcast: String? {
        let besideTests = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("hubcast").path
        return [besideTests, Fixture.repository + "/.build/debug/hubcast"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// `hubcast run` is killed with SIGKILL mid-stream; a second run on the same file resumes after
    /// the last committed line, sends what the outbox held, and every export arrives; duplicates
    /// are at most what was in flight (the window, per destination). The hub stores each event but
    /// holds back its acknowledgement for ten minutes, so the run cannot end before it is killed
    /// however fast or slow the machine, and every event it sent is in doubt; a small outbox limit
    /// keeps intake waiting, so part of the input is still unread at the kill.
    @Test func killNineThenRestartLosesNothing() async throws {
        let binary = try #require(Self.hubcast, "build the package first: the test runs the hubcast executable")
        try await Fixture.with({ $0.faults.settlementDelay = .seconds(600) }) { fixture in
            let input = try fixture.writeUpdates(12_000, profiles: 3000)
            let expected = try Fixture.expected(fixture.dryRun(input))

            let process = Process()
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = [
                "run", "--config", fixture.configurationFile, "--input", input, "--window", "200", "--batch", "100",
                "--outbox-limit", "2000",
            ]
            process.standardError = FileHandle.nullDevice
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            func arrived() -> Int { ["alpha", "beta"].reduce(0) { $0 + fixture.emulator.events(hub: $1).reduce(0) { $0 + $1.count } } }
            // One destination's window is full (hub beta gets an export of every update).
            try await waitUntil("200 events arrive or the run ends") { arrived() >= 200 || !process.isRunning }
            #expect(process.isRunning, "the run ended before it could be killed")
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            #expect(process.terminationReason == .uncaughtSignal)
            let beforeRestart = arrived()
            #expect(beforeRestart < expected.count)

            fixture.emulator.faults = .init()
            let report = try await fixture.connector().run(input: input)
            // Resumed: the lines committed before the kill were not applied again.
            #expect(report.intake.updatesRead < 12_000)
            #expect(report.intake.updatesRead > 0)
            let received = tally(fixture.receivedEvents())
            for (event, _) in tally(expected) { #expect(received[event] != nil, "lost: \(event.prefix(80))") }
            let duplicates = received.values.reduce(0, +) - expected.count
            #expect(duplicates >= 0 && duplicates <= 400)
            #expect(report.outbox.values.reduce(0, +) == 0)
        }
    }
}
