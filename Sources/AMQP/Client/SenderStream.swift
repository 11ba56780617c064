// Hubcast — the pull path of a sender: the loop takes messages from a source as credit allows.

internal import CQpidProton
import Synchronization

/// A source the sender's loop thread pulls from whenever the link has credit and fewer than
/// `window` deliveries are unsettled. Each message is encoded into one reused buffer and tracked by
/// its index, so a message costs no allocation beyond its own.
final class SenderStream: @unchecked Sendable {
    // @unchecked: after the hand-over everything but `cancelled` is used on the loop thread only;
    // `cancelled` is atomic.
    let fill: @Sendable (inout AMQPMessage) -> Bool
    let onOutcome: @Sendable (UInt64, Result<AMQPOutcome, AMQPError>) -> Void
    let window: Int
    let done: Waiter<Void>
    private var encoder = AMQPEncoder(capacity: 4096)
    /// The one message the source fills in place, like a reused `pn_message_t`.
    private var message = AMQPMessage()
    private var produced: UInt64 = 0
    private var unsettled = SequenceSet()
    private(set) var exhausted = false
    var unsettledCount: Int { self.unsettled.count }
    private let cancelled = Atomic<Bool>(false)

    /// Stops pulling new messages (any thread); those in flight still get their outcomes.
    func cancel() { self.cancelled.store(true, ordering: .relaxed) }

    init(
        window: Int, fill: @escaping @Sendable (inout AMQPMessage) -> Bool,
        onOutcome: @escaping @Sendable (UInt64, Result<AMQPOutcome, AMQPError>) -> Void, done: Waiter<Void>
    ) {
        self.window = window
        self.fill = fill
        self.onOutcome = onOutcome
        self.done = done
    }

    /// Sends while there is credit and room in the window. Returns true once everything is settled.
    func pump(_ link: OpaquePointer, outgoing: inout ProtonOutgoing) -> Bool {
        guard !self.exhausted else { return self.unsettled.isEmpty }
        // Work on local copies, swapped back at the end: class properties pay a run-time exclusivity
        // check on every access, locals none.
        var encoder = AMQPEncoder(capacity: 0)
        var message = AMQPMessage()
        var unsettled = SequenceSet()
        swap(&encoder, &self.encoder)
        swap(&message, &self.message)
        swap(&unsettled, &self.unsettled)
        var produced = self.produced
        var exhausted = false
        let limit = pn_link_remote_max_message_size(link)
        while unsettled.count < self.window, pn_link_credit(link) > 0 {
            guard !self.cancelled.load(ordering: .relaxed), self.fill(&message) else {
                exhausted = true
                break
            }
            let index = produced
            produced += 1
            encoder.bytes.removeAll(keepingCapacity: true)
            message.encode(into: &encoder)
            if limit > 0 && UInt64(encoder.bytes.count) > limit {
                self.onOutcome(
                    index,
                    .failure(
                        AMQPError(
                            .messageTooLarge, "message of \(encoder.bytes.count) bytes exceeds the link's max-message-size of \(limit)")))
                continue
            }
            let delivery = outgoing.transfer(encoder.bytes, on: link)
            if outgoing.presettled {
                // The link settles on send (as attached): the outcome is `accepted` at once.
                pn_delivery_settle(delivery)
                self.onOutcome(index, .success(.accepted))
                continue
            }
            // The context carries the index (plus one, so that no index is a null pointer).
            pn_delivery_set_context(delivery, UnsafeMutableRawPointer(bitPattern: UInt(index + 1)))
            unsettled.insert(index)
        }
        swap(&encoder, &self.encoder)
        swap(&message, &self.message)
        swap(&unsettled, &self.unsettled)
        self.produced = produced
        if exhausted { self.exhausted = true }
        return self.exhausted && self.unsettled.isEmpty
    }

    /// Handles a delivery update; returns false when the delivery is not one of this stream's.
    func update(_ delivery: OpaquePointer) -> Bool {
        guard let context = pn_delivery_get_context(delivery) else { return false }
        let index = UInt64(UInt(bitPattern: context)) - 1
        guard self.unsettled.contains(index) else { return false }
        guard let outcome = ProtonDelivery.settledOutcome(delivery) else { return true }
        self.unsettled.remove(index)
        self.onOutcome(index, .success(outcome))
        return true
    }

    /// Fails every unsettled message and the stream's waiter.
    func fail(_ error: AMQPError) {
        for index in self.unsettled.members() { self.onOutcome(index, .failure(error)) }
        self.unsettled = SequenceSet()
        self.exhausted = true
        self.done.resume(.failure(error))
    }
}

/// A set of numbers handed out in increasing order and removed in any order: a sliding run of
/// flags from the oldest member on, so no hashing is needed.
struct SequenceSet {
    private var flags: [Bool] = []
    private var head = 0
    private var base: UInt64 = 0
    private(set) var count = 0

    var isEmpty: Bool { self.count == 0 }

    /// Adds `value`, which must be larger than every value added before.
    mutating func insert(_ value: UInt64) {
        if self.count == 0 {
            self.flags.removeAll(keepingCapacity: true)
            self.head = 0
            self.base = value
        }
        while self.base + UInt64(self.flags.count - self.head) < value { self.flags.append(false) }
        self.flags.append(true)
        self.count += 1
    }

    func contains(_ value: UInt64) -> Bool {
        guard value >= self.base else { return false }
        let position = self.head + Int(value - self.base)
        return position < self.flags.count && self.flags[position]
    }

    mutating func remove(_ value: UInt64) {
        guard self.contains(value) else { return }
        self.flags[self.head + Int(value - self.base)] = false
        self.count -= 1
        while self.head < self.flags.count && !self.flags[self.head] {
            self.head += 1
            self.base += 1
        }
        if self.head >= 4096 && self.head * 2 >= self.flags.count {
            self.flags.removeFirst(self.head)
            self.head = 0
        }
    }

    /// The members, oldest first.
    func members() -> [UInt64] {
        (self.head..<self.flags.count).filter { self.flags[$0] }.map { self.base + UInt64($0 - self.head) }
    }
}
