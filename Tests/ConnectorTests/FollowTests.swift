// --follow: a growing input file is read as it grows, a half-written last line waits for its end.

import Foundation
import HubcastConnector
import HubcastEmulator
import ProfileExport
import Testing

@Suite struct FollowTests {
    @Test func followReadsAGrowingFile() async throws {
        try await Fixture.with { fixture in
            let all = try String(contentsOfFile: fixture.writeUpdates(200, profiles: 50, name: "all.jsonl"), encoding: .utf8)
            let lines = all.split(separator: "\n").map { String($0) + "\n" }
            let expected = try Fixture.expected(fixture.dryRun(fixture.folder + "/all.jsonl"))
            let input = fixture.folder + "/growing.jsonl"
            try lines[..<100].joined().write(toFile: input, atomically: false, encoding: .utf8)
            func arrived() -> Int { ["alpha", "beta"].reduce(0) { $0 + fixture.emulator.events(hub: $1).reduce(0) { $0 + $1.count } } }

            let connector = try fixture.connector { $0.follow = true }
            async let report = connector.run(input: input)
            let firstHalf = try Fixture.expected(fixture.dryRun(input)).count
            try await waitUntil("the first half arrives", stopping: connector) { arrived() >= firstHalf }
            // Append the rest, the first line of it in two writes: the half line must wait for its end.
            let handle = try #require(FileHandle(forWritingAtPath: input))
            handle.seekToEndOfFile()
            let split = lines[100].index(lines[100].startIndex, offsetBy: 20)
            handle.write(Data(lines[100][..<split].utf8))
            try await Task.sleep(for: .milliseconds(300))
            handle.write(Data((String(lines[100][split...]) + lines[101...].joined()).utf8))
            try handle.close()
            try await waitUntil("everything arrives", stopping: connector) { arrived() >= expected.count }
            connector.stop()
            let finished = try await report
            #expect(finished.intake.updatesApplied == 200)
            #expect(finished.intake.rejected == 0)
            #expect(tally(fixture.receivedEvents()) == tally(expected))
        }
    }
}
