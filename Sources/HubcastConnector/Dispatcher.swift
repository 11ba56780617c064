// Hubcast — the dispatcher: sends one destination's outbox and settles what the hub answers.

import AMQP
import DequeModule
import EventHubs
import Foundation
import Logging
import Synchronization

/// How many times a destination's hub answered `server-busy` (told by the producer).
final class ThrottleCounter: Sendable {
    private let value = Atomic(0)
    var count: Int { value.load(ordering: .relaxed) }
    func increment() { value.add(1, ordering: .relaxed) }
}

/// Flags the parts of a running connector share.
final class ConnectorControl: Sendable {
    private let stopping = Atomic(false)
    private let intakeFinished = Atomic(false)
    private let following: Atomic<Bool>

    init(follow: Bool) { following = Atomic(follow) }

    /// Whether the connector keeps running once everything is settled (until stopped).
    var follow: Bool { following.load(ordering: .acquiring) }
    func keepRunning() { following.store(true, ordering: .releasing) }

    var isStopping: Bool { stopping.load(ordering: .acquiring) }
    func stop() { stopping.store(true, ordering: .releasing) }
    var isIntakeFinished: Bool { intakeFinished.load(ordering: .acquiring) }
    func finishIntake() { intakeFinished.store(true, ordering: .releasing) }
}

