// server-busy: the connector's defaults wait at least 4 s before sending again and use no retry.

import EventHubs
import Foundation
import HubcastConnector
import HubcastEmulator
import ProfileExport
import Testing

@Suite struct ThrottlingTests {
    @Test func defaultsFollowTheSeed() throws {
        let options = ConnectorOptions()
        #expect(options.retry.serverBusyDelay == .seconds(4))
        #expect(options.retry.maxRetries == 2)
        #expect(options.retry.deadline == .seconds(30))
    }

    @Test func retriesComeFromTheConfiguration() async throws {
        let fixture = try await Fixture.make(retries: 5)
        defer { Task { await fixture.finish() } }
        #expect(try fixture.connector().options.retry.maxRetries == 5)
    }

    /// With the default policy, an event the hub answers with server-busy is sent again no sooner
    /// than 4 s later, and is not counted as failed or retried-to-failure.
    @Test func serverBusyWaitsAtLeastFourSeconds() async throws {
        let fixture = try await Fixture.make { $0.faults.serverBusyFraction = 1 }
        defer { Task { await fixture.finish() } }
        // One update, one export (tier bronze: only active-flow exports it).
        let input = fixture.folder + "/one.jsonl"
        try #"{"profileId":"p-1","timestamp":"2026-11-20T00:00:00Z","identities":{"email":["e1@example.org"]},"attributes":{"tier":"bronze","score":1}}"#
            .appending("\n").write(toFile: input, atomically: true, encoding: .utf8)
        let connector = try fixture.connector {
            $0.retry.serverBusyDelay = .seconds(4)
            $0.retry.initialDelay = .milliseconds(800)
        }
        async let report = connector.run(input: input)
        try await waitUntil("the hub throttles", stopping: connector) { fixture.emulator.faultCounts.serverBusy > 0 }
        let throttledAt = ContinuousClock.now
        fixture.emulator.faults = .init()
        func arrived() -> Int { ["alpha", "beta"].reduce(0) { $0 + fixture.emulator.events(hub: $1).reduce(0) { $0 + $1.count } } }
        try await waitUntil("the event arrives", stopping: connector) { arrived() > 0 }
        #expect(ContinuousClock.now - throttledAt >= .milliseconds(3800))
        let finished = try await report
        #expect(finished.status.dataflows.values.reduce(0) { $0 + $1.counters.failed } == 0)
        #expect(try fixture.delivery().failedExports().isEmpty)
        #expect(finished.status.dataflows.values.reduce(0) { $0 + $1.counters.acknowledged } == 1)
    }
}
