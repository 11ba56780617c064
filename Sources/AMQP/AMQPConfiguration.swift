// Hubcast — configuration of AMQP connections and listeners.

/// TLS settings of a client connection. TLS runs inside Proton's transport (OpenSSL).
public struct AMQPTLSConfiguration: Sendable, Hashable {
    /// A PEM file of trusted CA certificates; nil trusts the system store. Default: nil.
    public var trustedCAFile: String?
    /// Whether the server's certificate must match the host name. Default: true.
    /// Turning it off leaves the connection open to impersonation; use it only for tests.
    public var verifyPeerName: Bool = true
    /// The name sent as SNI and checked against the certificate; nil uses the connection's host.
    public var serverName: String?
    /// A client certificate (PEM) and its key, for servers that ask for one.
    public var certificateFile: String?
    public var keyFile: String?

    /// TLS with the given trust store.
    public init(trustedCAFile: String? = nil, verifyPeerName: Bool = true, serverName: String? = nil) {
        self.trustedCAFile = trustedCAFile
        self.verifyPeerName = verifyPeerName
        self.serverName = serverName
    }
}

/// The SASL mechanism a client uses.
public struct AMQPClientSASL: Sendable, Hashable, CustomStringConvertible {
    enum Kind: Hashable, Sendable {
        case none
        case anonymous(mechanism: String)
        case plain(username: String, password: String)
    }

    let kind: Kind

    /// No SASL layer: the AMQP header comes first.
    public static let none = AMQPClientSASL(kind: .none)
    /// SASL ANONYMOUS.
    public static let anonymous = AMQPClientSASL(kind: .anonymous(mechanism: "ANONYMOUS"))
    /// ANONYMOUS semantics under another mechanism name: Event Hubs clients send `MSSBCBS` and then
    /// authorise with claims-based security on `$cbs`.
    public static func anonymous(mechanism: String) -> AMQPClientSASL {
        AMQPClientSASL(kind: .anonymous(mechanism: mechanism))
    }
    /// SASL PLAIN with a user name and a password.
    public static func plain(username: String, password: String) -> AMQPClientSASL {
        AMQPClientSASL(kind: .plain(username: username, password: password))
    }

    /// The mechanism's name, or nil for no SASL.
    public var mechanism: String? {
        switch self.kind {
        case .none: return nil
        case .anonymous(let mechanism): return mechanism
        case .plain: return "PLAIN"
        }
    }

    /// Never shows the password.
    public var description: String {
        switch self.kind {
        case .none: return "no SASL"
        case .anonymous(let mechanism): return mechanism
        case .plain(let username, _): return "PLAIN(\(username), password hidden)"
        }
    }
}

/// Settings of an outgoing AMQP connection.
public struct AMQPConnectionConfiguration: Sendable {
    /// The host to connect to.
    public var host: String
    /// The TCP port. Default: 5672 (5671 when TLS is set and the port was not given).
    public var port: Int
    /// TLS, or nil for plain TCP. Default: nil.
    public var tls: AMQPTLSConfiguration?
    /// The SASL mechanism. Default: ANONYMOUS.
    public var sasl: AMQPClientSASL = .anonymous
    /// The container id in `open`. Default: a random `hubcast-…` id.
    public var containerID: String
    /// The `hostname` field of `open` (the virtual host); nil sends the TCP host. Event Hubs wants the
    /// namespace's host name here, which may differ from the TCP host when tunnelling.
    public var virtualHost: String?
    /// The idle timeout announced in `open`: the peer closes if it hears nothing for this long; Proton
    /// sends heartbeats at half the peer's timeout. Default: 60 s.
    public var idleTimeout: Duration = .seconds(60)
    /// The largest frame this side accepts. Default: 65536.
    public var maxFrameSize: UInt32 = 65536
    /// Properties in `open` (symbol keys).
    public var properties: [(AMQPSymbol, AMQPValue)] = []
    /// How long ``AMQPConnection/connect(_:logger:)`` waits for the peer's `open`. Default: 30 s.
    public var openTimeout: Duration = .seconds(30)
    /// How long `close` waits for the peer's `close` before dropping the socket. Default: 5 s.
    public var closeTimeout: Duration = .seconds(5)
    /// Logs every frame at debug level, as Proton's `PN_TRACE_FRM` does. Default: false.
    public var traceFrames: Bool = false
    /// A hook between the transport and the socket, made anew per connection. Default: none.
    public var byteStreamHook: AMQPByteStreamHookFactory?

