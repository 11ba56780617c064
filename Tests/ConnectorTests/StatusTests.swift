// What the connector's status says while it runs, in its report and in the snapshot `hubcast status`
// reads: outbox depths, per dataflow and in all, and a destination that failed.

import Foundation
import HubcastConnector
import HubcastEmulator
import ProfileExport
import Testing

@Suite struct StatusTests {
    /// `hubcast failed redrive` while a connector runs puts rows into the outbox behind the
    /// connector's back; once they are acknowledged, the live `outboxDepth` (status, intake
    /// back-pressure) is 0 again (it went negative: the outbox gate never counted them, but settling
    /// them took them off).
    @Test func redriveWhileRunningKeepsOutboxDepthRight() async throws {
        try await Fixture.with({ $0.faults.rejectEvery = 10 }) { fixture in
            let input = try fixture.writeUpdates(200, profiles: 20)
            _ = try await fixture.connector().run(input: input)
            let failed = try fixture.delivery().failedExports()
            try #require(!failed.isEmpty)
            fixture.emulator.faults = .init()

            let connector = try fixture.connector()
            async let running = connector.run(input: nil)
            // The dispatchers run (they publish their destinations once the outbox was counted).
            #expect(await eventually { connector.status.destinations.count == 2 })
            #expect(try fixture.delivery().redrive(ids: nil) == failed.count)
            #expect(
                await eventually {
                    connector.status.dataflows.values.reduce(0) { $0 + $1.counters.acknowledged } == failed.count
                })
            let live = connector.status
            connector.stop()
            _ = try await running
            #expect(try fixture.delivery().outboxDepth().values.reduce(0, +) == 0)
            #expect(live.outboxDepth == 0, "live outbox depth after the redriven exports were acknowledged: \(live.outboxDepth)")
        }
    }

    /// `ConnectorStatus.Dataflow.outbox` counts each dataflow's exports waiting in the outbox, in the
    /// report and in the stored snapshot (it was never set: 0 for every dataflow while exports waited).
    @Test func statusCountsEachDataflowsOutbox() async throws {
        try await Fixture.with({ $0.faults.settlementDelay = .seconds(2) }) { fixture in
            let input = try fixture.writeUpdates(300, profiles: 100)
            let report = try await fixture.runAndStopEarly(input)
            let waiting = try #require(report.outbox["active-flow"])
            #expect(waiting > 0)
            #expect(report.status.dataflows["active-flow"]?.outbox == waiting)
            let snapshot = try #require(try fixture.delivery().statusSnapshot())
            let stored = try JSONDecoder().decode(ConnectorStatus.self, from: Data(snapshot.utf8))
            #expect(stored.dataflows["active-flow"]?.outbox == waiting)
        }
    }

    /// The final status snapshot counts each dataflow's outbox as the run left it: after a run that
    /// sent everything, `hubcast status --json` says no export waits (it kept the status writer's
    /// last count, taken while the run went on, so exports seemed to wait with outboxDepth 0 beside it).
    @Test func finalStatusCountsTheOutboxItLeft() async throws {
        try await Fixture.with { fixture in
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
    }

    /// A destination that cannot be used (refused key) stops the run, and its status connection says
    /// so (`failed: <reason>`, as documented), so `hubcast status` shows it (it stayed `connecting`);
    /// the snapshot holds no piece of the key.
    @Test func statusShowsAFailedDestination() async throws {
        try await Fixture.with { fixture in
            try fixture.writeConfiguration(key: "V1JPTkctS0VZLWRvLW5vdC1sb2c=")
            let input = try fixture.writeUpdates(50, profiles: 10)
            await #expect(throws: ConnectorError.self) { _ = try await fixture.connector().run(input: input) }
            let snapshot = try #require(try fixture.delivery().statusSnapshot())
            #expect(!snapshot.contains("V1JPTkctS0VZ"))
            let status = try JSONDecoder().decode(ConnectorStatus.self, from: Data(snapshot.utf8))
            let connections = status.destinations.values.map(\.connection)
            #expect(connections.contains { $0.kind == .failed }, "connection states: \(connections)")
        }
    }
}
