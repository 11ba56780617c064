// Hubcast — the connector: profile updates in, acknowledged Event Hubs deliveries out.

import EventHubs
import Foundation
public import Logging
public import ProfileExport

/// What a connector run did.
public struct ConnectorReport: Sendable {
    /// The input's updates: read, applied, rejected, exports per dataflow.
    public var intake = RunSummary()
    /// Audience uploads applied at the start.
    public var uploads: [UploadReport] = []
    /// The final status: per-dataflow counters of this run, latencies, destinations.
    public var status = ConnectorStatus()
    /// Exports left in the outbox (sent by the next run), per dataflow.
    public var outbox: [String: Int] = [:]
}

/// Hubcast's main job (docs/exports.md, docs/delivery.md): applies profile updates to the durable store, commits the
/// exports they cause to the outbox in the same transaction, and sends each destination's outbox to
/// its event hub; an export leaves the outbox only when the hub accepted it, or moves to the failed
/// exports after its retries. Nothing committed is lost: after a crash the next run sends what the
/// outbox holds, and a file input resumes after its last committed line.
///
/// ```swift
/// let connector = try Connector(configuration: ExportConfiguration.load(file: "hubcast.yaml"))
/// let report = try await connector.run(input: "updates.jsonl")
/// ```
/// Call ``stop()`` (for example on SIGTERM) to stop intake, let in-flight sends settle for up to
/// ``ConnectorOptions/drainTimeout`` and return; what is not settled stays in the outbox.
public final class Connector: Sendable {
    public let configuration: ExportConfiguration
    public let options: ConnectorOptions
    private let logger: Logger
    private let control: ConnectorControl
    private let gate = OutboxGate(depth: 0)
    private let live = LiveStats()

    /// A connector for `configuration`'s dataflows. `options.retry.maxRetries` is taken from the
    /// configuration's `retry.retries`.
    public init(
        configuration: ExportConfiguration, options: ConnectorOptions = .init(),
        logger: Logger = Logger(label: "hubcast.connector")
    ) {
        self.configuration = configuration
        var options = options
        options.retry.maxRetries = configuration.retry.retries
        self.options = options
        self.logger = logger
        self.control = ConnectorControl(follow: options.follow)
    }

    /// Stops intake and lets in-flight sends settle; ``run(input:)`` then returns.
    public func stop() {
        control.stop()
        gate.stop()
    }

    /// What the connector is doing now.
    public var status: ConnectorStatus { live.snapshot }

    /// Runs the connector: applies changed uploads, streams the backfill of newly mapped audiences,
    /// applies `input` (a JSON-lines file, or `-` for stdin; nil for none) and sends everything to
    /// the destinations. Returns once the input is consumed and every export is settled (acknowledged
    /// or failed), or, with ``ConnectorOptions/follow`` or without input, once ``stop()`` is called.
    /// Throws when the store fails or a destination cannot be used at all (its exports stay in the
    /// outbox).
    public func run(input: String?) async throws(ConnectorError) -> ConnectorReport {
        try options.validate()
        // The input is opened first: one that cannot be read changes nothing in the store.
        let reader: LineReader?
        do {
            reader = try input.map { path throws(ProfileExportError) in try LineReader(path: path, maxLineBytes: options.maxLineBytes) }
        } catch {
            throw ConnectorError(.input, "\(error)")
        }
        let store: SQLiteProfileStore
        do {
            store = try SQLiteProfileStore(folder: configuration.store, cacheMiB: configuration.storeCacheMiB)
        } catch {
            throw ConnectorError(.store, "\(error)")
        }
        let lock = try StoreLock(folder: configuration.store)
        defer { lock.close() }
        let delivery = try DeliveryStore(store: store)
        let dispatchers = try makeDispatchers(delivery: delivery)
        let served = Set(dispatchers.map(\.destination))
        for dataflow in configuration.dataflows { live.update { $0.dataflows[dataflow.id] = .init() } }
        let depths = try await delivery.outboxDepths(counting: true)
        gate.add(depths.filter { served.contains($0.destination) }.reduce(0) { $0 + $1.count })
        if gate.current > 0 { logger.notice("\(gate.current) exports of an earlier run wait in the outbox; sending them first") }
        let depth = gate.current
        live.update {
            $0.outboxDepth = depth
            $0.outboxPeak = depth
        }
        for (destination, dataflow, count) in depths where !served.contains(destination) {
            logger.warning(
                "\(count) exports of dataflow \(dataflow) wait in the outbox for destination \(destination), which no dataflow of the configuration uses; they stay there"
            )
        }

        let engine = ProfileEngine(configuration: configuration, store: store)
        let intake = Intake(
            engine: engine, store: store, delivery: delivery, reader: reader, options: options, control: control,
            gate: gate, live: live, logger: logger
        ) {
            for dispatcher in dispatchers { dispatcher.wake() }
        }
        // Without input there is nothing to finish: run until stopped.
        if input == nil { control.keepRunning() }

        let statusWriter = Task { [live, options] in
            while !Task.isCancelled {
                try? await self.countOutbox(delivery)
                if let json = Self.encode(live.snapshot) { try? await delivery.writeStatus(json) }
                try? await Task.sleep(for: options.statusInterval)
            }
        }
        let intakeDone = Self.startThread(named: "hubcast-intake") { intake.run() }
        var failure: ConnectorError?
        await withTaskGroup(of: ConnectorError?.self) { group in
            for dispatcher in dispatchers {
                group.addTask {
                    do throws(ConnectorError) {
                        try await dispatcher.run()
                        return nil
                    } catch {
                        return error
                    }
                }
            }
            for await error in group where error != nil {
                failure = failure ?? error
                self.stop()
            }
        }
        stop()
        await intakeDone.value
        statusWriter.cancel()
        for dispatcher in dispatchers { await dispatcher.close() }

        var report = ConnectorReport()
        report.intake = intake.summary
        report.uploads = intake.uploads
        report.outbox = (try? delivery.outboxDepth()) ?? [:]
        let left = report.outbox.values.reduce(0, +)
        live.update { [outbox = report.outbox] status in
            status.state = .stopped
            status.outboxDepth = left
            // Nothing is in flight, held or sent once the run is over.
            for id in status.destinations.keys {
                status.destinations[id]?.inFlight = 0
                status.destinations[id]?.held = 0
                status.destinations[id]?.sendRate = 0
                status.destinations[id]?.throttling = false
            }
            for id in status.dataflows.keys { status.dataflows[id]?.outbox = outbox[id] ?? 0 }
        }
        report.status = live.snapshot
        if let json = Self.encode(report.status) { try? await delivery.writeStatus(json) }
        if let error = intake.error { throw error }
        if let failure { throw failure }
        return report
    }

