// Hubcast — settings of the Event Hubs clients: what they share, and the producer's own.

/// What every client of a namespace shares — the producer, the consumer and the management
/// reads: how tokens are made and renewed, which CA to trust, frame tracing, and how failures are
/// retried.
public struct EventHubsClientOptions: Sendable {
    /// How long signed tokens live. Default: 1 hour.
    public var tokenLifetime: Duration = .seconds(3600)
    /// How long before expiry a token is put again. Default (nil): 10 % of the lifetime, but at
    /// least 10 minutes (at most half the lifetime), with up to 10 % of jitter earlier.
    public var tokenRefreshMargin: Duration?
    /// A CA file to trust for TLS (for example the emulator's test CA); nil uses the system store.
    public var trustedCAFile: String?
    /// Logs every AMQP frame at debug level. Default: false.
    public var traceFrames = false
    /// How failures are retried. Default: 2 retries, 4 s after server-busy, 10-minute deadline.
    public var retry = EventHubsRetryPolicy()

    public init() {}
}

/// Settings of an ``EventHubsProducer``: the client's (``client``) and the producer's own.
public struct EventHubsProducerOptions: Sendable {
    /// Tokens, TLS, tracing and retries, as every client of the namespace has them.
    public var client = EventHubsClientOptions()
    /// Keep the order of events that share a partition key, even across retries: only one event
    /// per key is in flight at a time, so a retried event is never overtaken by a later one of the
    /// same key. Events without a key are not ordered. Default: false.
    public var preserveKeyOrder = false
    /// Told each time the hub answers an event of ``EventHubsProducer/send(contentsOf:partition:onSettled:)``
    /// with `com.microsoft:server-busy` (the producer waits and sends it again; a connector can
    /// also lower how much it keeps in flight). Default: nil.
    public var onThrottled: (@Sendable () -> Void)?
    /// Whether ``EventHubsProducer/send(contentsOf:partition:onSettled:onThrottled:)`` waits out a
    /// `com.microsoft:server-busy` answer (at least ``EventHubsRetryPolicy/serverBusyDelay``) and
    /// sends the event again. When false, the answer is the event's final result at once, so that a
    /// caller that schedules its own retries can free what the event holds and keep sending other
    /// events meanwhile (the connector's dispatcher does; see
    /// ``EventHubsRetryPolicy/isThrottled(_:)``). Default: true.
    public var waitsWhenThrottled = true

    public init() {}
}
