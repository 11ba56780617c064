// An unreachable hub: exports wait in the outbox, an alert is raised, no retry is used up, and
// everything is delivered once the hub is back.

import AMQP
import EventHubs
import Foundation
import HubcastConnector
import HubcastEmulator
import Logging
import ProfileExport
import Testing

@Suite struct OutageTests {
    @Test func outageKeepsExportsAndUsesNoRetries() async throws {
        // A port below the ephemeral range: the hub comes back on it later.
        try await Fixture.with(fixedPort: true) { fixture in
            let input = try fixture.writeUpdates(300, profiles: 100)
            let expected = try Fixture.expected(fixture.dryRun(input))
            var settings = fixture.emulator.configuration
            settings.port = fixture.emulator.port
            await fixture.emulator.stop()

            let connector = try fixture.connector {
                $0.retry.deadline = .milliseconds(300)
                $0.retry.maxDelay = .milliseconds(200)
            }
            async let report = connector.run(input: input)
            // The hub is down: the run raises an alert and keeps every export in the outbox.
            try await waitUntil("an alert is raised", stopping: connector) { connector.status.alerts > 0 }
            #expect(connector.status.destinations.values.contains { $0.connection.kind == .down })
            try await waitUntil("every update is applied", stopping: connector) { connector.status.updatesApplied >= 300 }
            #expect(try fixture.delivery().outboxDepth().values.reduce(0, +) == expected.count)

            var quiet = Logger(label: "test.emulator")
            quiet.logLevel = .critical
            let back = try await HubcastEmulator.start(settings, logger: quiet)
            let finished = try await report
            let received = ["alpha", "beta"].flatMap { hub in
                back.events(hub: hub).joined().map {
                    "\(hub)|\($0.partitionKey ?? "")|" + String(decoding: $0.message.bodyBytes ?? [], as: UTF8.self)
                }
            }
            await back.stop()
            #expect(tally(received) == tally(expected))
            #expect(finished.outbox.values.reduce(0, +) == 0)
            #expect(try fixture.delivery().failedExports().isEmpty)
            #expect(finished.status.destinations.values.reduce(0) { $0 + $1.outages } >= 1)
            #expect(finished.status.dataflows.values.reduce(0) { $0 + $1.counters.failed } == 0)
        }
    }

    /// A run with a give-up time against a hub where nothing listens: it stops with an error that
    /// names the destination and the real cause, keeps every export in the outbox, and its last
    /// status shows nothing in flight.
    @Test func aRunGivesUpOnAnUnreachableHubWithTheCause() async throws {
        try await Fixture.with { fixture in
            await fixture.emulator.stop()
            let input = try fixture.writeUpdates(200, profiles: 50)
            let expected = try Fixture.expected(fixture.dryRun(input))
            let connector = try fixture.connector {
                $0.retry.deadline = .milliseconds(200)
                $0.retry.maxDelay = .milliseconds(100)
                $0.giveUpAfter = .milliseconds(500)
            }
            do throws(ConnectorError) {
                _ = try await connector.run(input: input)
                Issue.record("the run did not give up")
            } catch {
                #expect(error.code == .destination)
                #expect(error.message.contains("unreachable"), "\(error)")
                #expect(error.message.contains("refused"), "\(error)")
            }
            #expect(try fixture.delivery().outboxDepth().values.reduce(0, +) == expected.count)
            #expect(connector.status.destinations.values.allSatisfy { $0.inFlight == 0 })
            #expect(connector.status.destinations.values.reduce(0) { $0 + $1.outages } >= 1)
        }
    }
}
