import AMQP
@testable import EventHubs
import Foundation
import HubcastEmulator
import Synchronization
import Testing

/// Fast retry settings for tests; the spec's defaults stay the library's defaults.
func fastRetry() -> EventHubsProducerOptions {
    var options = EventHubsProducerOptions()
    options.client.retry.initialDelay = .milliseconds(10)
    options.client.retry.maxDelay = .milliseconds(100)
    options.client.retry.serverBusyDelay = .milliseconds(20)
    return options
}

func distinctEvents(_ count: Int) -> [EventHubsEvent] {
    (0..<count).map { EventHubsEvent(body: Array("event-\($0)".utf8)) }
}

func bodies(_ emulator: HubcastEmulator) -> [String] {
    emulator.events(hub: "hub").flatMap { $0 }.map { String(decoding: $0.message.bodyBytes ?? [], as: UTF8.self) }
}

@Suite struct RecoveryTests {
    @Test func serverBusyIsRetriedWithoutUsingRetriesAndNothingIsLost() async throws {
        try await withEmulator({ $0.faults.serverBusyFraction = 0.2 }) { emulator in
            var options = fastRetry()
            options.client.retry.maxRetries = 0  // throttling must not need any
            let producer = try EventHubsProducer(
                connectionString: EventHubsConnectionString(parsing: emulator.connectionString(eventHub: "hub")), options: options)
            let settled = Mutex<[Int: Int]>([:])
            let results = try await producer.send(contentsOf: distinctEvents(300)) { index, _, sends in
                settled.withLock { $0[index] = sends }
            }
            #expect(results.allSatisfy { (try? $0.get()) == .accepted })
            // Every event reported once; the throttled ones were sent more than once.
            #expect(settled.withLock { $0.count } == 300)
            #expect(settled.withLock { $0.values.contains { $0 > 1 } })
            let stored = bodies(emulator)
            #expect(stored.count == 300)
            #expect(Set(stored) == Set((0..<300).map { "event-\($0)" }))
            await producer.close()
        }
    }

    /// Each call hears its own events' throttling, not that of a call beside it on the same
    /// producer: with no retries to use, every server-busy answer is one more send of its event.
    @Test func eachCallHearsItsOwnThrottling() async throws {
        try await withEmulator({ $0.faults.serverBusyFraction = 0.2 }) { emulator in
            var options = fastRetry()
            options.client.retry.maxRetries = 0
            let everyCall = Mutex(0)
            options.onThrottled = { everyCall.withLock { $0 += 1 } }
            let producer = try EventHubsProducer(
                connectionString: EventHubsConnectionString(parsing: emulator.connectionString(eventHub: "hub")), options: options)
            @Sendable func send(_ name: String) async throws -> (heard: Int, resends: Int) {
                let heard = Mutex(0)
                let resends = Mutex(0)
                let events = (0..<200).map { EventHubsEvent(body: Array("\(name)-\($0)".utf8)) }
                let results = try await producer.send(
                    contentsOf: events, onSettled: { _, _, sends in resends.withLock { $0 += sends - 1 } },
                    onThrottled: { heard.withLock { $0 += 1 } })
                #expect(results.allSatisfy { (try? $0.get()) == .accepted })
                return (heard.withLock { $0 }, resends.withLock { $0 })
            }
            async let first = send("a")
            async let second = send("b")
            let (a, b) = try await (first, second)
            #expect(a.heard > 0 && b.heard > 0)
            #expect(a.heard == a.resends)
            #expect(b.heard == b.resends)
            #expect(a.heard + b.heard == everyCall.withLock { $0 })
            #expect(bodies(emulator).count == 400)
            await producer.close()
        }
    }

