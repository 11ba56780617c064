// Hubcast — what the connector is doing: live counters and the status snapshot.

import Foundation
import Synchronization

/// A snapshot of a connector, written to the store every second while it runs and read by
/// `hubcast status`.
public struct ConnectorStatus: Sendable, Codable, Hashable {
    /// A destination's connection as its dispatcher last saw it; prints as `idle`, `connected`,
    /// `throttled`, `down: <reason>` or `failed: <reason>`.
    public struct Connection: Sendable, Codable, Hashable, CustomStringConvertible {
        public enum KindTag {}
        /// The kind of state. New kinds may be added: compare with the static members.
        public typealias Kind = StatusName<KindTag>

        public var kind: Kind
        /// Why it is down or failed.
        public var reason: String?

        public init(_ kind: Kind, reason: String? = nil) {
            self.kind = kind
            self.reason = reason
        }

        public var description: String { reason.map { "\(kind): \($0)" } ?? kind.description }
    }

    /// Per destination: its connection, how much it keeps in flight and how fast it sends.
    public struct Destination: Sendable, Codable, Hashable {
        /// The connection as the dispatcher last saw it.
        public var connection = Connection(.idle)
        /// The most events awaiting their outcome (the configured window).
        public var window = 0
        /// Events awaiting their outcome.
        public var inFlight = 0
        /// The most events that awaited their outcome at once.
        public var peakInFlight = 0
        /// `server-busy` answers so far.
        public var throttled = 0
        /// Outages: times the hub stopped being reachable (within the retry deadline), each counted once.
        public var outages = 0
        /// Whether the hub throttles now (it answered `server-busy` in the last 10 seconds). Nil in
        /// snapshots of builds before it was kept.
        public var throttling: Bool?
        /// The send rate the dispatcher allows itself while the hub throttles, in events per second;
        /// nil when it sends as fast as the window allows.
        public var sendRateLimit: Double?
        /// Events sent per second, over the last half second measured.
        public var sendRate: Double?
        /// `server-busy` answers in the last minute.
        public var rejectionsLastMinute: Int?
        /// Throttled exports waiting out the hub's delay before they are sent again.
        public var held: Int?
    }

    /// Per dataflow, this run.
    public struct Dataflow: Sendable, Codable, Hashable {
        public var counters = DeliveryCounters()
        /// From the commit of the update that made the export (with the export, in the outbox) to
        /// its acknowledgement, in milliseconds; for a redriven export, from the redrive; for one an
        /// earlier run left in the outbox, from that run's commit.
        public var latencyP50: Double?
        public var latencyP95: Double?
        public var latencyP99: Double?
        /// Exports waiting in the outbox.
        public var outbox = 0
    }

    /// Backfill of one dataflow (docs/exports.md#backfill).
    public struct Backfill: Sendable, Codable, Hashable {
        public var done = 0
        public var total = 0
    }

    public enum RunStateTag {}
    /// What the connector as a whole is doing: `running`, `draining` or `stopped`.
    public typealias RunState = StatusName<RunStateTag>

    public var pid: Int32 = ProcessInfo.processInfo.processIdentifier
    public var state = RunState.running
    public var startedAt: Double = Date().timeIntervalSince1970
    public var updatedAt: Double = Date().timeIntervalSince1970
    public var updatesRead = 0
    public var updatesApplied = 0
    public var updatesRejected = 0
    /// Times intake paused because the outbox was full.
    public var intakePauses = 0
    /// Exports waiting in the outbox, all dataflows.
    public var outboxDepth = 0
    /// The most exports that waited in the outbox at once, this run.
    public var outboxPeak = 0
    /// Alerts raised this run (they are logged at error level).
    public var alerts = 0
    public var backfill: [String: Backfill] = [:]
    public var destinations: [String: Destination] = [:]
    public var dataflows: [String: Dataflow] = [:]

    public init() {}
}

/// A state's name, from a set that may grow (compare with the static members), stored and printed
/// as a plain string; `Tag` keeps the sets apart (``ConnectorStatus/Connection/Kind``,
/// ``ConnectorStatus/RunState``).
public struct StatusName<Tag>: Sendable, Codable, Hashable, CustomStringConvertible {
    fileprivate let name: String

    fileprivate init(_ name: String) { self.name = name }
    public init(from decoder: any Decoder) throws { name = try decoder.singleValueContainer().decode(String.self) }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(name)
    }
    public var description: String { name }
}

extension StatusName where Tag == ConnectorStatus.Connection.KindTag {
    /// Nothing sent yet.
    public static var idle: Self { Self("idle") }
    /// The hub accepts what is sent.
    public static var connected: Self { Self("connected") }
    /// The hub answered `server-busy` in the last 10 seconds.
    public static var throttled: Self { Self("throttled") }
    /// The hub could not be reached within the retry deadline; the dispatcher tries again.
    public static var down: Self { Self("down") }
    /// The hub refused the destination for good (credentials, unknown hub); the run stops.
    public static var failed: Self { Self("failed") }
}

extension StatusName where Tag == ConnectorStatus.RunStateTag {
    /// Reading input and sending.
    public static var running: Self { Self("running") }
    /// Stopping: intake stopped, in-flight sends settling (`--drain-timeout`).
    public static var draining: Self { Self("draining") }
    /// Done; what was not sent waits in the outbox.
    public static var stopped: Self { Self("stopped") }
}

/// The live state the intake, the dispatchers and the status writer share.
final class LiveStats: Sendable {
    private struct State {
        var status = ConnectorStatus()
        var latency: [String: LatencyHistogram] = [:]
    }

    private let state = Mutex(State())

    func update(_ body: (inout ConnectorStatus) -> Void) {
        state.withLock { body(&$0.status) }
    }

    func recordLatency(dataflow: String, seconds: Double) {
        state.withLock { $0.latency[dataflow, default: .init()].record(seconds: seconds) }
    }

    var snapshot: ConnectorStatus {
        state.withLock { state in
            var status = state.status
            status.updatedAt = Date().timeIntervalSince1970
            for (dataflow, histogram) in state.latency {
                status.dataflows[dataflow, default: .init()].latencyP50 = histogram.percentile(0.50).map { $0 * 1000 }
                status.dataflows[dataflow, default: .init()].latencyP95 = histogram.percentile(0.95).map { $0 * 1000 }
                status.dataflows[dataflow, default: .init()].latencyP99 = histogram.percentile(0.99).map { $0 * 1000 }
            }
            return status
        }
    }
}

/// The outbox's depth, which intake waits on: it pauses at the limit until dispatchers settle some.
final class OutboxGate: @unchecked Sendable {
    // @unchecked: every field is read and written under `condition`.
    private let condition = NSCondition()
    private var depth = 0
    private var stopping = false

    init(depth: Int) { self.depth = depth }

    var current: Int {
        condition.lock()
        defer { condition.unlock() }
        return depth
    }

    func add(_ count: Int) {
        condition.lock()
        depth += count
        condition.unlock()
    }

    func remove(_ count: Int) {
        condition.lock()
        depth -= count
        condition.broadcast()
        condition.unlock()
    }

    /// Wakes every waiter for good.
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    /// Blocks (intake's own thread) while `limit` or more exports wait; true when it had to wait.
    func waitForRoom(limit: Int) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        var waited = false
        while depth >= limit && !stopping {
            waited = true
            condition.wait()
        }
        return waited
    }
}
