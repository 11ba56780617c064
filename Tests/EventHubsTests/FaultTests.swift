import AMQP
@testable import EventHubs
import Foundation
import HubcastEmulator
import Synchronization
import Testing

/// A source of `count` distinct events for the stream path.
func eventSource(_ count: Int, prefix: String = "event-") -> @Sendable () -> EventHubsEvent? {
    let next = Mutex(0)
    return {
        next.withLock { index in
            guard index < count else { return nil }
            defer { index += 1 }
            return EventHubsEvent(body: Array("\(prefix)\(index)".utf8))
        }
    }
}

/// The emulator's injected faults against the producer over real sockets: delayed settlement,
/// stalled credit and tokens cut short.
@Suite struct FaultTests {
    /// Dispositions held for 150 ms: every outcome still arrives, none sooner than the delay.
    @Test func delayedSettlementStillSettlesEverything() async throws {
        try await withEmulator({ $0.faults.settlementDelay = .milliseconds(150) }) { emulator in
            let producer = try EventHubsProducer(
                connectionString: EventHubsConnectionString(parsing: emulator.connectionString(eventHub: "hub")), options: fastRetry())
            let started = ContinuousClock.now
            let waits = Mutex<[Duration]>([])
            let results = try await producer.send(contentsOf: distinctEvents(200)) { _, _, _ in
                waits.withLock { $0.append(ContinuousClock.now - started) }
            }
            #expect(results.allSatisfy { (try? $0.get()) == .accepted })
            #expect(waits.withLock { $0.count } == 200)
            #expect(waits.withLock { $0.allSatisfy { $0 >= .milliseconds(150) } })
            #expect(emulator.faultCounts.delayedSettlements == 200)
            #expect(Set(bodies(emulator)) == Set((0..<200).map { "event-\($0)" }))
            await producer.close()
        }
    }

    /// Credit withheld for 200 ms after every 300th event (window 50): the stream uses up its credit,
    /// waits, and completes when credit comes back; every event settles once and nothing is lost.
    @Test func stalledCreditPausesAndNothingIsLost() async throws {
        try await withEmulator({
            $0.creditWindow = 50
            $0.faults.creditStallEvery = 300
            $0.faults.creditStallDuration = .milliseconds(200)
        }) { emulator in
            let producer = try EventHubsProducer(
                connectionString: EventHubsConnectionString(parsing: emulator.connectionString(eventHub: "hub")), options: fastRetry())
            let settled = Mutex<[Int: EventHubsSendResult]>([:])
            try await producer.send(from: eventSource(1000)) { index, result, _ in
                settled.withLock { $0[index] = result }
            }
            #expect(settled.withLock { $0.count } == 1000)
            #expect(settled.withLock { $0.values.allSatisfy { (try? $0.get()) == .accepted } })
            let counts = emulator.faultCounts
            #expect(counts.creditStalls == 3)
            // The client really ran dry and had to wait for the stall to end.
            #expect(counts.creditExhaustedWhileStalled >= 1)
            let stored = bodies(emulator)
            #expect(stored.count == 1000)
            #expect(Set(stored) == Set((0..<1000).map { "event-\($0)" }))
            await producer.close()
        }
    }

    /// Every token cut to 1 second while the producer signs for an hour: links are detached as tokens
    /// lapse, the producer puts a fresh token and sends again, on the batch and the stream paths, and
    /// nothing is lost. (The pacing sleeps are the time under test, not synchronisation.)
    @Test func tokensCutShortAreRenewedAndNothingIsLost() async throws {
        try await withEmulator({ $0.faults.tokenLifetimeLimit = .seconds(1) }) { emulator in
            let producer = try EventHubsProducer(
                connectionString: EventHubsConnectionString(parsing: emulator.connectionString(eventHub: "hub")), options: fastRetry())
            var accepted = 0
            for round in 0..<3 {
                let events = (0..<50).map { EventHubsEvent(body: Array("event-\(round * 50 + $0)".utf8)) }
                accepted += try await producer.send(contentsOf: events).filter { (try? $0.get()) == .accepted }.count
                try await Task.sleep(for: .milliseconds(1200))
            }
            let streamed = Mutex(0)
            try await producer.send(from: eventSource(200, prefix: "streamed-")) { _, result, _ in
                if (try? result.get()) == .accepted { streamed.withLock { $0 += 1 } }
            }
            #expect(accepted == 150)
            #expect(streamed.withLock { $0 } == 200)
            #expect(emulator.faultCounts.tokenLapses >= 3)
            let expected = (0..<150).map { "event-\($0)" } + (0..<200).map { "streamed-\($0)" }
            #expect(Set(bodies(emulator)) == Set(expected))
            await producer.close()
        }
    }
}