    @Test func droppedConnectionsAreRecoveredAndNothingIsLost() async throws {
        try await withEmulator({ $0.faults.dropConnectionEvery = 150 }) { emulator in
            let producer = try EventHubsProducer(
                connectionString: EventHubsConnectionString(parsing: emulator.connectionString(eventHub: "hub")), options: fastRetry())
            var accepted = 0
            for chunk in 0..<10 {
                let events = (0..<50).map { EventHubsEvent(body: Array("event-\(chunk * 50 + $0)".utf8)) }
                accepted += try await producer.send(contentsOf: events).filter { (try? $0.get()) == .accepted }.count
            }
            #expect(accepted == 500)
            let stored = bodies(emulator)
            // At least once: every event is there; duplicates only for deliveries in doubt at a drop.
            #expect(Set(stored) == Set((0..<500).map { "event-\($0)" }))
            // Each drop leaves at most the in-flight deliveries (one batch of 50) in doubt.
            let drops = stored.count / 150
            #expect(drops >= 3)
            #expect(stored.count - 500 <= 50 * drops)
            await producer.close()
        }
    }

    @Test func detachedLinksAreReattached() async throws {
        try await withEmulator({ $0.faults.detachLinkEvery = 40 }) { emulator in
            let producer = try EventHubsProducer(
                connectionString: EventHubsConnectionString(parsing: emulator.connectionString(eventHub: "hub")), options: fastRetry())
            var accepted = 0
            for index in 0..<150 {
                if try await producer.send(EventHubsEvent(body: Array("event-\(index)".utf8))) == .accepted { accepted += 1 }
            }
            #expect(accepted == 150)
            #expect(Set(bodies(emulator)) == Set((0..<150).map { "event-\($0)" }))
            await producer.close()
        }
    }

    @Test func theDeadlineBoundsEndlessThrottling() async throws {
        try await withEmulator({ $0.faults.serverBusyFraction = 1.0 }) { emulator in
            var options = fastRetry()
            options.client.retry.deadline = .milliseconds(300)
            let producer = try EventHubsProducer(
                connectionString: EventHubsConnectionString(parsing: emulator.connectionString(eventHub: "hub")), options: options)
            let results = try await producer.send(contentsOf: distinctEvents(5))
            for result in results {
                guard case .failure(let error) = result else {
                    Issue.record("expected the deadline to pass, got \(result)")
                    continue
                }
                #expect(error.code == .timeout)
                // The error names what kept the events out, not only the deadline.
                #expect("\(error)".contains("server-busy"))
            }
            #expect(bodies(emulator).isEmpty)
            await producer.close()
        }
    }

    /// A port where nothing listens: both send paths give up after the deadline (counted from the
    /// start, as no event ever got through) with the real cause in the error.
    @Test func anUnreachableHubGivesUpWithTheRealCause() async throws {
        let emulator = try await HubcastEmulator.start(EmulatorConfiguration())
        let connectionString = try EventHubsConnectionString(parsing: emulator.connectionString(eventHub: "hub"))
        await emulator.stop()
        var options = fastRetry()
        options.client.retry.deadline = .milliseconds(500)
        let producer = try EventHubsProducer(connectionString: connectionString, options: options)
        let results = try await producer.send(contentsOf: distinctEvents(3))
        for result in results {
            guard case .failure(let error) = result else {
                Issue.record("expected a failure, got \(result)")
                continue
            }
            #expect(error.code == .timeout)
            #expect("\(error)".contains("refused"), "\(error)")
        }
        let events = Mutex(distinctEvents(5))
        do {
            try await producer.send(from: { events.withLock { $0.popLast() } }) { _, _, _ in }
            Issue.record("the stream path sent to a port where nothing listens")
        } catch let error as EventHubsError {
            #expect(error.code == .timeout)
            #expect("\(error)".contains("refused"), "\(error)")
        }
        await producer.close()
    }

