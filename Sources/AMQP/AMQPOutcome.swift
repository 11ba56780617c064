// Hubcast — delivery outcomes (AMQP 1.0 §3.4).

/// How the receiver settled a delivery.
public enum AMQPOutcome: Hashable, Sendable {
    /// Processed.
    case accepted
    /// Invalid and not processed; the condition says why (for example `com.microsoft:server-busy`).
    indirect case rejected(AMQPCondition?)
    /// Not processed; may be sent again.
    case released
    /// Not processed; may be sent again, with the given changes.
    case modified(deliveryFailed: Bool, undeliverableHere: Bool)

    /// Whether the outcome is `accepted`.
    public var isAccepted: Bool { self == .accepted }
}
