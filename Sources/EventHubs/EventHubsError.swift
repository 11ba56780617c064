// Hubcast — errors of the Event Hubs client.

import AMQP

/// The error type of the Event Hubs client. Match on ``code``; messages never contain keys or tokens.
public struct EventHubsError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of failure this is. New codes may be added: switch with a `default`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Base: String, Hashable, Sendable {
            case invalidConnectionString = "invalid connection string"
            case invalidToken = "invalid SAS token"
            case tokenExpired = "SAS token expired"
            case unauthorized = "unauthorized"
            case notFound = "not found"
            case authorizationFailed = "authorization failed"
            case connectionFailed = "connection failed"
            case timeout = "timed out"
            case cancelled = "cancelled"
            case invalidConfiguration = "invalid configuration"
            case eventTooLarge = "event too large"
        }

        fileprivate let base: Base

        /// A connection string, or one of the separate fields, is malformed or incomplete.
        public static let invalidConnectionString = Code(base: .invalidConnectionString)
        /// A pre-made `SharedAccessSignature` cannot be read.
        public static let invalidToken = Code(base: .invalidToken)
        /// A pre-made `SharedAccessSignature` has expired (or expires too soon to be used).
        public static let tokenExpired = Code(base: .tokenExpired)
        /// The service refused the credential (wrong key, unknown rule, missing right, expired token).
        public static let unauthorized = Code(base: .unauthorized)
        /// The event hub or partition does not exist.
        public static let notFound = Code(base: .notFound)
        /// Claims-based authorization on `$cbs` failed for another reason (bad request, no answer).
        public static let authorizationFailed = Code(base: .authorizationFailed)
        /// The hub could not be reached or the connection to it was lost: refused, reset, closed,
        /// a link or session detached, the TLS handshake failed, the peer broke the protocol. ``condition``
        /// has the peer's reason when it gave one.
        public static let connectionFailed = Code(base: .connectionFailed)
        /// Something did not finish in time: the connection's open, or a send within the retry
        /// deadline.
        public static let timeout = Code(base: .timeout)
        /// The producer was closed, or the waiting task cancelled.
        public static let cancelled = Code(base: .cancelled)
        /// A setting cannot be used, such as a CA file that cannot be loaded.
        public static let invalidConfiguration = Code(base: .invalidConfiguration)
        /// The event is larger than the hub's link allows.
        public static let eventTooLarge = Code(base: .eventTooLarge)

        public var description: String { self.base.rawValue }
    }

    /// What kind of failure this is.
    public var code: Code
    /// What happened, in words; never contains a key or a token.
    public var message: String
    /// The condition the service gave, such as `amqp:link:detach-forced` or
    /// `com.microsoft:server-busy`, or nil.
    public var condition: String?
    /// The failure of the layer below (the AMQP connection), for logs and for callers who look
    /// deeper; nil when the error is the client's own.
    public var underlying: (any Error & Sendable)?

    /// Makes an error.
    public init(_ code: Code, _ message: String, condition: String? = nil, underlying: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.condition = condition
        self.underlying = underlying
    }

    /// An AMQP failure in Event Hubs' words, keeping it as ``underlying``.
    init(_ error: AMQPError) {
        let code: Code
        switch error.code {
        case .timeout: code = .timeout
        case .cancelled: code = .cancelled
        case .invalidConfiguration: code = .invalidConfiguration
        case .messageTooLarge: code = .eventTooLarge
        // SASL refused the key (PLAIN): the credential, not the network.
        case .authenticationFailed: code = .unauthorized
        default: code = .connectionFailed
        }
        var message = error.message
        if let condition = error.remoteCondition { message += " [\(condition.text)]" }
        // The peer's words are quoted: blanked of anything that looks like a credential.
        self.init(code, AMQPRedaction.redact(message), condition: error.remoteCondition?.name, underlying: error)
    }

    /// The AMQP failure this error stands for, if it is one.
    var amqp: AMQPError? { self.underlying as? AMQPError }

    public var description: String { "Event Hubs \(self.code): \(self.message)" }

    public static func == (lhs: EventHubsError, rhs: EventHubsError) -> Bool {
        lhs.code == rhs.code && lhs.message == rhs.message && lhs.condition == rhs.condition
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(self.code)
        hasher.combine(self.message)
        hasher.combine(self.condition)
    }
}

extension Error {
    /// This error in Event Hubs' words: an ``EventHubsError`` as it is, an AMQP failure wrapped,
    /// anything else (cancellation) as it is.
    var inEventHubsWords: any Error {
        if let error = self as? AMQPError { return EventHubsError(error) }
        return self
    }
}
