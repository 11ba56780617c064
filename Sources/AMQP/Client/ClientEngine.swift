// Hubcast — the loop-side state of one client connection.

internal import CQpidProton
import Logging

/// Everything of a client connection that lives on its loop thread: the Proton connection, its
/// sessions and links, and the waiters of the public API. Only the loop thread touches it.
final class ClientEngine: ProtonEngine, @unchecked Sendable {
    // @unchecked: all mutable state is used on `loop`'s thread only (public methods hop there).
    let loop: ProtonLoop
    let configuration: AMQPConnectionConfiguration
    var logger: Logger
    private(set) var channel: ProtonTransportChannel?
    private var openWaiter: Waiter<AMQPConnection.PeerInfo>?
    private var closeWaiters: [Waiter<Void>] = []
    /// Set once the connection can no longer be used; every later request fails with it.
    private(set) var failure: AMQPError?
    private var socketError: AMQPError?
    private var closingLocally = false
    var links: [OpaquePointer: LinkCore] = [:]
    var sessions: [OpaquePointer: SessionCore] = [:]
    private(set) var defaultSession: SessionCore?
    private var linkCounter = 0
    /// The public connection object is gone: stop the loop once the socket is closed.
    private var ownerGone = false

    init(configuration: AMQPConnectionConfiguration, loop: ProtonLoop, logger: Logger) {
        self.configuration = configuration
        self.loop = loop
        self.logger = logger
        self.logger[metadataKey: "amqp.connection"] = "\(configuration.containerID)"
    }

    /// Opens the socket and the connection; the waiter gets the peer's `open`. Loop thread.
    func start(_ waiter: Waiter<AMQPConnection.PeerInfo>) {
        self.loop.assertInLoop("ClientEngine.start")
        self.openWaiter = waiter
        let config = self.configuration
        let fd: Int32
        let fallbacks: [ProtonSocket.Address]
        let domain: OpaquePointer?
        do {
            // TLS files are checked before any socket: a wrong path is the user's to fix, not the hub's.
            domain = try config.tls.map { try Self.clientDomain($0) }
            (fd, fallbacks) = try ProtonSocket.connect(
                ProtonSocket.resolve(host: config.host, port: config.port), host: config.host, port: config.port)
        } catch {
            self.openWaiter = nil
            waiter.resume(.failure(error))
            self.loop.stop()
            return
        }
        defer { domain.map { pn_ssl_domain_free($0) } }
        let connection = pn_connection()!
        let transport = pn_transport()!
        pn_connection_set_container(connection, config.containerID)
        pn_connection_set_hostname(connection, config.virtualHost ?? config.host)
        ProtonData.write(config.properties, to: pn_connection_properties(connection))
        pn_transport_set_idle_timeout(transport, pn_millis_t(clamping: config.idleTimeout.milliseconds))
        pn_transport_set_max_frame(transport, config.maxFrameSize)
        if let tls = config.tls, let domain {
            let ssl = pn_ssl(transport)
            pn_ssl_init(ssl, domain, nil)
            pn_ssl_set_peer_hostname(ssl, tls.serverName ?? config.host)
        }
        switch config.sasl.kind {
        case .none:
            break
        case .anonymous(let mechanism):
            ProtonSASLContext(client: mechanism, response: Array("anonymous".utf8)).install(on: transport)
            pn_sasl_allowed_mechs(pn_sasl(transport), mechanism)
        case .plain(let username, let password):
            let response = [0] + Array(username.utf8) + [0] + Array(password.utf8)
            ProtonSASLContext(client: "PLAIN", response: response).install(on: transport)
            pn_sasl_allowed_mechs(pn_sasl(transport), "PLAIN")
            pn_sasl_set_allow_insecure_mechs(pn_sasl(transport), true)
        }
        let channel = ProtonTransportChannel(
            fd: fd, loop: self.loop, connection: connection, transport: transport, engine: self,
            hook:
                config.byteStreamHook?(), connecting: true, trace: config.traceFrames, logger: self.logger)
        channel.peerName = config.host
        channel.peerPort = config.port
        channel.fallbackAddresses = fallbacks
        self.channel = channel
        pn_connection_open(connection)
        self.defaultSession = self.makeSession()
        self.loop.schedule(afterMilliseconds: config.openTimeout.milliseconds) { [weak self] in
            guard let self, self.openWaiter != nil else { return }
            self.fail(AMQPError(.timeout, "no AMQP open from \(config.host):\(config.port) within \(config.openTimeout)"))
        }
    }

