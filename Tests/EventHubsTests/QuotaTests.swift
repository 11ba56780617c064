import AMQP
import Foundation
@testable import HubcastEmulator
import Testing

/// The ingress quota's buckets as a value, fed explicit times.
@Suite struct IngressQuotaTests {
    let t0 = ContinuousClock.now

    /// Whether the quota admits one delivery (a function, as `#expect` cannot call a mutating method).
    func admits(_ quota: inout IngressQuota, events: Int, bytes: Int, at time: ContinuousClock.Instant) -> Bool {
        quota.admit(events: events, bytes: bytes, at: time)
    }

    /// Admits `count` deliveries of one event and `bytes` bytes each at `time`; returns how many passed.
    func admitted(_ quota: inout IngressQuota, _ count: Int, bytes: Int = 100, at time: ContinuousClock.Instant) -> Int {
        (0..<count).filter { _ in quota.admit(events: 1, bytes: bytes, at: time) }.count
    }

    @Test func burstOfOneSecondThenHalfASecondsRefill() {
        var quota = IngressQuota(throughputUnits: 1, now: self.t0)
        #expect(self.admitted(&quota, 1000, at: self.t0) == 1000)
        #expect(self.admits(&quota, events: 1, bytes: 100, at: self.t0) == false)
        let later = self.t0 + .milliseconds(500)
        #expect(self.admitted(&quota, 500, at: later) == 500)
        #expect(self.admits(&quota, events: 1, bytes: 100, at: later) == false)
    }

    @Test func bytesAreLimitedIndependently() {
        var quota = IngressQuota(throughputUnits: 1, now: self.t0)
        // Two half-MiB events fill the byte bucket while 998 event tokens are left.
        #expect(self.admitted(&quota, 2, bytes: 524_288, at: self.t0) == 2)
        #expect(self.admits(&quota, events: 1, bytes: 1, at: self.t0) == false)
        #expect(quota.events == 998)
        let later = self.t0 + .milliseconds(250)
        #expect(self.admits(&quota, events: 1, bytes: 262_144, at: later) == true)
        #expect(self.admits(&quota, events: 1, bytes: 1, at: later) == false)
    }

    @Test func refusedDeliveriesTakeNoTokens() {
        var quota = IngressQuota(throughputUnits: 1, now: self.t0)
        #expect(self.admitted(&quota, 999, at: self.t0) == 999)
        // A batch of two does not fit; what it would have taken stays for the single event.
        #expect(self.admits(&quota, events: 2, bytes: 200, at: self.t0) == false)
        #expect(self.admits(&quota, events: 1, bytes: 100, at: self.t0) == true)
        #expect(self.admits(&quota, events: 1, bytes: 100, at: self.t0) == false)
    }

    @Test func bucketsHoldOneSecondAtMost() {
        var quota = IngressQuota(throughputUnits: 1, now: self.t0)
        #expect(self.admitted(&quota, 1000, at: self.t0) == 1000)
        let idle = self.t0 + .seconds(10)
        #expect(self.admitted(&quota, 1500, at: idle) == 1000)
    }

    @Test func throughputUnitsScaleBothLimits() {
        var quota = IngressQuota(throughputUnits: 3, now: self.t0)
        #expect(self.admitted(&quota, 3001, at: self.t0) == 3000)
        var bytes = IngressQuota(throughputUnits: 3, now: self.t0)
        #expect(self.admitted(&bytes, 4, bytes: 1_048_576, at: self.t0) == 3)
    }

    /// A unit scaled down (as tests do, to reach a quota at any speed) limits events to its size
    /// per second; bytes keep the service's 1 MiB per unit.
    @Test func scaledUnitsLimitEventsToTheirSize() {
        var quota = IngressQuota(throughputUnits: 2, eventsPerUnit: 100, now: self.t0)
        #expect(self.admitted(&quota, 250, at: self.t0) == 200)
        #expect(self.admitted(&quota, 100, at: self.t0 + .milliseconds(100)) == 20)
        #expect(quota.byteCapacity == 2 * 1_048_576)
    }

