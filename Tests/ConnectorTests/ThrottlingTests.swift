// server-busy: the connector's defaults wait at least 4 s before sending again and use no retry; a
// hub with a quota gets everything in per-profile order, and full speed once the quota is lifted. (A
// hub whose process is killed and restarted: scripts/chaos, row kill-emulator, in the test command.)

import AMQP
import EventHubs
import Foundation
import HubcastConnector
import HubcastEmulator
import Logging
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
        try await Fixture.with(retries: 5) { fixture throws in
            #expect(try fixture.connector().options.retry.maxRetries == 5)
        }
    }

    /// With the default policy, an event the hub answers with server-busy is sent again no sooner
    /// than 4 s later, and is not counted as failed or retried-to-failure.
    @Test func serverBusyWaitsAtLeastFourSeconds() async throws {
        try await Fixture.with({ $0.faults.serverBusyFraction = 1 }) { fixture in
            // One update, one export (tier bronze: only active-flow exports it).
            let input = fixture.folder + "/one.jsonl"
            try
                #"{"profileId":"p-1","timestamp":"2026-11-20T00:00:00Z","identities":{"email":["e1@example.org"]},"attributes":{"tier":"bronze","score":1}}"#
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

    /// A namespace with a quota (one throughput unit, scaled down to 100 events/s for both hubs so
    /// that even a slow machine sends faster): every export arrives, each profile's in order,
    /// none failed, and the hub really throttled.
    @Test func aQuotaDeliversEverythingInProfileOrder() async throws {
        try await Fixture.with({
            $0.throughputUnits = 1
            $0.eventsPerThroughputUnit = 100
        }) { fixture in
            let input = try fixture.writeUpdates(600, profiles: 60)
            let expected = try Fixture.expected(fixture.dryRun(input))
            let report = try await fixture.connector { $0.retry.serverBusyDelay = .milliseconds(500) }.run(input: input)
            #expect(fixture.emulator.faultCounts.quotaRejections > 0)
            #expect(report.status.destinations.values.reduce(0) { $0 + $1.throttled } > 0)
            let received = tally(fixture.receivedEvents())
            for (event, _) in tally(expected) { #expect(received[event] != nil, "lost: \(event.prefix(80))") }
            // No connection was lost: nothing is in doubt, so nothing arrives twice.
            #expect(received.values.reduce(0, +) == expected.count)
            #expect(try fixture.delivery().failedExports().isEmpty)
            #expect(report.outbox.values.reduce(0, +) == 0)
            try expectScoresInOrder(fixture, profiles: 60, each: 10)
        }
    }

    /// Once the quota is lifted, the dispatchers' send-rate limits grow out of the way (five times
    /// what the quota allowed) or go while exports keep coming: they send as fast as they can
    /// again. The connector follows its input and the test appends to it whenever the outbox runs
    /// low, so there is always work, however fast or slow the machine.
    @Test func liftingTheQuotaLiftsTheSendRateLimit() async throws {
        try await Fixture.with({
            $0.throughputUnits = 1
            $0.eventsPerThroughputUnit = 100
        }) { fixture in
            let (chunk, profiles) = (1000, 100)
            let input = try fixture.writeUpdates(chunk, profiles: profiles)
            var written = chunk
            let connector = try fixture.connector {
                $0.retry.serverBusyDelay = .milliseconds(500)
                $0.follow = true
            }
            async let report = connector.run(input: input)
            func limits() -> [Double?] { connector.status.destinations.values.map(\.sendRateLimit) }
            func acknowledged() -> Int { connector.status.dataflows.values.reduce(0) { $0 + $1.counters.acknowledged } }
            try await waitUntil("the dispatchers limit their rate", stopping: connector) { limits().contains { $0 != nil } }
            let limited = limits().compactMap { $0 }.max()!
            #expect(limited < 300)
            fixture.emulator.throughputUnits = nil
            let acknowledgedAtLift = acknowledged()
            var appendFailure: (any Error)?
            try await waitUntil("the limits go", stopping: connector) {
                if connector.status.outboxDepth < chunk, appendFailure == nil {
                    do {
                        try fixture.writeUpdates(chunk, profiles: profiles, from: written, appending: true)
                        written += chunk
                    } catch {
                        appendFailure = error
                    }
                }
                return limits().allSatisfy { $0.map { $0 > 5 * limited } ?? true }
            }
            if let appendFailure { throw appendFailure }
            let acknowledgedWhenGone = acknowledged()
            connector.stop()
            let finished = try await report
            #expect(acknowledgedAtLift < acknowledgedWhenGone)
            #expect(finished.status.dataflows.values.reduce(0) { $0 + $1.counters.failed } == 0)
            #expect(try fixture.delivery().failedExports().isEmpty)
        }
    }
}

/// Checks that hub `beta` (active-flow: every update of a profile is an export, its `score` the
/// update's line) got each of `profiles` profiles' `each` scores, in increasing order: a duplicate
/// may repeat the latest score, never an earlier one.
func expectScoresInOrder(_ fixture: Fixture, profiles: Int, each: Int) throws {
    try expectScoresInOrder(fixture.received(hub: "beta"), profiles: profiles, each: each)
}

func expectScoresInOrder(_ partitions: [[(key: String?, body: [UInt8])]], profiles: Int, each: Int) throws {
    var scores: [String: [Int]] = [:]
    for partition in partitions {
        for event in partition {
            let body = String(decoding: event.body, as: UTF8.self)
            let digits = body.drop { !$0.isNumber }.prefix { $0.isNumber }
            scores[event.key ?? "", default: []].append(try #require(Int(digits)))
        }
    }
    #expect(scores.count == profiles)
    for (key, values) in scores {
        #expect(values == values.sorted(), "out of order for \(key)")
        #expect(Set(values).count == each, "missing events for \(key)")
    }
}