    /// Settings for `host:port`.
    public init(host: String, port: Int? = nil, tls: AMQPTLSConfiguration? = nil, sasl: AMQPClientSASL = .anonymous) {
        self.host = host
        self.port = port ?? (tls == nil ? 5672 : 5671)
        self.tls = tls
        self.sasl = sasl
        self.containerID = "hubcast-\(UInt64.random(in: 0...UInt64.max) & 0xffff_ffff_ffff)"
    }

    /// Checks the values; throws ``AMQPError/Code/invalidConfiguration`` naming the bad one.
    public func validate() throws {
        guard !self.host.isEmpty else { throw AMQPError(.invalidConfiguration, "host is empty") }
        guard (1...65535).contains(self.port) else {
            throw AMQPError(.invalidConfiguration, "port \(self.port) is not between 1 and 65535")
        }
        guard self.maxFrameSize >= 512 else {
            throw AMQPError(.invalidConfiguration, "max frame size \(self.maxFrameSize) is below AMQP's minimum of 512")
        }
        guard self.idleTimeout >= .zero, self.openTimeout > .zero, self.closeTimeout >= .zero else {
            throw AMQPError(.invalidConfiguration, "timeouts must not be negative")
        }
    }
}

extension Duration {
    /// Whole milliseconds, rounded down, at least 0.
    var milliseconds: Int64 {
        let (seconds, attoseconds) = self.components
        guard seconds >= 0 else { return 0 }
        // Clamp to about 292 million years rather than overflow.
        guard seconds < Int64.max / 1000 - 1 else { return Int64.max / 4 }
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}

/// How a link settles its deliveries.
public enum AMQPSenderSettleMode: UInt8, Sendable {
    /// The sender sends every delivery unsettled and waits for the receiver's outcome.
    case unsettled = 0
    /// The sender sends every delivery settled ("fire and forget"); outcomes are always `accepted`.
    case settled = 1
    /// Either.
    case mixed = 2
}

/// Options of a sender link.
public struct AMQPSenderOptions: Sendable {
    /// The link name. Default: a unique name.
    public var name: String?
    /// How deliveries are settled. Default: `.unsettled`.
    public var settleMode: AMQPSenderSettleMode = .unsettled
    /// Properties in `attach` (symbol keys), such as `com.microsoft:client-version`.
    public var properties: [(AMQPSymbol, AMQPValue)] = []
    /// The source address this side announces. Default: none.
    public var sourceAddress: String?

    public init(name: String? = nil, settleMode: AMQPSenderSettleMode = .unsettled) {
        self.name = name
        self.settleMode = settleMode
    }
}

/// Options of a receiver link.
public struct AMQPReceiverOptions: Sendable {
    /// The link name. Default: a unique name.
    public var name: String?
    /// How many deliveries may wait unconsumed: the credit granted and topped up as the
    /// consumer takes deliveries. Default: 500.
    public var creditWindow: UInt32 = 500
    /// Properties in `attach` (symbol keys), such as `com.microsoft:epoch`.
    public var properties: [(AMQPSymbol, AMQPValue)] = []
    /// Filters of the source (symbol keys, usually described values), such as Event Hubs' selector.
    public var filter: [(AMQPSymbol, AMQPValue)] = []
    /// The target address this side announces. Default: none.
    public var targetAddress: String?
    /// The largest message accepted, announced in the attach; a larger one detaches the link with
    /// `amqp:link:message-size-exceeded`. Default: nil (256 MiB).
    public var maxMessageSize: UInt64?

    public init(name: String? = nil, creditWindow: UInt32 = 500) {
        self.name = name
        self.creditWindow = creditWindow
    }
}