/// Sends the outbox entries of one destination, oldest first, as the in-flight window allows.
///
/// Entries are read from the outbox in sequence order and sent in pipelined waves through the
/// destination's ``EventHubs/EventHubsProducer``, which retries each as the policy says. A profile has
/// at most one export in flight: its next one waits until the earlier one is settled, so retries
/// never reorder a profile's events. What the hub accepted leaves the outbox; what failed for good
/// moves to the failed exports; what could not be delivered because the hub was unreachable stays,
/// and is sent again after a pause (an alert is raised), without using up its retries. The decisions
/// are a value (``DispatchState``); this actor does the loading, sending, settling and reporting.
actor Dispatcher {
    let destination: String
    private let producer: EventHubsProducer
    private let store: DeliveryStore
    private let options: ConnectorOptions
    private let control: ConnectorControl
    private let gate: OutboxGate
    private let live: LiveStats
    private let logger: Logger
    private let throttles: ThrottleCounter
    private var state: DispatchState
    private var waves: [Int: Task<Void, Never>] = [:]
    private var nextWave = 0
    private var failure: ConnectorError?
    /// Set once the drain timeout passed: sends still in flight then settle nothing (their entries
    /// stay in the outbox for the next run), so nothing changes after ``run()`` returned.
    private var abandoned = false
    private let doorbell: AsyncStream<Void>
    private let ring: AsyncStream<Void>.Continuation

    init(destination: String, producer: EventHubsProducer, throttles: ThrottleCounter, store: DeliveryStore, options: ConnectorOptions,
         control: ConnectorControl, gate: OutboxGate, live: LiveStats, logger: Logger) {
        self.destination = destination
        self.producer = producer
        self.throttles = throttles
        self.store = store
        self.options = options
        self.control = control
        self.gate = gate
        self.live = live
        self.logger = logger
        self.state = DispatchState(.init(window: options.window, minimumWindow: options.minimumWindow, waveSize: options.waveSize,
                                         coalesce: options.coalesce))
        (self.doorbell, self.ring) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Closes the destination's connection.
    func close() async { await producer.close() }

    /// Wakes the dispatcher: new entries were committed, or intake finished.
    nonisolated func wake() { ring.yield() }

    /// Runs until stopped, or (without `follow`) until intake has finished and every entry of the
    /// destination is settled; then lets in-flight sends settle for up to the drain timeout. Throws
    /// when the destination cannot be used at all or the store fails; what is not settled stays
    /// in the outbox.
    func run() async throws(ConnectorError) {
        let ring = self.ring
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(200))
                ring.yield()
            }
        }
        defer { ticker.cancel() }
        var bell = doorbell.makeAsyncIterator()
        publish()
        while failure == nil && !control.isStopping {
            let intakeWasFinished = control.isIntakeFinished
            let loadedAll: Bool
            do {
                loadedAll = try await refill()
            } catch {
                failure = error
                break
            }
            await launchWaves()
            if intakeWasFinished && loadedAll && state.isIdle && !control.follow { break }
            _ = await bell.next(isolation: self)
        }
        // Drain: let what is in flight settle, up to the timeout; the rest stays in the outbox.
        if state.inFlight > 0 {
            live.update { $0.state = .draining }
            let deadline = ContinuousClock.now + options.drainTimeout
            while state.inFlight > 0 && ContinuousClock.now < deadline { _ = await bell.next(isolation: self) }
            abandoned = true
            for task in waves.values { task.cancel() }
            if state.inFlight > 0 { logger.info("\(destination): \(state.inFlight) sends unsettled at shutdown; they stay in the outbox") }
        }
        if let failure { throw failure }
    }

    /// Reads more entries when the state asks for them; true when the outbox had nothing more for
    /// this destination.
    private func refill() async throws(ConnectorError) -> Bool {
        let room = state.roomToLoad
        guard room > 0 else { return false }
        let entries = try await store.load(destination: destination, after: state.cursor, limit: room)
        // Rows a redrive put into the outbox while this run goes on: count them now, as they leave
        // it like any other.
        let redriven = entries.reduce(0) { $0 + ($1.redriven ? 1 : 0) }
        if redriven > 0 { gate.add(redriven) }
        state.loaded(entries)
        return entries.count < room
    }

    /// Starts waves while the state has some to send.
    private func launchWaves() async {
        while let (wave, skipped) = state.nextWave(now: .now) {
            let id = nextWave
            nextWave += 1
            waves[id] = Task { await self.send(wave, id: id) }
            if !skipped.isEmpty { await settle(DeliveryStore.Settlement(skipped: skipped)) }
        }
        publish()
    }

    private func send(_ wave: [OutboxEntry], id: Int) async {
        let events = wave.map { EventHubsEvent(body: $0.payload, contentType: "application/json", partitionKey: $0.partitionKey) }
        let sends = Mutex([Int](repeating: 1, count: wave.count))
        // This wave's own throttling (other waves in flight on the producer have theirs).
        let throttled = Atomic(false)
        let results: Result<[Result<AMQPOutcome, AMQPError>], any Error>
        do {
            results = .success(try await producer.send(
                contentsOf: events, onSettled: { index, _, count in sends.withLock { $0[index] = count } },
                onThrottled: { throttled.store(true, ordering: .relaxed) }))
        } catch {
            results = .failure(error)
        }
        await finish(wave, id: id, results: results, sends: sends.withLock { $0 }, throttled: throttled.load(ordering: .relaxed))
    }

    private func finish(_ wave: [OutboxEntry], id: Int, results: Result<[Result<AMQPOutcome, AMQPError>], any Error>, sends: [Int],
                        throttled: Bool) async {
        waves[id] = nil
        guard !abandoned else { return }
        let now = ContinuousClock.now
        switch results {
        case .failure(let error) where error is CancellationError:
            state.giveBack(wave)
        case .failure(let error) where !EventHubsRetryPolicy.isTransient(error):
            // It concerns every event of the destination and no wait fixes it (refused credentials, no such hub).
            state.giveBack(wave)
            failure = ConnectorError(.destination, "\(destination) cannot be used: \(error); its exports stay in the outbox")
            live.update { [destination] in $0.destinations[destination, default: .init()].connection = .init(.failed, reason: "\(error)") }
            raiseAlert("destination \(destination) cannot be used: \(error); its exports stay in the outbox")
        case .failure(let error):
            state.giveBack(wave)
            reportOutage(error, state.outage(now: now, pause: pause))
        case .success(let outcomes):
            let result = state.finish(wave, outcomes: outcomes, sends: sends, throttled: throttled, now: now, pause: pause)
            let seconds = Date().timeIntervalSince1970
            for entry in result.settlement.acknowledged { live.recordLatency(dataflow: entry.dataflow, seconds: seconds - entry.enqueued) }
            if let (error, pause, new) = result.outage {
                reportOutage(error, (pause, new))
            } else if !result.settlement.acknowledged.isEmpty {
                reportReachable(now: now, recovered: result.recovered)
            }
            if let (from, to) = result.windowChange, to < from {
                logger.info("\(destination) throttles (server-busy): in-flight window lowered from \(from) to \(to)")
            }
            if throttled { live.update { [destination] in $0.destinations[destination, default: .init()].connection = .init(.throttled) } }
            if !result.settlement.failed.isEmpty {
                let conditions = Set(result.settlement.failed.map(\.condition)).sorted().joined(separator: ", ")
                raiseAlert("\(result.settlement.failed.count) exports to \(destination) failed (\(conditions)); kept in the failed-exports store")
            }
            // The wave stays in flight until its settlement is recorded: the run must not end, nor
            // a profile's next export go out, before.
            await settle(result.settlement)
            state.release(wave, back: result.back)
        }
        publish()
        ring.yield()
    }

    /// How long sending pauses after `outages` outage waves in a row.
    private nonisolated var pause: (Int) -> Duration {
        { [retry = options.retry] outages in min(Duration.seconds(30), retry.backoff(attempt: min(outages, 8))) }
    }

    private func settle(_ settlement: DeliveryStore.Settlement) async {
        let count = settlement.acknowledged.count + settlement.failed.count + settlement.skipped.count
        guard count > 0 || !settlement.retried.isEmpty else { return }
        let counters: [String: DeliveryCounters]
        do {
            counters = try await store.settle(settlement)
        } catch {
            // Nothing of it was recorded: the entries stay in the outbox and are sent again by the
            // next run (at least once). This run stops.
            failure = error
            raiseAlert("\(error)")
            return
        }
        gate.remove(count)
        live.update { status in
            for (dataflow, added) in counters { status.dataflows[dataflow, default: .init()].counters.add(added) }
            status.outboxDepth = gate.current
        }
    }

    /// One alert per outage; the waves that fail while it lasts are logged only.
    private func reportOutage(_ error: any Error, _ outage: (pause: Duration, new: Bool)) {
        live.update { [destination] in
            $0.destinations[destination, default: .init()].connection = .init(.down, reason: "\(error)")
            if outage.new { $0.destinations[destination, default: .init()].outages += 1 }
        }
        let message = "destination \(destination) unreachable (\(error)); exports kept in the outbox, trying again in "
            + String(format: "%.1f s", outage.pause.seconds)
        if outage.new { raiseAlert(message) } else { logger.info("\(message)") }
    }

    private func reportReachable(now: ContinuousClock.Instant, recovered: Bool) {
        if recovered { logger.notice("destination \(destination) reachable again") }
        if !state.recentlyThrottled(now: now) {
            live.update { [destination] in $0.destinations[destination, default: .init()].connection = .init(.connected) }
        }
    }

    private func raiseAlert(_ message: String) {
        logger.error("ALERT: \(message)")
        live.update { $0.alerts += 1 }
    }

    private func publish() {
        let (window, inFlight) = (state.window, state.inFlight)
        live.update { [destination, throttles] in
            var status = $0.destinations[destination, default: .init()]
            status.window = window
            status.lowestWindow = status.lowestWindow == 0 ? window : min(status.lowestWindow, window)
            status.inFlight = inFlight
            status.peakInFlight = max(status.peakInFlight, inFlight)
            status.throttled = throttles.count
            $0.destinations[destination] = status
        }
    }
}
