// The connector's commands as a user runs them: `hubcast run`, `status`, `failed`, and options out
// of range.

import Foundation
import HubcastConnector
import HubcastEmulator
import Testing

@Suite struct CommandTests {
    @Test func runThenStatusThenFailedRedrive() async throws {
        try await Fixture.with({ $0.faults.rejectEvery = 25 }) { fixture in
            let input = try fixture.writeUpdates(200, profiles: 50)
            let config = fixture.configurationFile

            let run = try await HubcastCLI.run(["run", "--config", config, "--input", input])
            // Some exports failed for good (rejected by the hub): the run says so in its exit status.
            #expect(run.status == 65)
            #expect(run.errors.contains("updates read 200, applied 200, rejected 0"))
            #expect(run.errors.contains("exports failed; see `hubcast failed list --config"))
            #expect(!run.errors.contains("SAS_KEY_VALUE"))

            let status = try await HubcastCLI.run(["status", "--config", config])
            #expect(status.status == 0)
            #expect(status.output.contains("connector: not running"))
            #expect(status.output.contains(", stopped)"), "the last state, in words")
            let snapshot = try await HubcastCLI.run(["status", "--json", "--config", config]).output
            let decoded = try JSONDecoder().decode(ConnectorStatus.self, from: Data(snapshot.utf8))
            #expect(decoded.state == .stopped)
            #expect(snapshot.replacingOccurrences(of: " ", with: "").contains(#""state":"stopped""#), "stored as a plain string")
            #expect(status.output.contains("destination hub-b: not connected (last: connected)"))
            #expect(status.output.contains("active-flow"))

            let rejected = fixture.emulator.faultCounts.rejected
            let list = try await HubcastCLI.run(["failed", "list", "--config", config])
            #expect(list.output.split(separator: "\n").count == rejected + 1)  // a header, then one line each
            #expect(list.output.contains("amqp:link:message-size-exceeded"))
            let show = try await HubcastCLI.run(["failed", "show", "1", "--config", config])
            #expect(show.output.contains("payload:"))
            #expect(try await HubcastCLI.run(["failed", "show", "999999", "--config", config]).errors.contains("no failed export has id 999999"))
            #expect(try await HubcastCLI.run(["failed", "redrive", "--config", config]).errors.contains("name the ids, or pass --all"))

            fixture.emulator.faults = .init()
            let redrive = try await HubcastCLI.run(["failed", "redrive", "--all", "--config", config])
            #expect(redrive.output.contains("moved \(rejected) failed exports back into the outbox"))
            let again = try await HubcastCLI.run(["run", "--config", config, "--input", input])
            #expect(again.status == 0)
            #expect(try await HubcastCLI.run(["failed", "list", "--config", config]).output.contains("no failed exports"))
            let expected = try Fixture.expected(fixture.dryRun(input))
            #expect(tally(fixture.receivedEvents()) == tally(expected))
        }
    }

    @Test func badInputIsRefusedWithAClearMessage() async throws {
        try await Fixture.with { fixture in
            let config = fixture.configurationFile
            let missing = try await HubcastCLI.run(["run", "--config", config, "--input", fixture.folder + "/nope.jsonl"])
            #expect(missing.status != 0)
            #expect(missing.errors.contains("cannot open the input file"))
            let memory = try await HubcastCLI.run(["run", "--config", config, "--memory"])
            #expect(memory.errors.contains("--memory works only with --dry-run"))
            let status = try await HubcastCLI.run(["status", "--config", config])
            #expect(status.errors.contains("no store at"))
        }
    }

    /// Options that pass validation but are out of range do not crash `hubcast run` (it crashed in the
    /// Double → Int conversion of an infinite or huge --drain-timeout / --backfill-rate, and on
    /// `window * 2` overflowing for a huge --window).
    @Test(arguments: [["--drain-timeout", "1e30"], ["--backfill-rate", "inf"], ["--window", "9223372036854775807"]])
    func outOfRangeOptionsDoNotCrash(option: [String]) async throws {
        try await Fixture.with { fixture in
            let input = try fixture.writeUpdates(20, profiles: 10)
            let ended = try await HubcastCLI.run(["run", "--config", fixture.configurationFile, "--input", input] + option)
            #expect(ended.reason == .exit, "hubcast run \(option.joined(separator: " ")) crashed (signal \(ended.status))")
        }
    }
}
