// Hubcast — configuration of an AMQP listener.

/// The SASL mechanisms a listener offers.
public struct AMQPServerSASL: Sendable {
    /// Mechanism names offered, in order of preference. ANONYMOUS-like names (any but PLAIN) let the
    /// client in without credentials.
    public var mechanisms: [String]
    /// Checks a PLAIN user name and password; nil refuses every PLAIN attempt.
    public var checkPlain: (@Sendable (_ username: String, _ password: String) -> Bool)?

    /// Offers `mechanisms`, checking PLAIN with `checkPlain`.
    public init(mechanisms: [String], checkPlain: (@Sendable (String, String) -> Bool)? = nil) {
        self.mechanisms = mechanisms
        self.checkPlain = checkPlain
    }

    /// ANONYMOUS only.
    public static let anonymous = AMQPServerSASL(mechanisms: ["ANONYMOUS"])
    /// No SASL layer: clients send the AMQP header first.
    public static let none = AMQPServerSASL(mechanisms: [])
    /// What Event Hubs offers: `MSSBCBS` (anonymous, then claims-based auth), PLAIN and ANONYMOUS.
    public static func eventHubs(checkPlain: (@Sendable (String, String) -> Bool)? = nil) -> AMQPServerSASL {
        AMQPServerSASL(mechanisms: ["MSSBCBS", "PLAIN", "ANONYMOUS"], checkPlain: checkPlain)
    }
}

/// TLS settings of a listener.
public struct AMQPServerTLS: Sendable, Hashable {
    /// The server's certificate chain (PEM).
    public var certificateFile: String
    /// The certificate's private key (PEM).
    public var keyFile: String
    /// CA certificates (PEM) that client certificates must chain to; when set, every client must
    /// present a certificate signed by one of them. Default: nil (no client certificate asked).
    public var clientCAFile: String?

    public init(certificateFile: String, keyFile: String, clientCAFile: String? = nil) {
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.clientCAFile = clientCAFile
    }
}

/// Settings of an ``AMQPListener``.
public struct AMQPListenerConfiguration: Sendable {
    /// The address to bind. Default: `127.0.0.1`.
    public var host: String
    /// The port; 0 picks a free one (read it from ``AMQPListener/port``). Default: 0.
    public var port: Int
    /// TLS, or nil for plain TCP.
    public var tls: AMQPServerTLS?
    /// The SASL mechanisms offered. Default: ANONYMOUS.
    public var sasl: AMQPServerSASL = .anonymous
    /// The container id in `open`. Default: `hubcast-listener`.
    public var containerID = "hubcast-listener"
    /// The idle timeout announced in `open`. Default: 120 s.
    public var idleTimeout: Duration = .seconds(120)
    /// The largest frame accepted. Default: 65536.
    public var maxFrameSize: UInt32 = 65536
    /// Credit granted on each link a client attaches as sender, topped up as messages arrive.
    /// Default: 1000.
    public var creditWindow: UInt32 = 1000
    /// Logs every frame at debug level. Default: false.
    public var traceFrames = false
    /// A hook between the transport and the socket, made anew per accepted connection.
    public var byteStreamHook: AMQPByteStreamHookFactory?

    /// Settings for `host:port`.
    public init(host: String = "127.0.0.1", port: Int = 0, tls: AMQPServerTLS? = nil, sasl: AMQPServerSASL = .anonymous) {
        self.host = host
        self.port = port
        self.tls = tls
        self.sasl = sasl
    }
}