    /// The backoff between recoveries starts again once events got through: a hub that detaches
    /// the link now and then is not an outage that grows the waits.
    @Test func theRecoveryCountStartsAgainAfterProgress() {
        let start = ContinuousClock.now
        var counter = RecoveryCounter(now: start)
        #expect(counter.recover(accepted: 0, now: start) == 1)
        #expect(counter.recover(accepted: 0, now: start + .seconds(1)) == 2)
        #expect(counter.recover(accepted: 0, now: start + .seconds(2)) == 3)
        // No progress: the deadline counts from the start.
        #expect(counter.passes(.seconds(5), after: .seconds(4), now: start + .seconds(2)))
        // Events got through since the last recovery: the next one is the first again.
        #expect(counter.recover(accepted: 500, now: start + .seconds(3)) == 1)
        #expect(!counter.passes(.seconds(5), after: .seconds(4), now: start + .seconds(3)))
        #expect(counter.recover(accepted: 1000, now: start + .seconds(4)) == 1)
        #expect(counter.recover(accepted: 1000, now: start + .seconds(5)) == 2)
    }

    /// With the link detached every 500 events, 5,000 events all go through the ten recoveries
    /// (each at the shortest backoff: ``theRecoveryCountStartsAgainAfterProgress``).
    @Test func frequentDetachesLoseNothing() async throws {
        try await withEmulator({ $0.faults.detachLinkEvery = 500 }) { emulator in
            let producer = try EventHubsProducer(
                connectionString: EventHubsConnectionString(parsing: emulator.connectionString(eventHub: "hub")), options: fastRetry())
            let accepted = Mutex(0)
            let events = Mutex(distinctEvents(5000).reversed() as [EventHubsEvent])
            try await producer.send(from: { events.withLock { $0.popLast() } }) { _, result, _ in
                if (try? result.get()) == .accepted { accepted.withLock { $0 += 1 } }
            }
            #expect(accepted.withLock { $0 } == 5000)
            #expect(Set(bodies(emulator)).count == 5000)
            await producer.close()
        }
    }

    @Test func classification() {
        #expect(EventHubsRecovery.of(AMQPCondition(name: "com.microsoft:server-busy")) == .throttled)
        #expect(EventHubsRecovery.of(AMQPCondition(name: "com.microsoft:timeout")) == .retry)
        #expect(EventHubsRecovery.of(AMQPCondition(name: AMQPCondition.detachForced)) == .reattach)
        #expect(EventHubsRecovery.of(AMQPCondition(name: AMQPCondition.connectionForced)) == .reconnect)
        #expect(EventHubsRecovery.of(AMQPCondition(name: AMQPCondition.unauthorizedAccess)) == .fatal)
        #expect(EventHubsRecovery.of(AMQPCondition(name: AMQPCondition.messageSizeExceeded)) == .fatal)
        #expect(EventHubsRecovery.of(AMQPError(.connectionFailed, "reset")) == .reconnect)
        #expect(EventHubsRecovery.of(AMQPError(.linkClosed, "gone", remoteCondition: .init(name: AMQPCondition.notFound))) == .fatal)
        #expect(EventHubsRecovery.of(AMQPError(.messageTooLarge, "big")) == .fatal)
        // What a connector waits out (keeping the event) and what it stops on.
        #expect(EventHubsRetryPolicy.isTransient(AMQPError(.timeout, "deadline")))
        #expect(EventHubsRetryPolicy.isTransient(AMQPError(.connectionRefused, "refused")))
        #expect(EventHubsRetryPolicy.isTransient(EventHubsError(.authorizationFailed, "no answer")))
        for code in [EventHubsError.Code.invalidConnectionString, .invalidToken, .tokenExpired, .unauthorized, .notFound] {
            #expect(!EventHubsRetryPolicy.isTransient(EventHubsError(code, "x")), "\(code)")
        }
        #expect(!EventHubsRetryPolicy.isTransient(AMQPError(.messageTooLarge, "big")))
        var policy = EventHubsRetryPolicy()
        policy.initialDelay = .milliseconds(100)
        policy.maxDelay = .milliseconds(250)
        #expect(policy.backoff(attempt: 1) >= .milliseconds(100) && policy.backoff(attempt: 1) <= .milliseconds(120))
        #expect(policy.backoff(attempt: 5) == .milliseconds(250))
    }
}

