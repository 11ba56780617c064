// Hubcast — a client AMQP connection.

public import Logging

/// A client connection to an AMQP 1.0 peer, with its own loop thread.
///
/// ```swift
/// let connection = try await AMQPConnection.connect(.init(host: "localhost", port: 5672))
/// let sender = try await connection.openSender(target: "queue")
/// let outcome = try await sender.send(AMQPMessage(text: "hello"))
/// await connection.close()
/// ```
///
/// All methods are safe from any task. Proton's objects stay on the connection's loop thread.
public final class AMQPConnection: Sendable {
    /// What the peer said in its `open`.
    public struct PeerInfo: Sendable {
        /// The peer's container id.
        public var containerID: String
        /// The peer's connection properties.
        public var properties: [(AMQPSymbol, AMQPValue)]
    }

    let engine: ClientEngine
    /// What the peer said in its `open`.
    public let peer: PeerInfo
    /// The settings the connection was made with.
    public var configuration: AMQPConnectionConfiguration { self.engine.configuration }

    private init(engine: ClientEngine, peer: PeerInfo) {
        self.engine = engine
        self.peer = peer
    }

    deinit {
        let engine = self.engine
        engine.loop.execute { engine.release() }
    }

    /// Connects, authenticates and exchanges `open` with the peer.
    ///
    /// Throws ``AMQPError`` with code `.connectionRefused` when nothing listens, `.tlsFailed` when the
    /// TLS handshake fails (untrusted certificate, wrong host name), `.authenticationFailed` when
    /// SASL fails, `.timeout` when no `open` comes within ``AMQPConnectionConfiguration/openTimeout``.
    public static func connect(
        _ configuration: AMQPConnectionConfiguration, logger: Logger = Logger(label: "hubcast.amqp")
    ) async throws -> AMQPConnection {
        try configuration.validate()
        let loop = try ProtonLoop(name: "amqp-client")
        let engine = ClientEngine(configuration: configuration, loop: loop, logger: logger)
        let waiter = Waiter<PeerInfo>()
        do {
            let peer = try await waiter.wait { loop.execute { engine.start(waiter) } }
            return AMQPConnection(engine: engine, peer: peer)
        } catch {
            loop.execute {
                engine.fail(error as? AMQPError ?? AMQPError(.cancelled, "connect was cancelled"))
                engine.release()
            }
            throw error
        }
    }

    /// Runs `body` on the loop thread with the engine; fails first if the connection is unusable
    /// (unless `always`).
    func onLoop<T: Sendable>(
        always: Bool = false, _ body: @escaping @Sendable (ClientEngine, Waiter<T>) -> Void
    ) async throws -> T {
        let waiter = Waiter<T>()
        let engine = self.engine
        return try await waiter.wait {
            let accepted = engine.loop.execute {
                if !always, let error = engine.unusable {
                    waiter.resume(.failure(error))
                } else {
                    body(engine, waiter)
                }
            }
            if !accepted { waiter.resume(.failure(AMQPError(.connectionClosed, "the connection is closed"))) }
        }
    }

    /// Begins a new session and waits for the peer's `begin`. Most users need none: links opened on
    /// the connection share one session.
    public func openSession() async throws -> AMQPSession {
        let box: SessionBox = try await self.onLoop { engine, waiter in
            let session = engine.makeSession()
            session.waitForOpen { error in
                let delivered = waiter.resume(error.map { .failure($0) } ?? .success(SessionBox(core: session)))
                if !delivered && error == nil { session.end() }
            }
        }
        return AMQPSession(connection: self, box: box)
    }

    /// Attaches a sender link to `target` on the connection's shared session.
    public func openSender(target: String, options: AMQPSenderOptions = .init()) async throws -> AMQPSender {
        try await AMQPSession(connection: self, box: nil).openSender(target: target, options: options)
    }

    /// Attaches a receiver link from `source` on the connection's shared session.
    public func openReceiver(source: String, options: AMQPReceiverOptions = .init()) async throws -> AMQPReceiver {
        try await AMQPSession(connection: self, box: nil).openReceiver(source: source, options: options)
    }

    /// Closes the connection: sends `close` and waits for the peer's (at most
    /// ``AMQPConnectionConfiguration/closeTimeout``). Pending sends fail with `.connectionClosed`.
    public func close() async {
        let waiter = Waiter<Void>()
        let engine = self.engine
        try? await waiter.wait {
            if !engine.loop.execute({ engine.close(waiter) }) { waiter.resume(.success(())) }
        }
    }

    /// The error that ended the connection, or nil while it is usable.
    public var failure: AMQPError? {
        get async {
            (try? await self.onLoop(always: true) { engine, waiter in waiter.resume(.success(engine.failure)) }) ?? nil
        }
    }
}

/// A session core handed across threads; only the loop thread reads `core`.
final class SessionBox: @unchecked Sendable {
    // @unchecked: `core` is used on the connection's loop thread only.
    let core: SessionCore
    init(core: SessionCore) { self.core = core }
}
