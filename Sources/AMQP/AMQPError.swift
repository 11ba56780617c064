// Hubcast — errors of the AMQP module.

/// An AMQP error condition as carried in `close`, `detach`, `end` and `rejected` (AMQP 1.0 §2.8.14).
public struct AMQPCondition: Hashable, Sendable {
    /// The condition's symbolic name, such as `amqp:unauthorized-access` or `com.microsoft:server-busy`.
    public var name: String
    /// A human-readable description, if the peer sent one.
    public var description: String?
    /// Extra information: a map with symbol keys, if the peer sent one.
    public var info: AMQPValue?

    /// Makes a condition.
    public init(name: String, description: String? = nil, info: AMQPValue? = nil) {
        self.name = name
        self.description = description
        self.info = info
    }

    /// The name with the description, for messages and logs.
    public var text: String {
        if let description, !description.isEmpty { return "\(self.name): \(description)" }
        return self.name
    }

    public static let internalError = "amqp:internal-error"
    public static let notFound = "amqp:not-found"
    public static let unauthorizedAccess = "amqp:unauthorized-access"
    public static let decodeError = "amqp:decode-error"
    public static let resourceLimitExceeded = "amqp:resource-limit-exceeded"
    public static let notAllowed = "amqp:not-allowed"
    public static let invalidField = "amqp:invalid-field"
    public static let notImplemented = "amqp:not-implemented"
    public static let connectionForced = "amqp:connection:forced"
    public static let detachForced = "amqp:link:detach-forced"
    public static let messageSizeExceeded = "amqp:link:message-size-exceeded"
    public static let linkStolen = "amqp:link:stolen"
}

/// The error type of the AMQP module.
///
/// Match on ``code``; read ``remoteCondition`` for what the peer said when it closed a link, a
/// session or the connection. New codes may be added: switch with a `default`.
public struct AMQPError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of failure this is.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Base: String, Hashable, Sendable {
            case connectionRefused = "connection refused"
            case connectionFailed = "connection failed"
            case tlsFailed = "TLS failed"
            case authenticationFailed = "authentication failed"
            case connectionClosed = "connection closed"
            case sessionClosed = "session closed"
            case linkClosed = "link closed"
            case messageTooLarge = "message too large"
            case decodingFailed = "decoding failed"
            case invalidConfiguration = "invalid configuration"
            case protocolViolation = "protocol violation"
            case cancelled = "cancelled"
            case timeout = "timed out"
        }

        fileprivate let base: Base

        /// Nothing listens at the address (the TCP connection was refused).
        public static let connectionRefused = Code(base: .connectionRefused)
        /// The connection could not be made or was lost (name resolution, network, reset).
        public static let connectionFailed = Code(base: .connectionFailed)
        /// The TLS handshake failed: untrusted certificate, wrong host name, bad key.
        public static let tlsFailed = Code(base: .tlsFailed)
        /// SASL authentication failed or no mechanism matched.
        public static let authenticationFailed = Code(base: .authenticationFailed)
        /// The connection is closed, by the peer (see ``AMQPError/remoteCondition``) or locally.
        public static let connectionClosed = Code(base: .connectionClosed)
        /// The session ended.
        public static let sessionClosed = Code(base: .sessionClosed)
        /// The link is detached, by the peer (see ``AMQPError/remoteCondition``) or locally.
        public static let linkClosed = Code(base: .linkClosed)
        /// The message is larger than the peer's max-message-size on the link.
        public static let messageTooLarge = Code(base: .messageTooLarge)
        /// Bytes could not be decoded as AMQP.
        public static let decodingFailed = Code(base: .decodingFailed)
        /// A configuration value is wrong.
        public static let invalidConfiguration = Code(base: .invalidConfiguration)
        /// The peer broke the protocol.
        public static let protocolViolation = Code(base: .protocolViolation)
        /// The waiting task was cancelled.
        public static let cancelled = Code(base: .cancelled)
        /// An operation did not finish in time.
        public static let timeout = Code(base: .timeout)

        public var description: String { self.base.rawValue }
    }

    /// What kind of failure this is.
    public var code: Code
    /// What happened, in words (never contains secrets).
    public var message: String
    /// The condition the peer sent with its close, detach or end, if any.
    public var remoteCondition: AMQPCondition?

    /// Makes an error.
    public init(_ code: Code, _ message: String, remoteCondition: AMQPCondition? = nil) {
        self.code = code
        self.message = message
        self.remoteCondition = remoteCondition
    }

    public var description: String {
        var text = "AMQP \(self.code): \(self.message)"
        if let condition = self.remoteCondition { text += " [\(condition.text)]" }
        return text
    }
}
