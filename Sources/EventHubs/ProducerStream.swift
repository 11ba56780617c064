// Hubcast — the bookkeeping of the producer's stream path.

import AMQP

/// The state of one ``EventHubsProducer/send(from:partition:window:onSettled:)``: the events in flight
/// (by stream index) and those to send again.
final class ProducerStream: @unchecked Sendable {
    // @unchecked: used by the connection's loop thread while a stream runs, and by the producer
    // between streams; starting a stream (the loop's queue) and its end (the waiter) order the two.
    private let next: @Sendable () -> EventHubsEvent?
    private let onSettled: @Sendable (Int, Result<AMQPOutcome, AMQPError>, Int) -> Void
    /// Events in flight in the current stream, by stream index minus `base`.
    private var inFlight: [(index: Int, event: EventHubsEvent)?] = []
    private var head = 0
    private var base: UInt64 = 0
    private var produced = 0
    private var retries: [(index: Int, event: EventHubsEvent, retries: Int)] = []
    private(set) var exhausted = false
    /// Events accepted so far.
    private(set) var accepted = 0

    init(next: @escaping @Sendable () -> EventHubsEvent?, onSettled: @escaping @Sendable (Int, Result<AMQPOutcome, AMQPError>, Int) -> Void) {
        self.next = next
        self.onSettled = onSettled
    }

    /// Before each stream: its indices start at 0. A failed stream has given every event it had in
    /// flight an outcome; any left are sent again.
    func startStream() {
        for entry in self.inFlight[self.head...] { if let (index, event) = entry { self.retries.append((index, event, 0)) } }
        self.inFlight.removeAll(keepingCapacity: true)
        self.head = 0
        self.base = 0
    }

    /// Loop thread: the next event into the stream's reused message; false once the source is drained.
    func fill(_ message: inout AMQPMessage) -> Bool {
        if self.inFlight.count == self.head && self.head > 0 {
            // Everything settled: start the table afresh (indices go on).
            self.base += UInt64(self.head)
            self.inFlight.removeAll(keepingCapacity: true)
            self.head = 0
        }
        guard let event = self.next() else {
            self.exhausted = true
            return false
        }
        self.inFlight.append((self.produced, event))
        self.produced += 1
        event.fill(&message)
        return true
    }

    /// Loop thread: a stream index's outcome.
    func outcome(_ streamIndex: UInt64, _ result: Result<AMQPOutcome, AMQPError>) {
        let position = Int(streamIndex &- self.base)
        guard position >= self.head, position < self.inFlight.count, let (index, event) = self.inFlight[position] else { return }
        self.inFlight[position] = nil
        while self.head < self.inFlight.count && self.inFlight[self.head] == nil { self.head += 1 }
        if self.head >= 4096 && self.head * 2 >= self.inFlight.count {
            self.inFlight.removeFirst(self.head)
            self.base += UInt64(self.head)
            self.head = 0
        }
        if case .success(.accepted) = result { self.accepted += 1 }
        switch EventHubsRecovery.of(result) {
        case .fatal: self.onSettled(index, result, 1)
        case .retry: self.retries.append((index, event, 1))
        default: self.retries.append((index, event, 0))
        }
    }

    /// The events to send again, oldest first; resets the table for the next stream.
    func takeRetries() -> [(index: Int, event: EventHubsEvent, retries: Int)] {
        defer { self.retries = [] }
        return self.retries.sorted { $0.index < $1.index }
    }

    /// Settles every event still pending with `error`.
    func failAll(_ error: AMQPError) {
        for entry in self.inFlight[self.head...] { if let (index, _) = entry { self.onSettled(index, .failure(error), 1) } }
        for entry in self.takeRetries() { self.onSettled(entry.index, .failure(error), 1) }
        self.inFlight = []
        self.head = 0
    }
}
