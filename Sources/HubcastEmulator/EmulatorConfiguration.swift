// Hubcast — configuration of the local Event Hubs emulator.

public import AMQP

/// A namespace with event hubs and shared access rules, served on loopback.
public struct EmulatorConfiguration: Sendable {
    /// A shared access rule: a name, a key and the rights it grants.
    public struct Rule: Sendable, Hashable {
        /// What a rule allows.
        public struct Rights: OptionSet, Sendable, Hashable {
            public let rawValue: Int
            public init(rawValue: Int) { self.rawValue = rawValue }
            public static let send = Rights(rawValue: 1)
            public static let listen = Rights(rawValue: 2)
            public static let manage = Rights(rawValue: 4)
            public static let all: Rights = [.send, .listen, .manage]
        }

        public var name: String
        public var key: String
        public var rights: Rights

        public init(name: String, key: String, rights: Rights) {
            self.name = name
            self.key = key
            self.rights = rights
        }
    }

    /// The namespace host name clients put in `open`, tokens and audiences. Default: `localhost`.
    public var namespace = "localhost"
    /// Event hubs and their partition counts. Default: `hub` with 4 partitions.
    public var hubs: [String: Int] = ["hub": 4]
    /// Shared access rules. Default: `RootManageSharedAccessKey` with all rights and the key
    /// `SAS_KEY_VALUE`, as in Microsoft's emulator.
    public var rules: [Rule] = [Rule(name: "RootManageSharedAccessKey", key: "SAS_KEY_VALUE", rights: .all)]
    /// The address to bind. Default: `127.0.0.1`.
    public var host = "127.0.0.1"
    /// The port; 0 picks a free one. Default: 0.
    public var port = 0
    /// TLS, or nil for plain AMQP (the emulator's usual form). Default: nil.
    public var tls: AMQPServerTLS?
    /// The max-message-size announced on hub links. Default: 1 MiB, as a Standard namespace.
    public var maxMessageSize: UInt64 = 1_048_576
    /// How many events each partition keeps at least; older ones are dropped in batches once twice
    /// as many are held. Default: 100,000.
    public var retainedEventsPerPartition = 100_000
    /// Write every field of outgoing performatives, as the real service does (Microsoft's Python
    /// SDK needs it). Plain AMQP only: with TLS the frames are encrypted below the hook, so they
    /// go as Proton writes them. Default: true.
    public var padPerformatives = true
    /// Credit kept available on each producer link, topped up as events arrive. Default: 1000.
    public var creditWindow: UInt32 = 1000
    /// Faults to inject, for tests. Default: none.
    public var faults = Faults()
    /// The namespace's ingress quota in throughput units, or nil for none: each unit allows 1,000
    /// events and 1 MiB (1,048,576 bytes) per second across all hubs, with up to one second's worth
    /// in a burst, as the service's Standard tier. A delivery over either limit is rejected with
    /// `com.microsoft:server-busy` and not stored (a batch counts as its events and its bytes). At
    /// least 1; ``HubcastEmulator/throughputUnits`` changes it while the emulator runs. Default: nil.
    public var throughputUnits: Int?
    /// Events per second one throughput unit allows: 1,000 at the service. Tests lower it so that
    /// a quota is reached however slowly the machine lets a client send. At least 1. Default: 1000.
    public var eventsPerThroughputUnit = 1000
    /// A directory (created if missing) whose `events.log` keeps every event the emulator stores:
    /// each delivery is written there before it is accepted, so accepted events survive the process
    /// being killed (not a power loss: nothing is synced to disk), and an emulator started on the
    /// directory serves them again with the same sequence numbers, offsets, enqueued times and
    /// partition keys. Its hubs must include the log's with at least as many partitions. The file
    /// keeps everything; ``retainedEventsPerPartition`` limits only what is held in memory (and so
    /// what consumers can read). One emulator at a time per directory. Default: nil (memory only).
    public var dataDirectory: String?

    /// Faults the emulator injects into producer traffic, from a seeded generator (repeatable).
    public struct Faults: Sendable, Hashable {
        /// The fraction of events rejected with `com.microsoft:server-busy` (0...1). Default: 0.
        public var serverBusyFraction: Double = 0
        /// Drop the connection (no close frame) right after every N-th event accepted. Default: nil.
        public var dropConnectionEvery: Int?
        /// Detach the sender link with `amqp:link:detach-forced` after every N-th event accepted.
        public var detachLinkEvery: Int?
        /// Hold each producer event's disposition this long before settling it (the event is stored
        /// at once). Default: nil.
        public var settlementDelay: Duration?
        /// Treat every token put on `$cbs` as expiring this long after it was put, whatever its `se`
        /// says: a producer link whose tokens have lapsed is detached with `amqp:unauthorized-access`
        /// at its next event (the event is rejected with the same condition) until the client puts a
        /// fresh token. Default: nil.
        public var tokenLifetimeLimit: Duration?
        /// Stop granting credit on a producer link right after every N-th event accepted, for
        /// ``creditStallDuration``; the client stalls once it has used the credit it holds.
        /// Default: nil.
        public var creditStallEvery: Int?
        /// How long a credit stall lasts. Default: 500 ms.
        public var creditStallDuration: Duration = .milliseconds(500)
        /// Reject every N-th event with ``rejectCondition`` (nothing is stored). Default: nil.
        public var rejectEvery: Int?
        /// The condition of ``rejectEvery``'s rejections. Default: `amqp:link:message-size-exceeded`,
        /// which no retry can fix.
        public var rejectCondition = AMQPCondition.messageSizeExceeded
        /// The seed of the fault generator.
        public var seed: UInt64 = 42

        public init() {}
    }

    public init() {}
}

/// How many faults an emulator injected (see ``EmulatorConfiguration/Faults``), for tests that
/// check a fault really happened.
public struct EmulatorFaultCounts: Sendable, Hashable {
    /// Events rejected with `com.microsoft:server-busy` by ``EmulatorConfiguration/Faults/serverBusyFraction``
    /// (the quota's rejections are ``quotaRejections``).
    public var serverBusy = 0
    /// Dispositions held back by ``EmulatorConfiguration/Faults/settlementDelay``.
    public var delayedSettlements = 0
    /// Producer links detached because their tokens lapsed under
    /// ``EmulatorConfiguration/Faults/tokenLifetimeLimit``.
    public var tokenLapses = 0
    /// Credit stalls started.
    public var creditStalls = 0
    /// Stalls during which the client used up all its credit (it really had to wait).
    public var creditExhaustedWhileStalled = 0
    /// Events rejected by ``EmulatorConfiguration/Faults/rejectEvery``.
    public var rejected = 0
    /// Deliveries rejected with `com.microsoft:server-busy` because they were over the ingress
    /// quota (``EmulatorConfiguration/throughputUnits``); a batch counts once.
    public var quotaRejections = 0

    public init() {}
}
