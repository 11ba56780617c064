// Hubcast — a receiver link.

import Synchronization

/// A receiver link: an `AsyncSequence` of deliveries from its source.
///
/// The link holds at most ``AMQPReceiverOptions/creditWindow`` deliveries the consumer has not taken;
/// credit is granted again as the consumer iterates, so a slow consumer slows the sender
/// (back-pressure). Settle each delivery with ``AMQPDelivery/accept()``, `reject` or `release`.
///
/// The sequence ends (returns nil) after ``close()``; it throws ``AMQPError`` when the peer detaches
/// the link or the connection is lost. Iterate from one task at a time.
public struct AMQPReceiver: AsyncSequence, Sendable {
    public typealias Element = AMQPDelivery

    /// The connection the link is on.
    public let connection: AMQPConnection
    let box: LinkBox<ReceiverCore>
    /// The source address.
    public let source: String
    private let taken = Taken()

    init(connection: AMQPConnection, box: LinkBox<ReceiverCore>, source: String) {
        self.connection = connection
        self.box = box
        self.source = source
    }

    /// Counts deliveries taken since credit was last granted.
    private final class Taken: Sendable {
        let count = Mutex<UInt32>(0)
    }

    /// The next delivery; waits for one. Nil once the link was closed locally.
    public func next() async throws -> AMQPDelivery? {
        let box = self.box
        guard let delivery = try await box.core.buffer.next() else { return nil }
        let window = box.core.creditWindow
        let grant = self.taken.count.withLock { count -> UInt32 in
            count += 1
            guard count >= Swift.max(1, window / 2) else { return 0 }
            defer { count = 0 }
            return count
        }
        if grant > 0 { box.core.engine.loop.execute { box.core.grant(grant) } }
        return delivery
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let receiver: AMQPReceiver
        public mutating func next() async throws -> AMQPDelivery? { try await self.receiver.next() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(receiver: self) }

    /// Detaches the link; the sequence then ends. Deliveries not yet settled are released by the peer.
    public func close() async {
        let box = self.box
        _ = try? await self.connection.onLoop(always: true) { _, waiter in box.core.close(waiter) }
    }
}

/// One received message with its settlement.
public struct AMQPDelivery: Sendable {
    /// The message.
    public let message: AMQPMessage
    let id: UInt64
    /// Whether the sender settled it already: then settling does nothing.
    public let presettled: Bool
    let settle: @Sendable (UInt64, AMQPOutcome) -> Void

    /// Accepts the delivery and settles it.
    public func accept() { self.settle(self.id, .accepted) }
    /// Rejects the delivery with a condition and settles it.
    public func reject(_ condition: AMQPCondition? = nil) { self.settle(self.id, .rejected(condition)) }
    /// Releases the delivery (the sender may send it again) and settles it.
    public func release() { self.settle(self.id, .released) }
    /// Settles with any outcome.
    public func settle(_ outcome: AMQPOutcome) { self.settle(self.id, outcome) }
}
