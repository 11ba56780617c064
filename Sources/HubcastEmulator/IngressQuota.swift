// Hubcast — the emulator's ingress quota: throughput units as two token buckets.

/// A namespace's ingress quota in throughput units, as the service applies it: each unit allows
/// 1,000 events and 1 MiB per second, and a delivery over either limit is refused with
/// `com.microsoft:server-busy`.
///
/// Two token buckets, one for events and one for bytes, each holding at most one second's worth
/// (so a quiet namespace may burst for one second) and refilled continuously from the times the
/// caller passes in. A value with no clock of its own, so that tests can feed it explicit times.
struct IngressQuota: Sendable, Equatable {
    /// Events per second one throughput unit allows at the service.
    static let serviceEventsPerUnit = 1000
    /// Bytes per second one throughput unit allows (1 MiB).
    static let bytesPerUnit = 1_048_576.0

    let throughputUnits: Int
    /// Events per second one unit allows here (``EmulatorConfiguration/eventsPerThroughputUnit``).
    let eventsPerUnit: Double
    /// Events that may arrive now. Below zero after a delivery larger than a whole bucket (see
    /// ``admit(events:bytes:at:)``).
    private(set) var events: Double
    /// Bytes that may arrive now.
    private(set) var bytes: Double
    /// When the buckets were last refilled.
    private var refilled: ContinuousClock.Instant

    var eventCapacity: Double { Double(self.throughputUnits) * self.eventsPerUnit }
    var byteCapacity: Double { Double(self.throughputUnits) * Self.bytesPerUnit }

    /// A quota of `throughputUnits` (at least 1) of `eventsPerUnit` events per second each (at
    /// least 1), whose buckets are full at `now`.
    init(throughputUnits: Int, eventsPerUnit: Int = Self.serviceEventsPerUnit, now: ContinuousClock.Instant) {
        precondition(throughputUnits >= 1, "a quota needs at least one throughput unit")
        precondition(eventsPerUnit >= 1, "a throughput unit allows at least one event per second")
        self.throughputUnits = throughputUnits
        self.eventsPerUnit = Double(eventsPerUnit)
        self.events = Double(throughputUnits) * Double(eventsPerUnit)
        self.bytes = Double(throughputUnits) * Self.bytesPerUnit
        self.refilled = now
    }

    /// Whether a delivery of `events` events and `bytes` bytes arriving at `now` is within the
    /// quota; if so its tokens are taken, else nothing changes.
    ///
    /// A delivery larger than a whole bucket (a batch of more events than one second allows) would
    /// never fit; it is admitted when that bucket is full and leaves it in debt, so that the rate
    /// over time still keeps to the quota and such a batch is not refused for ever.
    mutating func admit(events: Int, bytes: Int, at now: ContinuousClock.Instant) -> Bool {
        self.refill(at: now)
        let (events, bytes) = (Double(events), Double(bytes))
        let eventCapacity = self.eventCapacity
        let byteCapacity = self.byteCapacity
        guard events <= self.events || (events > eventCapacity && self.events >= eventCapacity) else { return false }
        guard bytes <= self.bytes || (bytes > byteCapacity && self.bytes >= byteCapacity) else { return false }
        self.events -= events
        self.bytes -= bytes
        return true
    }

    /// Adds what the time since the last refill earned, up to one second's worth. A clock that went
    /// backwards (it cannot, being monotonic, but times are the caller's) earns nothing.
    private mutating func refill(at now: ContinuousClock.Instant) {
        guard now > self.refilled else { return }
        let (seconds, attoseconds) = (now - self.refilled).components
        let elapsed = Double(seconds) + Double(attoseconds) * 1e-18
        self.refilled = now
        self.events = min(self.eventCapacity, self.events + elapsed * self.eventCapacity)
        self.bytes = min(self.byteCapacity, self.bytes + elapsed * self.byteCapacity)
    }
}
