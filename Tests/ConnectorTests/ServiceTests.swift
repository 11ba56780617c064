// The connector as a service of swift-service-lifecycle: it runs in a ServiceGroup and stops with
// the group's graceful shutdown, keeping what it did not send.

import HubcastConnector
import HubcastEmulator
import Logging
import ServiceLifecycle
import Synchronization
import Testing

@Suite struct ServiceTests {
    /// A connector with no input runs in a group until the group shuts down gracefully; then it
    /// stops (the report says so), what it sent was acknowledged, and what it did not stays in the
    /// outbox.
    @Test(.timeLimit(.minutes(1))) func aGracefulShutdownStopsTheConnector() async throws {
        try await Fixture.with({ $0.faults.settlementDelay = .milliseconds(300) }) { fixture in
            // Exports wait in the outbox: a first run on the input, stopped early.
            let input = try fixture.writeUpdates(300, profiles: 100)
            let first = try await fixture.runAndStopEarly(input)
            let waiting = first.outbox.values.reduce(0, +)
            try #require(waiting > 0)

            let connector = try fixture.connector { $0.window = 20 }
            let report = Mutex<ConnectorReport?>(nil)
            let service = ConnectorService(connector) { final in report.withLock { $0 = final } }
            var logger = Logger(label: "test.services")
            logger.logLevel = .critical
            let group = ServiceGroup(services: [service], logger: logger)
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                #expect(await eventually { connector.status.dataflows.values.reduce(0) { $0 + $1.counters.acknowledged } > 0 })
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
            let final = try #require(report.withLock { $0 })
            #expect(final.status.state == .stopped)
            let acknowledged = final.status.dataflows.values.reduce(0) { $0 + $1.counters.acknowledged }
            #expect(acknowledged > 0)
            // Nothing lost: acknowledged now, or still in the outbox for the next run.
            #expect(acknowledged + final.outbox.values.reduce(0, +) == waiting)
        }
    }
}
