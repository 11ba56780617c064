// Hubcast — sessions, sender and receiver links of a client connection.

import Synchronization

/// An AMQP session: an ordered channel on a connection that carries links.
public struct AMQPSession: Sendable {
    /// The connection the session is on.
    public let connection: AMQPConnection
    /// nil: the connection's shared session.
    let box: SessionBox?

    /// Attaches a sender link to `target` and waits for the peer's attach.
    ///
    /// Throws `.linkClosed` with the peer's condition when the peer refuses the link.
    public func openSender(target: String, options: AMQPSenderOptions = .init()) async throws -> AMQPSender {
        let box: LinkBox<SenderCore> = try await self.attach { engine, session in
            let sender = SenderCore(engine: engine, session: session, target: target, options: options)
            return (sender, { LinkBox(core: sender, maxMessageSize: sender.maxMessageSize) })
        }
        return AMQPSender(connection: self.connection, box: box, target: target)
    }

    /// Attaches a receiver link from `source` and waits for the peer's attach; credit is granted at once.
    ///
    /// Throws `.linkClosed` with the peer's condition when the peer refuses the link.
    public func openReceiver(source: String, options: AMQPReceiverOptions = .init()) async throws -> AMQPReceiver {
        let box: LinkBox<ReceiverCore> = try await self.attach { engine, session in
            let receiver = ReceiverCore(engine: engine, session: session, source: source, options: options)
            return (receiver, { LinkBox(core: receiver, maxMessageSize: nil) })
        }
        return AMQPReceiver(connection: self.connection, box: box, source: source)
    }

    /// On the loop: finds the session, makes a link with `make`, opens it and waits for the peer's
    /// attach; the box is made once the link is open.
    private func attach<Core: LinkCore>(
        _ make: @escaping @Sendable (ClientEngine, SessionCore) -> (Core, () -> LinkBox<Core>)
    ) async throws -> LinkBox<Core> {
        let box = self.box
        return try await self.connection.onLoop { engine, waiter in
            guard let session = box?.core ?? engine.defaultSession else {
                waiter.resume(.failure(AMQPError(.connectionClosed, "the connection is closed")))
                return
            }
            if let failure = session.failure {
                waiter.resume(.failure(failure))
                return
            }
            let (core, makeBox) = make(engine, session)
            Self.open(core, waiter: waiter, box: makeBox)
        }
    }

    private static func open<Core: LinkCore>(
        _ core: Core, waiter: Waiter<LinkBox<Core>>, box: @escaping () -> LinkBox<Core>
    ) {
        core.open { error in
            let delivered = waiter.resume(error.map { .failure($0) } ?? .success(box()))
            // The caller gave up (cancelled) while the peer attached: detach, or the link would
            // hold credit and messages nobody can reach.
            if !delivered && error == nil { core.close(Waiter<Void>()) }
        }
    }
}

/// A link core handed across threads; only the loop thread uses `core`.
final class LinkBox<Core: LinkCore>: @unchecked Sendable {
    // @unchecked: `core` is used on the connection's loop thread only; `maxMessageSize` is immutable;
    // `inbox` is behind its mutex.
    let core: Core
    let maxMessageSize: UInt64?
    /// Messages handed over by senders and not yet taken by the loop (sender links only).
    let inbox = Mutex<(items: [SendRequest], scheduled: Bool)>(([], false))

    init(core: Core, maxMessageSize: UInt64?) {
        self.core = core
        self.maxMessageSize = maxMessageSize
    }
}
