// Second review of the connector (issue 5): each test fails because of the finding it names.

import Foundation
import HubcastConnector
import HubcastEmulator
import ProfileExport
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite struct SecondReviewTests {
    /// Finding: the final status snapshot keeps the per-dataflow outbox depth of the status
    /// writer's last count (taken while the run went on), not what the run left: after a run that
    /// sent everything, `hubcast status --json` still says exports wait (outboxDepth 0 beside it).
    @Test func finalStatusCountsTheOutboxItLeft() async throws {
        let fixture = try await Fixture.make()
        defer { Task { await fixture.finish() } }
        let input = try fixture.writeUpdates(300, profiles: 100)
        // A refused key: the run stops and its exports stay in the outbox.
        try fixture.writeConfiguration(key: "V1JPTkctS0VZLWRvLW5vdC1sb2c=")
        _ = try? await fixture.connector().run(input: input)
        let left = try fixture.delivery().outboxDepth().values.reduce(0, +)
        try #require(left > 0)
        // The right key: everything is sent; the status writer counts the outbox once, at the start.
        try fixture.writeConfiguration()
        let report = try await fixture.connector { $0.statusInterval = .seconds(60) }.run(input: input)
        #expect(report.outbox.values.reduce(0, +) == 0)
        #expect(report.status.outboxDepth == 0)
        for (dataflow, status) in report.status.dataflows {
            #expect(status.outbox == 0, "report: \(dataflow) says \(status.outbox) exports wait")
        }
        let snapshot = try #require(try fixture.delivery().statusSnapshot())
        let stored = try JSONDecoder().decode(ConnectorStatus.self, from: Data(snapshot.utf8))
        for (dataflow, status) in stored.dataflows {
            #expect(status.outbox == 0, "stored status: \(dataflow) says \(status.outbox) exports wait")
        }
    }

    /// Finding: options that pass validation crash `hubcast run` (Double → Int conversion of an
    /// infinite or huge --drain-timeout / --backfill-rate, `window * 2` overflowing for a huge --window).
    @Test(arguments: [["--drain-timeout", "1e30"], ["--backfill-rate", "inf"], ["--window", "9223372036854775807"]])
    func outOfRangeOptionsDoNotCrash(option: [String]) async throws {
        let fixture = try await Fixture.make()
        defer { Task { await fixture.finish() } }
        let input = try fixture.writeUpdates(20, profiles: 10)
        let ended = try await HubcastCLI.run(["run", "--config", fixture.configurationFile, "--input", input] + option)
        #expect(ended.reason == .exit, "hubcast run \(option.joined(separator: " ")) crashed (signal \(ended.status))")
    }

    /// Finding: `hubcast run --dry-run` without `--memory` works on the durable store the connector
    /// uses and records the new audience mappings there, so the next real run finds no newly mapped
    /// audience and never sends the backfill (the profiles that already qualified are never exported).
    @Test func dryRunOnTheStoreDoesNotSwallowTheBackfill() async throws {
        let fixture = try await Fixture.make()
        defer { Task { await fixture.finish() } }
        let (input, before) = try await fixture.prepareSilverBackfill()
        // The user previews what the new mapping will export...
        let preview = try await HubcastCLI.run(["run", "--config", fixture.configurationFile, "--dry-run"])
        #expect(preview.reason == .exit && preview.status == 0)
        // ...then runs the connector: the 30 silver members must still be backfilled.
        _ = try await fixture.connector { $0.backfillRate = 5000 }.run(input: input)
        #expect(fixture.received(hub: "alpha").joined().count - before == 30)
    }

    /// Finding: an input that cannot be read (here a directory) is taken as an empty input: the run
    /// reports 0 updates read and succeeds. `LineReader` treats a failing read(2) as the end of the input.
    @Test func anUnreadableInputIsAnError() async throws {
        let fixture = try await Fixture.make()
        defer { Task { await fixture.finish() } }
        await #expect(throws: ConnectorError.self) { _ = try await fixture.connector().run(input: fixture.folder) }
    }

    /// Finding: nothing stops a second connector on the same store (a restart overlapping the old
    /// process, two terminals): both apply the input from the same checkpoint and both send the same
    /// outbox rows, so far more than the in-flight window arrives twice. Expected: the second refuses
    /// to start (the store is in use), or duplicates stay within what was in flight.
    @Test func twoConnectorsOnOneStoreDoNotSendEverythingTwice() async throws {
        let fixture = try await Fixture.make()
        defer { Task { await fixture.finish() } }
        let input = try fixture.writeUpdates(3000, profiles: 600)
        let expected = try Fixture.expected(fixture.dryRun(input))
        let first = try fixture.connector { $0.window = 100 }
        let second = try fixture.connector { $0.window = 100 }
        func refuses(_ connector: Connector) async -> Bool {
            do {
                _ = try await connector.run(input: input)
                return false
            } catch {
                return true
            }
        }
        async let a = refuses(first)
        async let b = refuses(second)
        let (refusedA, refusedB) = await (a, b)
        let refused = refusedA || refusedB
        let duplicates = fixture.receivedEvents().count - expected.count
        #expect(refused || duplicates <= 2 * 100, "\(duplicates) duplicates of \(expected.count) exports")
    }
}
