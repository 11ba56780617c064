// Hubcast — settings of the connector.

public import EventHubs
import ProfileExport

/// How the connector runs. The defaults suit a high-volume deployment; tests lower them.
public struct ConnectorOptions: Sendable {
    /// The most events awaiting their outcome per destination. When the hub throttles, the
    /// dispatcher limits its send rate instead (docs/throttling.md). Default: 2,000.
    public var window = 2000
    /// The most events sent in one pipelined wave (one call to the producer). Default: 500.
    public var waveSize = 500
    /// Intake pauses while this many exports wait in the outbox (committed, not yet acknowledged or
    /// failed), so a slow or stalled hub slows intake instead of filling the disk. Default: 20,000.
    public var outboxLimit = 20_000
    /// Updates applied per store batch (one commit for the profiles and their outbox rows). Default: 512.
    public var batchSize = 512
    /// Backfill exports per second (docs/exports.md#backfill), beside live traffic. Default: 1,000.
    public var backfillRate: Double = 1000
    /// On shutdown, how long in-flight sends may take to settle; the rest stays in the outbox.
    /// Default: 10 s.
    public var drainTimeout: Duration = .seconds(10)
    /// While a profile's export is in flight, keep only the latest of its waiting exports per
    /// dataflow (the others are counted as skipped). Default: false (every export is sent).
    public var coalesce = false
    /// The longest input line accepted, in bytes; a longer one is rejected (into `rejects.jsonl`,
    /// with its first bytes) without being held whole. Default: 1 MiB.
    public var maxLineBytes = LineReader.standardMaxLineBytes
    /// The size past which `rejects.jsonl` is renamed `rejects.1.jsonl` (replacing the previous
    /// one) and started again. Default: 64 MiB.
    public var maxRejectsBytes = RejectsFile.standardMaxBytes
    /// Keep reading a growing input file, and keep running once everything is settled, until stopped.
    /// Default: false.
    public var follow = false
    /// How failed sends are retried; ``EventHubsRetryPolicy/deadline`` is how long the hub may be
    /// unreachable before the dispatcher puts the events back into the outbox, raises an alert and
    /// tries again later. Default: the configuration's retries, 30-second deadline.
    public var retry: EventHubsRetryPolicy = {
        var policy = EventHubsRetryPolicy()
        policy.deadline = .seconds(30)
        return policy
    }()
    /// How long a destination may stay unreachable before the run gives up (with an error naming
    /// the last cause; its exports stay in the outbox for the next run), or nil to keep trying
    /// until stopped. A connector fed a finite file sets it so that it ends; a service keeps
    /// trying. Default: nil.
    public var giveUpAfter: Duration?
    /// Signed tokens' lifetime. Default: 1 hour.
    public var tokenLifetime: Duration = .seconds(3600)
    /// A CA file to trust for TLS (the emulator's test CA); nil uses the system store.
    public var trustedCAFile: String?
    /// Log every AMQP frame of the destinations' connections (Proton's frame trace, at debug
    /// level on the connector's logger), to see what goes over the wire. Default: false.
    public var traceFrames = false
    /// How often the status snapshot (`hubcast status`) is written to the store. Default: 1 s.
    public var statusInterval: Duration = .seconds(1)

    public init() {}

    /// Throws ``ConnectorError/Code/invalidOptions`` naming the first setting out of range.
    public func validate() throws(ConnectorError) {
        func check(_ ok: Bool, _ message: String) throws(ConnectorError) {
            if !ok { throw ConnectorError(.invalidOptions, message) }
        }
        try check((1...1_000_000).contains(window), "window must be 1...1000000, not \(window)")
        try check(waveSize >= 1, "waveSize must be at least 1, not \(waveSize)")
        try check((1...100_000_000).contains(outboxLimit), "outboxLimit must be 1...100000000, not \(outboxLimit)")
        try check((1...1_000_000).contains(batchSize), "batchSize must be 1...1000000, not \(batchSize)")
        try check(
            backfillRate.isFinite && backfillRate > 0 && backfillRate <= 10_000_000,
            "backfillRate must be above 0 and at most 10000000 per second, not \(backfillRate)")
        try check(drainTimeout >= .zero && drainTimeout <= .seconds(86_400), "drainTimeout must be 0...86400 seconds")
        try check(statusInterval > .zero, "statusInterval must be above 0")
        try check(giveUpAfter.map { $0 > .zero } ?? true, "giveUpAfter must be above 0")
        try check((1...(1 << 30)).contains(maxLineBytes), "maxLineBytes must be 1...1073741824, not \(maxLineBytes)")
        try check((1024...(1 << 40)).contains(maxRejectsBytes), "maxRejectsBytes must be 1024...1099511627776, not \(maxRejectsBytes)")
    }
}