@Suite struct KeyOrderTests {
    /// With 30 % of events throttled and retried, events of one key still land in the order sent.
    @Test func retriedEventsAreNotOvertakenWithinAKey() async throws {
        try await withEmulator({
            $0.hubs = ["hub": 1]
            $0.faults.serverBusyFraction = 0.3
        }) { emulator in
            var options = fastRetry()
            options.preserveKeyOrder = true
            let producer = try EventHubsProducer(
                connectionString: EventHubsConnectionString(parsing: emulator.connectionString(eventHub: "hub")), options: options)
            let events = (0..<60).map { EventHubsEvent(body: Array("event-\($0)".utf8), partitionKey: $0 % 2 == 0 ? "even" : "odd") }
            let results = try await producer.send(contentsOf: events)
            #expect(results.allSatisfy { (try? $0.get()) == .accepted })
            let stored = emulator.events(hub: "hub", partition: 0)
            let even = stored.filter { $0.partitionKey == "even" }.map { String(decoding: $0.message.bodyBytes ?? [], as: UTF8.self) }
            let odd = stored.filter { $0.partitionKey == "odd" }.map { String(decoding: $0.message.bodyBytes ?? [], as: UTF8.self) }
            #expect(even == stride(from: 0, to: 60, by: 2).map { "event-\($0)" })
            #expect(odd == stride(from: 1, to: 60, by: 2).map { "event-\($0)" })
            await producer.close()
        }
    }
}

@Suite struct StreamSendTests {
    /// The stream path under throttling and dropped connections: every event settles exactly once,
    /// accepted, and the hub holds every one (duplicates only from deliveries in doubt at a drop).
    @Test func everyEventSettlesOnceThroughThrottlingAndDrops() async throws {
        try await withEmulator({
            $0.faults.serverBusyFraction = 0.1
            $0.faults.dropConnectionEvery = 900
        }) { emulator in
            var options = fastRetry()
            options.client.retry.maxRetries = 0  // throttling and lost connections must not need any
            let producer = try EventHubsProducer(
                connectionString: EventHubsConnectionString(parsing: emulator.connectionString(eventHub: "hub")), options: options)
            let count = 3000
            let pulled = Mutex(0)
            let settled = Mutex<[Int: (EventHubsSendResult, Int)]>([:])
            let doubles = Mutex(0)
            try await producer.send(
                from: {
                    pulled.withLock { next in
                        guard next < count else { return nil }
                        defer { next += 1 }
                        return EventHubsEvent(body: Array("event-\(next)".utf8))
                    }
                }, window: 200
            ) { index, result, sends in
                settled.withLock { if $0.updateValue((result, sends), forKey: index) != nil { doubles.withLock { $0 += 1 } } }
            }
            let results = settled.withLock { $0 }
            #expect(doubles.withLock { $0 } == 0)
            #expect(results.count == count)
            #expect(results.values.allSatisfy { (try? $0.0.get()) == .accepted })
            #expect(results.values.contains { $0.1 > 1 })  // some were sent again
            let stored = bodies(emulator)
            #expect(Set(stored) == Set((0..<count).map { "event-\($0)" }))
            await producer.close()
        }
    }

    @Test func unknownHubThrowsNotFound() async throws {
        try await withEmulator { emulator in
            let producer = try producer(emulator, hub: "nope")
            let once = Mutex(false)
            await #expect(throws: EventHubsError.self) {
                try await producer.send(from: {
                    once.withLock { sent in
                        defer { sent = true }
                        return sent ? nil : EventHubsEvent(body: [1])
                    }
                }) { _, _, _ in }
            }
        }
    }
}
