// Hubcast — a sender link.

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
        let core = self.box
        return try await waiter.wait {
            core.core.engine.loop.execute {
                core.core.enqueue(bytes) { result in waiter.resume(result.mapError { $0 }) }
            }
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
        let core = self.box
        core.core.engine.loop.execute { core.core.enqueue(bytes, onOutcome) }
    }

    /// Queues many messages in one hand-over to the loop and waits for all their outcomes, in order.
    /// Throws only if the task is cancelled; per-message failures come back as results.
    public func send(contentsOf messages: [AMQPMessage]) async throws -> [Result<AMQPOutcome, AMQPError>] {
        let encoded = messages.map { $0.encoded() }
        let waiter = Waiter<[Result<AMQPOutcome, AMQPError>]>()
        let core = self.box
        return try await waiter.wait {
            core.core.engine.loop.execute {
                var results = [Result<AMQPOutcome, AMQPError>?](repeating: nil, count: encoded.count)
                var remaining = encoded.count
                if remaining == 0 {
                    waiter.resume(.success([]))
                    return
                }
                for (index, bytes) in encoded.enumerated() {
                    core.core.enqueue(bytes) { result in
                        results[index] = result
                        remaining -= 1
                        if remaining == 0 { waiter.resume(.success(results.map { $0! })) }
                    }
                }
            }
        }
    }

    /// Detaches the link and waits for the peer's detach. Unsettled sends fail with `.linkClosed`.
    public func close() async {
        let box = self.box
        _ = try? await self.connection.onLoop(always: true) { _, waiter in box.core.close(waiter) }
    }
}