    /// A batch of more events than a second allows passes when the bucket is full and leaves it in
    /// debt: the rate over time stays within the quota.
    @Test func batchLargerThanTheBucketRunsIntoDebt() {
        var quota = IngressQuota(throughputUnits: 1, now: self.t0)
        #expect(self.admits(&quota, events: 1500, bytes: 1500, at: self.t0) == true)
        #expect(self.admits(&quota, events: 1, bytes: 1, at: self.t0 + .milliseconds(400)) == false)
        let later = self.t0 + .seconds(1)
        #expect(self.admits(&quota, events: 501, bytes: 501, at: later) == false)
        #expect(self.admits(&quota, events: 500, bytes: 500, at: later) == true)
        #expect(self.admits(&quota, events: 1500, bytes: 1500, at: later + .milliseconds(900)) == false)
    }
}

/// The ingress quota end to end: bursts on one plain AMQP link (SASL PLAIN, no retries) against an
/// emulator with 1 throughput unit.
@Suite struct QuotaTests {
    static let throttled =
        "The request was terminated because the entity is being throttled. Error code : 50002. Please wait 4 seconds and try again."

    /// What a burst came to: events and bytes accepted and stored, deliveries refused as throttled,
    /// and how long it took from before the first send until every outcome was in.
    struct Burst {
        var accepted = 0
        var acceptedEvents = 0
        var acceptedBytes = 0
        var throttled = 0
        var elapsed: Duration = .zero

        var seconds: Double { self.elapsed / .seconds(1) }
    }

    func sender(_ emulator: HubcastEmulator, target: String = "hub") async throws -> (AMQPConnection, AMQPSender) {
        let connection = try await AMQPConnection.connect(
            AMQPConnectionConfiguration(
                host: "127.0.0.1", port: emulator.port, sasl: .plain(username: "RootManageSharedAccessKey", password: "SAS_KEY_VALUE")))
        return (connection, try await connection.openSender(target: target))
    }

    /// Sends `messages` at once and sorts the outcomes; anything but accepted or throttled is an issue.
    func burst(_ sender: AMQPSender, _ messages: [AMQPMessage], eventsEach: Int = 1) async throws -> Burst {
        var burst = Burst()
        let started = ContinuousClock.now
        let results = try await sender.send(contentsOf: messages)
        burst.elapsed = ContinuousClock.now - started
        for (message, result) in zip(messages, results) {
            switch result {
            case .success(.accepted):
                burst.accepted += 1
                burst.acceptedEvents += eventsEach
                burst.acceptedBytes += message.encoded().count
            case .success(.rejected(let condition?)) where condition.name == "com.microsoft:server-busy":
                #expect(condition.description == Self.throttled)
                burst.throttled += 1
            default:
                Issue.record("unexpected outcome \(result)")
            }
        }
        return burst
    }

    static func events(_ count: Int, prefix: String) -> [AMQPMessage] {
        (0..<count).map { AMQPMessage(bytes: Array("\(prefix)-\($0)".utf8)) }
    }

    /// With 1 TU, 3,000 events at once: no more are stored than the buckets allowed (1,000 at the
    /// start plus 1,000/s since), so some are throttled unless the burst took two seconds; after
    /// the quota is lifted everything is accepted.
    @Test func burstIsThrottledAndLiftingTheQuotaAcceptsEverything() async throws {
        try await withEmulator({ $0.throughputUnits = 1 }) { emulator in
            #expect(emulator.throughputUnits == 1)
            let (connection, sender) = try await self.sender(emulator)
            let first = try await self.burst(sender, Self.events(3000, prefix: "first"))
            #expect(first.accepted + first.throttled == 3000)
            #expect(Double(first.accepted) <= 1000 + 1000 * first.seconds)
            #expect(first.throttled > 0 || first.elapsed >= .seconds(2))
            #expect(emulator.faultCounts.quotaRejections == first.throttled)
            #expect(emulator.faultCounts.serverBusy == 0)
            #expect(bodies(emulator).count == first.accepted)

            emulator.throughputUnits = nil
            #expect(emulator.throughputUnits == nil)
            let second = try await self.burst(sender, Self.events(3000, prefix: "second"))
            #expect(second.accepted == 3000)
            #expect(emulator.faultCounts.quotaRejections == first.throttled)
            #expect(bodies(emulator).count == first.accepted + 3000)
            await connection.close()
        }
    }

