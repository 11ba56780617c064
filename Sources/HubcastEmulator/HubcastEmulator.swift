// Hubcast — a local Event Hubs emulator on the AMQP module's server side.

import AMQP
import EventHubs
import Foundation
public import Logging
import Synchronization

/// An Event Hubs-compatible broker on loopback, for tests, demos and users without a cloud account:
/// a namespace with hubs and partitions, shared access rules with real token checks on `$cbs`, and
/// producer links to hub and partition targets.
///
/// Clients authenticate as the service allows: SASL `MSSBCBS` or `ANONYMOUS` followed by tokens on
/// `$cbs`, or SASL `PLAIN` with a rule's name as user name and its key as password, which grants the
/// rule's rights for the connection's life (no `$cbs`; this is how plain AMQP clients such as
/// Proton's C examples send).
///
/// ```swift
/// let emulator = try await HubcastEmulator.start(EmulatorConfiguration())
/// print(emulator.connectionString(eventHub: "hub"))
/// ```
public final class HubcastEmulator: Sendable {
    let core: EmulatorCore
    let listener: AMQPListener

    /// The bound port.
    public var port: Int { self.listener.port }
    /// The settings it runs with.
    public var configuration: EmulatorConfiguration { self.core.configuration }

    private init(core: EmulatorCore, listener: AMQPListener) {
        self.core = core
        self.listener = listener
    }

    /// Starts the emulator: reads back the events of its data directory, if it has one, then binds
    /// its port and serves until ``stop()``.
    ///
    /// - Throws: ``EmulatorError`` for a throughput-unit count below 1, or a data directory that
    ///   cannot be used: unreadable or damaged, in use by another emulator, or holding a hub that the
    ///   configuration lacks or gives fewer partitions. Errors of the listener as they come.
    public static func start(
        _ configuration: EmulatorConfiguration, logger: Logger = Logger(label: "hubcast.emulator")
    ) async throws -> HubcastEmulator {
        if let units = configuration.throughputUnits, units < 1 {
            throw EmulatorError(.invalidConfiguration, "throughputUnits must be at least 1; got \(units)")
        }
        if configuration.eventsPerThroughputUnit < 1 {
            throw EmulatorError(.invalidConfiguration, "eventsPerThroughputUnit must be at least 1; got \(configuration.eventsPerThroughputUnit)")
        }
        var store = EmulatorStore(configuration: configuration)
        let dataLog = try configuration.dataDirectory.map { try EmulatorDataLog.open(directory: $0, store: &store, logger: logger) }
        let core = EmulatorCore(configuration: configuration, logger: logger, store: store, dataLog: dataLog)
        var listen = AMQPListenerConfiguration(host: configuration.host, port: configuration.port, tls: configuration.tls)
        let rules = configuration.rules
        listen.sasl = .eventHubs { EmulatorCore.checkPlain(rules: rules, username: $0, password: $1) }
        listen.containerID = "hubcast-emulator"
        listen.idleTimeout = .seconds(240)
        listen.creditWindow = configuration.creditWindow
        // The hook sees the bytes under TLS, so it can only rewrite frames on plain connections.
        if configuration.padPerformatives && configuration.tls == nil {
            listen.byteStreamHook = { PerformativePadding() }
        }
        let listener = try await AMQPListener.listen(listen, handler: core, logger: logger)
        return HubcastEmulator(core: core, listener: listener)
    }

    /// A connection string for this emulator with the first rule (or `rule`), for `eventHub`.
    public func connectionString(eventHub: String? = nil, rule: String? = nil) -> String {
        let chosen = self.configuration.rules.first { $0.name == rule } ?? self.configuration.rules.first
        var text = "Endpoint=sb://\(self.configuration.namespace):\(self.port);"
        if let chosen { text += "SharedAccessKeyName=\(chosen.name);SharedAccessKey=\(chosen.key);" }
        if let eventHub { text += "EntityPath=\(eventHub);" }
        return text + "UseDevelopmentEmulator=true"
    }

    /// The events a partition holds now, oldest first.
    public func events(hub: String, partition: Int) -> [EmulatedEvent] {
        self.core.state.withLock { $0.store.hubs[hub]?[safe: partition]?.events ?? [] }
    }

    /// Every event of a hub, partition by partition.
    public func events(hub: String) -> [[EmulatedEvent]] {
        self.core.state.withLock { ($0.store.hubs[hub] ?? []).map(\.events) }
    }

    /// The faults injected now; setting them applies to the events that arrive from then on (the
    /// seed is not reset). Starts as ``EmulatorConfiguration/faults``.
    public var faults: EmulatorConfiguration.Faults {
        get { self.core.state.withLock { $0.faults } }
        set { self.core.state.withLock { $0.faults = newValue } }
    }

    /// How many faults were injected so far.
    public var faultCounts: EmulatorFaultCounts { self.core.state.withLock { $0.faultCounts } }

    /// The namespace's ingress quota in throughput units, or nil for none; setting it applies from
    /// the next event, with both buckets full at the new size (setting the same value again changes
    /// nothing). Starts as ``EmulatorConfiguration/throughputUnits``.
    ///
    /// - Important: A value below 1 is a programming error and traps.
    public var throughputUnits: Int? {
        get { self.core.state.withLock { $0.quota?.throughputUnits } }
        set {
            precondition((newValue ?? 1) >= 1, "throughputUnits must be at least 1")
            let now = ContinuousClock.now
            let eventsPerUnit = self.core.configuration.eventsPerThroughputUnit
            self.core.state.withLock { state in
                guard state.quota?.throughputUnits != newValue else { return }
                state.quota = newValue.map { IngressQuota(throughputUnits: $0, eventsPerUnit: eventsPerUnit, now: now) }
            }
        }
    }

    /// Stops accepting, closes every connection, then closes the data log (what it holds is on
    /// disk already: every write completed before its event was accepted).
    public func stop() async {
        await self.listener.close()
        // Kept, closed: an event that still arrived would be refused rather than held in memory only.
        self.core.state.withLock { $0.dataLog?.close() }
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { self.indices.contains(index) ? self[index] : nil }
}