    /// Proton's TLS settings for `tls`. Throws naming the CA, certificate or key file it cannot
    /// load (missing, unreadable or not PEM): Proton would otherwise go on without it and the
    /// handshake fail later with a message that does not name the file.
    private static func clientDomain(_ tls: AMQPTLSConfiguration) throws(AMQPError) -> OpaquePointer {
        let domain = pn_ssl_domain(PN_SSL_MODE_CLIENT)!
        if let ca = tls.trustedCAFile, pn_ssl_domain_set_trusted_ca_db(domain, ca) != 0 {
            pn_ssl_domain_free(domain)
            throw AMQPError(.invalidConfiguration, "cannot load the trusted CA file \(ca) (missing, unreadable or not PEM)")
        }
        if let certificate = tls.certificateFile, let key = tls.keyFile,
            pn_ssl_domain_set_credentials(domain, certificate, key, nil) != 0
        {
            pn_ssl_domain_free(domain)
            throw AMQPError(.invalidConfiguration, "cannot load TLS certificate \(certificate) with key \(key)")
        }
        let mode = tls.verifyPeerName ? PN_SSL_VERIFY_PEER_NAME : PN_SSL_ANONYMOUS_PEER
        guard pn_ssl_domain_set_peer_authentication(domain, mode, tls.trustedCAFile) == 0 else {
            pn_ssl_domain_free(domain)
            throw AMQPError(.invalidConfiguration, "cannot set up TLS peer verification")
        }
        return domain
    }

    /// The error a request gets when the connection is unusable, or nil.
    var unusable: AMQPError? {
        if let failure = self.failure { return failure }
        if self.closingLocally { return AMQPError(.connectionClosed, "the connection was closed locally") }
        return nil
    }

    /// Creates and begins a session. Loop thread; the connection must be usable.
    func makeSession() -> SessionCore {
        self.loop.assertInLoop("ClientEngine.makeSession")
        let session = SessionCore(engine: self, session: pn_session(self.channel!.connection))
        pn_session_open(session.session)
        self.sessions[session.session] = session
        return session
    }

    func nextLinkName(_ kind: String) -> String {
        self.linkCounter += 1
        return "\(self.configuration.containerID)-\(kind)-\(self.linkCounter)"
    }

    // MARK: - Closing

    /// Closes the connection; waiters resume once the peer answered or the socket is gone.
    func close(_ waiter: Waiter<Void>) {
        guard let channel = self.channel, self.failure == nil else {
            waiter.resume(.success(()))
            return
        }
        self.closeWaiters.append(waiter)
        guard !self.closingLocally else { return }
        self.closingLocally = true
        pn_connection_close(channel.connection)
        self.loop.schedule(afterMilliseconds: self.configuration.closeTimeout.milliseconds) { [weak self] in
            self?.channel?.abort()
        }
    }

    /// Fails the connection with `error` and drops the socket.
    func fail(_ error: AMQPError) {
        if self.socketError == nil { self.socketError = error }
        self.channel?.fail(error)
    }

    // MARK: - Events

    func socketFailed(_ error: AMQPError) {
        if self.socketError == nil { self.socketError = error }
    }