    /// No quota by default; one set while the emulator runs applies to the next events.
    @Test func quotaSetWhileRunningThrottlesTheNextEvents() async throws {
        try await withEmulator { emulator in
            #expect(emulator.throughputUnits == nil)
            let (connection, sender) = try await self.sender(emulator)
            let free = try await self.burst(sender, Self.events(3000, prefix: "free"))
            #expect(free.accepted == 3000)
            emulator.throughputUnits = 1
            #expect(emulator.throughputUnits == 1)
            let limited = try await self.burst(sender, Self.events(3000, prefix: "limited"))
            #expect(Double(limited.accepted) <= 1000 + 1000 * limited.seconds)
            #expect(limited.throttled > 0 || limited.elapsed >= .seconds(2))
            #expect(emulator.faultCounts.quotaRejections == limited.throttled)
            #expect(bodies(emulator).count == 3000 + limited.accepted)
            await connection.close()
        }
    }

    /// A batch envelope counts as its events: three batches of 600 do not fit in 1,000 events/s
    /// unless the burst took 0.8 s; a refused batch stores none of its events.
    @Test func batchesCountTheirEvents() async throws {
        try await withEmulator({ $0.throughputUnits = 1 }) { emulator in
            let (connection, sender) = try await self.sender(emulator, target: "hub/Partitions/0")
            let batches = (0..<3).map { batch in
                AMQPMessage(body: .data(Self.events(600, prefix: "batch\(batch)").map { $0.encoded() }))
            }
            let burst = try await self.burst(sender, batches, eventsEach: 600)
            #expect(Double(burst.acceptedEvents) <= 1000 + 1000 * burst.seconds)
            #expect(burst.throttled > 0 || burst.elapsed >= .milliseconds(800))
            #expect(emulator.faultCounts.quotaRejections == burst.throttled)
            #expect(emulator.events(hub: "hub", partition: 0).count == burst.acceptedEvents)
            await connection.close()
        }
    }

    /// The byte limit on its own: four events of about 600 KB are far below 1,000 events but over
    /// 1 MiB, so some are throttled unless the burst took 1.3 s.
    @Test func bytesAreThrottledBelowTheEventLimit() async throws {
        try await withEmulator({ $0.throughputUnits = 1 }) { emulator in
            let (connection, sender) = try await self.sender(emulator)
            let large = (0..<4).map { AMQPMessage(bytes: Array(repeating: UInt8($0), count: 600_000)) }
            let burst = try await self.burst(sender, large)
            #expect(Double(burst.acceptedBytes) <= 1_048_576 * (1 + burst.seconds))
            #expect(burst.throttled > 0 || burst.elapsed >= .milliseconds(1300))
            #expect(emulator.faultCounts.quotaRejections == burst.throttled)
            #expect(emulator.events(hub: "hub").flatMap { $0 }.map(\.encoded.count).reduce(0, +) == burst.acceptedBytes)
            await connection.close()
        }
    }

    /// A quota below one unit, or a unit of no events, is refused at start, naming the setting.
    @Test(arguments: [(0, 1000, "throughputUnits"), (1, 0, "eventsPerThroughputUnit")])
    func aQuotaOfNothingIsAnError(units: Int, events: Int, named: String) async throws {
        var configuration = EmulatorConfiguration()
        configuration.throughputUnits = units
        configuration.eventsPerThroughputUnit = events
        await #expect { _ = try await HubcastEmulator.start(configuration) } throws: { error in
            (error as? EmulatorError)?.code == .invalidConfiguration && "\(error)".contains(named)
        }
    }
}
