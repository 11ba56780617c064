// Hubcast — an AMQP 1.0 server socket.

internal import CQpidProton
#if canImport(Glibc)
import Glibc
#endif
public import Logging

/// Accepts AMQP connections on a TCP port and hands their links and messages to an
/// ``AMQPServerHandler``. One loop thread serves every accepted connection.
///
/// ```swift
/// let listener = try await AMQPListener.listen(.init(port: 0), handler: MyBroker())
/// print("listening on", listener.port)
/// ```
public final class AMQPListener: Sendable {
    let core: ListenerCore
    /// The bound port (the free port picked when the configuration said 0).
    public let port: Int
    /// The bound host.
    public let host: String

    private init(core: ListenerCore, host: String, port: Int) {
        self.core = core
        self.host = host
        self.port = port
    }

    /// Binds and starts accepting. Throws `.connectionFailed` when the address is taken and
    /// `.invalidConfiguration` when the TLS files cannot be loaded.
    public static func listen(
        _ configuration: AMQPListenerConfiguration, handler: any AMQPServerHandler,
        logger: Logger = Logger(label: "hubcast.amqp.listener")
    ) async throws -> AMQPListener {
        let domain = try configuration.tls.map(Self.serverDomain)
        let (fd, port) = try ProtonSocket.listen(host: configuration.host, port: configuration.port)
        let loop = try ProtonLoop(name: "amqp-server")
        let core = ListenerCore(
            configuration: configuration, handler: handler, loop: loop, domain: domain, fd: fd, logger: logger)
        loop.execute { loop.register(core) }
        return AMQPListener(core: core, host: configuration.host, port: port)
    }

    private static func serverDomain(_ tls: AMQPServerTLS) throws -> TLSDomain {
        let domain = pn_ssl_domain(PN_SSL_MODE_SERVER)!
        guard pn_ssl_domain_set_credentials(domain, tls.certificateFile, tls.keyFile, nil) == 0 else {
            pn_ssl_domain_free(domain)
            throw AMQPError(
                .invalidConfiguration, "cannot load TLS certificate \(tls.certificateFile) with key \(tls.keyFile)")
        }
        if let clientCA = tls.clientCAFile {
            guard pn_ssl_domain_set_trusted_ca_db(domain, clientCA) == 0,
                pn_ssl_domain_set_peer_authentication(domain, PN_SSL_VERIFY_PEER, clientCA) == 0
            else {
                pn_ssl_domain_free(domain)
                throw AMQPError(.invalidConfiguration, "cannot load client CA file \(clientCA)")
            }
        }
        return TLSDomain(domain)
    }

    deinit {
        // Dropped without `close()`: shut down anyway (without waiting).
        let core = self.core
        core.loop.execute { core.shutdown() }
    }

    /// Stops accepting, closes every connection, and waits for the loop to finish.
    public func close() async {
        let core = self.core
        core.loop.execute { core.shutdown() }
        await core.loop.waitUntilStopped()
    }
}

/// A Proton TLS domain shared by the accepted connections.
final class TLSDomain: @unchecked Sendable {
    // @unchecked: Proton reads the domain only while it sets up a transport, on the loop thread.
    let handle: OpaquePointer
    init(_ handle: OpaquePointer) { self.handle = handle }
    deinit { pn_ssl_domain_free(self.handle) }
}

/// The listening socket on the loop thread, and the connections it accepted.
final class ListenerCore: ProtonChannel, @unchecked Sendable {
    // @unchecked: everything mutable is used on `loop`'s thread only.
    let fd: Int32
    let loop: ProtonLoop
    let configuration: AMQPListenerConfiguration
    let handler: any AMQPServerHandler
    let logger: Logger
    private let domain: TLSDomain?
    private var engines: [UInt64: ServerEngine] = [:]
    private var counter: UInt64 = 0
    private var stopping = false

    init(
        configuration: AMQPListenerConfiguration, handler: any AMQPServerHandler, loop: ProtonLoop,
        domain: TLSDomain?, fd: Int32, logger: Logger
    ) {
        self.configuration = configuration
        self.handler = handler
        self.loop = loop
        self.domain = domain
        self.fd = fd
        self.logger = logger
    }

    func nextID() -> UInt64 {
        self.counter += 1
        return self.counter
    }

    func handleIO(readable: Bool, writable: Bool, hangup: Bool) {
        while !self.stopping {
            let client = accept(self.fd, nil, nil)
            guard client >= 0 else {
                if errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM {
                    self.logger.warning("cannot accept connections: \(ProtonLoop.errnoText()); pausing for 100 ms")
                    self.loop.pause(self, milliseconds: 100)
                }
                return
            }
            _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK)
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            ProtonSocket.setNoDelay(client)
            self.adopt(client)
        }
    }

    func service(now: Int64) -> Int64? { nil }

    private func adopt(_ fd: Int32) {
        let config = self.configuration
        let connection = pn_connection()!
        let transport = pn_transport()!
        pn_transport_set_server(transport)
        pn_transport_set_idle_timeout(transport, pn_millis_t(clamping: config.idleTimeout.milliseconds))
        pn_transport_set_max_frame(transport, config.maxFrameSize)
        if let domain = self.domain { pn_ssl_init(pn_ssl(transport), domain.handle, nil) }
        if !config.sasl.mechanisms.isEmpty {
            ProtonSASLContext(server: config.sasl.mechanisms, checkPlain: config.sasl.checkPlain).install(on: transport)
            pn_sasl_allowed_mechs(pn_sasl(transport), config.sasl.mechanisms.joined(separator: " "))
            pn_sasl_set_allow_insecure_mechs(pn_sasl(transport), true)
            pn_transport_require_auth(transport, true)
        }
        let id = self.nextID()
        let server = AMQPServerConnection(id: id, loop: self.loop)
        let engine = ServerEngine(connection: server, listener: self)
        server.engine = engine
        var logger = self.logger
        logger[metadataKey: "amqp.connection"] = "\(id)"
        engine.channel = ProtonTransportChannel(
            fd: fd, loop: self.loop, connection: connection, transport: transport, engine: engine,
            hook: config.byteStreamHook?(), connecting: false, trace: config.traceFrames, logger: logger)
        self.engines[id] = engine
    }

    func connectionGone(_ id: UInt64) {
        self.engines[id] = nil
        if self.stopping && self.engines.isEmpty { self.loop.stop() }
    }

    /// Stops accepting and closes every connection; the loop stops when the last one is gone.
    func shutdown() {
        guard !self.stopping else { return }
        self.stopping = true
        self.loop.deregister(self)
        if self.engines.isEmpty {
            self.loop.stop()
            return
        }
        for engine in self.engines.values {
            engine.close(condition: AMQPCondition(name: AMQPCondition.connectionForced, description: "listener closing"))
        }
        self.loop.schedule(afterMilliseconds: 2000) { [self] in
            for engine in self.engines.values { engine.channel?.abort() }
            self.loop.stop()
        }
    }
}
