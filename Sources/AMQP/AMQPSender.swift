// Hubcast — a sender link.

import Synchronization

/// A sender link: sends messages to its target and reports each one's outcome.
///
/// Two ways to send:
/// - ``send(_:)`` awaits one message's outcome;
/// - ``send(_:onOutcome:)`` queues a message and calls back with its outcome, so thousands of
///   deliveries can be in flight without a task each (the pipelined path).
///
/// Messages are encoded on the caller's thread and sent in the order given as credit allows.
public struct AMQPSender: Sendable {
    /// The connection the link is on.
    public let connection: AMQPConnection
    let box: LinkBox<SenderCore>
    /// The target address.
    public let target: String

    /// The peer's max-message-size for this link, or nil when it set none. Larger messages fail with
    /// `.messageTooLarge` before they are sent.
    public var maxMessageSize: UInt64? { self.box.maxMessageSize }

    /// Sends one message and waits for the peer to settle it.
    ///
    /// Returns the outcome (accepted, rejected with the peer's condition, released, modified). Throws
    /// `.linkClosed` or `.connectionClosed` (with the peer's condition) when the link or connection
    /// is gone, `.messageTooLarge` when the message exceeds ``maxMessageSize``, and `.cancelled` when
    /// the task is cancelled: a message already on the wire cannot be recalled, only the wait stops.
    public func send(_ message: AMQPMessage) async throws -> AMQPOutcome {
        try await self.send(encoded: message.encoded())
    }

    /// Sends a message already encoded with ``AMQPMessage/encoded()`` and waits for its outcome.
    public func send(encoded bytes: [UInt8]) async throws -> AMQPOutcome {
        let waiter = Waiter<AMQPOutcome>()
        return try await waiter.wait {
            self.send(encoded: bytes) { result in waiter.resume(result.mapError { $0 }) }
        }
    }

    /// Queues a message and returns at once; `onOutcome` is called once with its outcome or the error
    /// that kept it from being settled.
    ///
    /// `onOutcome` runs on the connection's loop thread: keep it short and never block in it.
    public func send(
        _ message: AMQPMessage, onOutcome: @escaping @Sendable (Result<AMQPOutcome, AMQPError>) -> Void
    ) {
        self.send(encoded: message.encoded(), onOutcome: onOutcome)
    }

    /// Queues an encoded message; see ``send(_:onOutcome:)``.
    public func send(encoded bytes: [UInt8], onOutcome: @escaping @Sendable (Result<AMQPOutcome, AMQPError>) -> Void) {
        // Messages collect in the link's inbox; only the first one after a drain wakes the loop,
        // which then takes them all in one go.
        let box = self.box
        let mustSchedule = box.inbox.withLock { inbox -> Bool in
            inbox.items.append(SendRequest(bytes, onOutcome))
            if inbox.scheduled { return false }
            inbox.scheduled = true
            return true
        }
        guard mustSchedule else { return }
        let accepted = box.core.engine.loop.execute {
            let items = box.inbox.withLock { inbox in
                defer {
                    inbox.items = []
                    inbox.scheduled = false
                }
                return inbox.items
            }
            for item in items { box.core.enqueue(item) }
        }
        if !accepted {
            let items = box.inbox.withLock { inbox in
                defer {
                    inbox.items = []
                    inbox.scheduled = false
                }
                return inbox.items
            }
            let error = AMQPError(.connectionClosed, "the connection is closed")
            for item in items { item.completion(.failure(error)) }
        }
    }

    /// Queues many messages and waits for all their outcomes, returned in order. Throws only if
    /// the task is cancelled; per-message failures come back as results.
    public func send(contentsOf messages: [AMQPMessage]) async throws -> [Result<AMQPOutcome, AMQPError>] {
        guard !messages.isEmpty else { return [] }
        let waiter = Waiter<[Result<AMQPOutcome, AMQPError>]>()
        let collector = BatchCollector(count: messages.count, waiter: waiter)
        return try await waiter.wait {
            for (index, message) in messages.enumerated() {
                self.send(message) { result in collector.record(index, result) }
            }
        }
    }

    /// Sends every message `next` produces, pulled by the connection's loop thread whenever the link
    /// has credit and fewer than `window` deliveries await their outcome; returns once `next`
    /// returned nil and every outcome is in.
    ///
    /// This is the cheapest way to send a stream: no task, no queue and no allocation per message
    /// beyond the message itself, and the peer's credit paces the source. `next` and `onOutcome`
    /// run on the loop thread (keep them quick; never block); `onOutcome` gets each message's index
    /// (0, 1, …) with its outcome. If the link or connection fails, every unsettled message gets the
    /// error and the call throws it. Cancelling the task stops the pulling at once and the wait
    /// (messages already sent still get their outcomes). One stream per link at a time.
    public func stream(
        window: Int = 1000, next: @escaping @Sendable () -> AMQPMessage?,
        onOutcome: @escaping @Sendable (_ index: UInt64, _ result: Result<AMQPOutcome, AMQPError>) -> Void
    ) async throws {
        try await self.stream(
            window: window,
            fill: { message in
                guard let produced = next() else { return false }
                message = produced
                return true
            }, onOutcome: onOutcome)
    }

    /// Like ``stream(window:next:onOutcome:)``, but `fill` writes each message into one reused
    /// ``AMQPMessage`` (it still holds the previous message: set or clear every field you use) and
    /// returns false when there is no more. Reusing the message saves its allocation and copies,
    /// as reusing a `pn_message_t` does in C.
    public func stream(
        window: Int = 1000, fill: @escaping @Sendable (inout AMQPMessage) -> Bool,
        onOutcome: @escaping @Sendable (_ index: UInt64, _ result: Result<AMQPOutcome, AMQPError>) -> Void
    ) async throws {
        guard window > 0 else { throw AMQPError(.invalidConfiguration, "stream window must be at least 1") }
        let done = Waiter<Void>()
        let box = self.box
        let stream = SenderStream(window: window, fill: fill, onOutcome: onOutcome, done: done)
        try await withTaskCancellationHandler {
            try await done.wait {
                let accepted = box.core.engine.loop.execute { box.core.start(stream) }
                if !accepted { done.resume(.failure(AMQPError(.connectionClosed, "the connection is closed"))) }
            }
        } onCancel: {
            stream.cancel()
            // Let the loop notice now, even if no credit or outcome arrives.
            box.core.engine.loop.execute { box.core.flow() }
        }
    }

    /// Detaches the link and waits for the peer's detach. Unsettled sends fail with `.linkClosed`.
    public func close() async {
        let box = self.box
        _ = try? await self.connection.onLoop(always: true) { _, waiter in box.core.close(waiter) }
    }
}

/// Gathers the outcomes of a batch and resumes its waiter when the last one is in.
private final class BatchCollector: @unchecked Sendable {
    // @unchecked: `record` runs on the connection's loop thread only, so the fields need no lock.
    private var results: [Result<AMQPOutcome, AMQPError>?]
    private var remaining: Int
    private let waiter: Waiter<[Result<AMQPOutcome, AMQPError>]>

    init(count: Int, waiter: Waiter<[Result<AMQPOutcome, AMQPError>]>) {
        self.results = Array(repeating: nil, count: count)
        self.remaining = count
        self.waiter = waiter
    }

    func record(_ index: Int, _ result: Result<AMQPOutcome, AMQPError>) {
        self.results[index] = result
        self.remaining -= 1
        if self.remaining == 0 { self.waiter.resume(.success(self.results.map { $0! })) }
    }
}