    func handle(_ event: OpaquePointer, type: pn_event_type_t) {
        switch type {
        case PN_CONNECTION_REMOTE_OPEN:
            let connection = pn_event_connection(event)
            let info = AMQPConnection.PeerInfo(
                containerID: pn_connection_remote_container(connection).map { String(cString: $0) } ?? "",
                properties: ProtonData.readSymbolMap(pn_connection_remote_properties(connection)))
            let waiter = self.openWaiter
            self.openWaiter = nil
            waiter?.resume(.success(info))
        case PN_CONNECTION_REMOTE_CLOSE:
            let connection = pn_event_connection(event)
            let condition = ProtonData.condition(pn_connection_remote_condition(connection))
            if !self.closingLocally || condition != nil {
                self.setFailure(AMQPError(.connectionClosed, "the peer closed the connection", remoteCondition: condition))
            }
            pn_connection_close(connection)
        case PN_SESSION_REMOTE_OPEN:
            self.sessions[pn_event_session(event)]?.remoteOpened()
        case PN_SESSION_REMOTE_CLOSE:
            let session = pn_event_session(event)!
            let condition = ProtonData.condition(pn_session_remote_condition(session))
            self.sessions[session]?.remoteClosed(condition)
            pn_session_close(session)
        case PN_LINK_REMOTE_OPEN:
            LinkCore.of(pn_event_link(event))?.remoteOpened()
        case PN_LINK_REMOTE_CLOSE, PN_LINK_REMOTE_DETACH:
            let link = pn_event_link(event)!
            LinkCore.of(link)?.remoteClosed(ProtonData.condition(pn_link_remote_condition(link)))
        case PN_LINK_FLOW:
            LinkCore.of(pn_event_link(event))?.flow()
        case PN_DELIVERY:
            let delivery = pn_event_delivery(event)!
            LinkCore.of(pn_delivery_link(delivery))?.delivery(delivery)
        case PN_TRANSPORT_CLOSED:
            self.setFailure(self.transportError(pn_event_transport(event)))
        default:
            break
        }
    }

    /// Names what closed the transport: the socket, TLS, SASL, or a local close.
    private func transportError(_ transport: OpaquePointer?) -> AMQPError {
        if let socketError = self.socketError { return socketError }
        let condition = ProtonData.condition(transport.flatMap { pn_transport_condition($0) })
        let text = (condition?.description ?? "").lowercased()
        let host = "\(self.configuration.host):\(self.configuration.port)"
        if text.contains("ssl") || text.contains("tls") || text.contains("certificate") {
            return AMQPError(.tlsFailed, "TLS with \(host) failed: \(condition?.description ?? "")", remoteCondition: condition)
        }
        if condition?.name == AMQPCondition.unauthorizedAccess || text.contains("authentication")
            || text.contains("sasl")
        {
            return AMQPError(
                .authenticationFailed, "SASL \(self.configuration.sasl.mechanism ?? "") with \(host) failed: \(condition?.description ?? "")",
                remoteCondition: condition)
        }
        if text.contains("idle-timeout") {
            return AMQPError(.timeout, "\(host) sent nothing within the idle timeout (\(self.configuration.idleTimeout))", remoteCondition: condition)
        }
        if self.closingLocally && condition == nil {
            return AMQPError(.connectionClosed, "the connection was closed locally")
        }
        return AMQPError(.connectionFailed, "connection to \(host) lost: \(condition?.text ?? "socket closed")", remoteCondition: condition)
    }

    /// Records the first terminal error and fails every waiter with it.
    private func setFailure(_ error: AMQPError) {
        if self.failure == nil { self.failure = error }
        let failure = self.failure!
        if let waiter = self.openWaiter {
            self.openWaiter = nil
            waiter.resume(.failure(failure))
        }
        for session in self.sessions.values { session.connectionFailed(failure) }
        for link in self.links.values { link.connectionFailed(failure) }
    }

    func driverReleased() {
        if self.failure == nil {
            // A socket that failed before the transport was bound (refused connect) posts no
            // transport event: its error is the socket's.
            self.setFailure(self.socketError ?? AMQPError(.connectionClosed, "the connection was closed"))
        }
        // The driver is freed: the Proton links are gone, so their contexts are not touched.
        self.links = [:]
        self.sessions = [:]
        self.defaultSession = nil
        self.channel = nil
        let waiters = self.closeWaiters
        self.closeWaiters = []
        for waiter in waiters { waiter.resume(.success(())) }
        if self.ownerGone { self.loop.stop() }
    }

    /// The public connection was released: close gracefully, then stop the loop.
    func release() {
        self.ownerGone = true
        if self.channel == nil {
            self.loop.stop()
        } else {
            self.close(Waiter<Void>())
        }
    }
}