    /// Counts the outbox per dataflow, for the status.
    private func countOutbox(_ delivery: DeliveryStore) async throws(ConnectorError) {
        let depths = try await delivery.outboxDepths()
        live.update { status in
            for id in status.dataflows.keys { status.dataflows[id]?.outbox = 0 }
            for (_, dataflow, count) in depths { status.dataflows[dataflow, default: .init()].outbox += count }
        }
    }

    private func makeDispatchers(delivery: DeliveryStore) throws(ConnectorError) -> [Dispatcher] {
        var dispatchers: [Dispatcher] = []
        for destination in configuration.destinations where configuration.dataflows.contains(where: { $0.destination == destination.id }) {
            let throttles = ThrottleCounter()
            var producerOptions = EventHubsProducerOptions()
            producerOptions.client.retry = options.retry
            producerOptions.client.tokenLifetime = options.tokenLifetime
            producerOptions.client.trustedCAFile = options.trustedCAFile
            producerOptions.client.traceFrames = options.traceFrames
            producerOptions.onThrottled = { throttles.increment() }
            // The dispatcher holds throttled exports aside itself, so that they do not keep their
            // in-flight slots while they wait.
            producerOptions.waitsWhenThrottled = false
            let producer: EventHubsProducer
            do {
                let connectionString: EventHubsConnectionString
                switch destination.connection {
                case .connectionString(let text, let hub):
                    connectionString = try EventHubsConnectionString(parsing: text, eventHub: hub)
                case .fields(let namespace, let keyName, let key, let hub):
                    connectionString = try EventHubsConnectionString(namespace: namespace, eventHub: hub, sasKeyName: keyName, sasKey: key)
                }
                producer = try EventHubsProducer(
                    connectionString: connectionString, options: producerOptions,
                    logger: logger.with(destination: destination.id))
            } catch {
                throw ConnectorError(.destination, "\(destination.id): \(error)")
            }
            dispatchers.append(
                Dispatcher(
                    destination: destination.id, producer: producer, throttles: throttles, store: delivery,
                    options: options, control: control, gate: gate, live: live,
                    logger: logger.with(destination: destination.id)))
        }
        return dispatchers
    }

    private static func encode(_ status: ConnectorStatus) -> String? {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(status)).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Runs `body` on a thread of its own; the task finishes when it returns.
    private static func startThread(named name: String, _ body: @escaping @Sendable () -> Void) -> Task<Void, Never> {
        let (done, finish) = AsyncStream.makeStream(of: Void.self)
        let thread = Thread {
            // The system's name for the thread too (top, perf, gdb), not only Foundation's.
            Thread.current.name = name
            body()
            finish.finish()
        }
        thread.name = name
        thread.stackSize = 8 << 20
        thread.start()
        return Task { for await _ in done {} }
    }
}

extension Logger {
    /// This logger with the destination in its metadata.
    func with(destination: String) -> Logger {
        var logger = self
        logger[metadataKey: "destination"] = "\(destination)"
        return logger
    }
}
