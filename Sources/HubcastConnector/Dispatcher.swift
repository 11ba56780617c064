// Hubcast — the dispatcher: sends one destination's outbox and settles what the hub answers.

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
///
/// When the hub throttles (`com.microsoft:server-busy`), the throttled entries leave the window and
/// wait out the hub's delay aside while the others keep flowing, and the send rate follows what the
/// hub accepts (``SendRate``): the log says once when throttling starts and once when it ends.
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
    /// `server-busy` answers in the last minute, for the status.
    private var rejections = MinuteCount()
    /// When the wake-up timer rings next (nil: none set).
    private var timer: ContinuousClock.Instant?
    /// Since when the hub has been unreachable, and why (nil while it is reachable).
    private var unreachable: (since: ContinuousClock.Instant, error: String)?
    private var waves: [Int: Task<Void, Never>] = [:]
    private var nextWave = 0
    private var failure: ConnectorError?
    /// Set once the drain timeout passed: sends still in flight then settle nothing (their entries
    /// stay in the outbox for the next run), so nothing changes after ``run()`` returned.
    private var abandoned = false
    private let doorbell: AsyncStream<Void>
    private let ring: AsyncStream<Void>.Continuation

    init(
        destination: String, producer: EventHubsProducer, throttles: ThrottleCounter, store: DeliveryStore, options: ConnectorOptions,
        control: ConnectorControl, gate: OutboxGate, live: LiveStats, logger: Logger
    ) {
        self.destination = destination
        self.producer = producer
        self.throttles = throttles
        self.store = store
        self.options = options
        self.control = control
        self.gate = gate
        self.live = live
        self.logger = logger
        self.state = DispatchState(.init(window: options.window, waveSize: options.waveSize, coalesce: options.coalesce))
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
            tick()
            if failure != nil { break }
            await launchWaves()
            if intakeWasFinished && loadedAll && state.isIdle && !control.follow { break }
            _ = await bell.next(isolation: self)
        }
        // Drain: let what is in flight settle, up to the timeout; the rest (held entries too) stays
        // in the outbox.
        state.releaseHeld()
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
            let launched = ContinuousClock.now
            waves[id] = Task { await self.send(wave, id: id, launched: launched) }
            if !skipped.isEmpty { await settle(DeliveryStore.Settlement(skipped: skipped)) }
        }
        scheduleWake()
        publish()
    }

    /// Rings the doorbell when the state says something can change without a wave finishing (a held
    /// entry comes due, a pause ends, the send rate has tokens again), unless a ring is due sooner.
    private func scheduleWake() {
        let now = ContinuousClock.now
        guard let when = state.nextWake(now: now), timer.map({ when < $0 || $0 <= now }) ?? true else { return }
        timer = when
        let ring = self.ring
        Task {
            try? await Task.sleep(until: when)
            ring.yield()
        }
    }

    /// Ends a throttling the hub has stopped and the send rate's interval (the ticker rings at
    /// least every 200 ms).
    private func tick() {
        let now = ContinuousClock.now
        if let giveUp = options.giveUpAfter, let (since, error) = unreachable, now - since >= giveUp, failure == nil {
            let seconds = String(format: "%.0f s", (now - since) / .seconds(1))
            failure = ConnectorError(
                .destination,
                "destination \(destination) unreachable for \(seconds) (last error: \(error)); giving up, its exports stay in the outbox")
            raiseAlert(
                "destination \(destination) unreachable for \(seconds) (last error: \(error)); the run gives up, its exports stay in the outbox")
        }
        let (ended, change) = state.tick(now: now)
        if let change { report(change) }
        if let ended {
            let seconds = (ended.last - ended.since) / .seconds(1) + state.settings.throttleQuiet / .seconds(1)
            let message =
                "\(destination) no longer throttles: \(ended.rejections) server-busy answers and \(ended.accepted) acknowledged "
                + "in \(String(format: "%.0f", seconds)) s; send rate \(describeLimit(state.rate.limit))"
            logger.notice("\(message)")
            live.update { [destination] in
                if $0.destinations[destination]?.connection.kind == .throttled { $0.destinations[destination]?.connection = .init(.connected) }
            }
        }
    }

    private func report(_ change: SendRate.Change) {
        switch change {
        case .lowered(let from, let to):
            logger.debug("\(destination): send rate lowered from \(describeLimit(from)) to \(describeLimit(to))")
        case .raised(let from, let to):
            logger.debug("\(destination): send rate raised from \(describeLimit(from)) to \(describeLimit(to))")
        case .lifted:
            logger.info("\(destination): send rate no longer limited")
        }
    }

    private func describeLimit(_ limit: Double?) -> String {
        limit.map { String(format: "%.0f events/s", $0) } ?? "unlimited"
    }

    private func send(_ wave: [OutboxEntry], id: Int, launched: ContinuousClock.Instant) async {
        let events = wave.map { EventHubsEvent(body: $0.payload, contentType: "application/json", partitionKey: $0.partitionKey) }
        let sends = Mutex([Int](repeating: 1, count: wave.count))
        let results: Result<[EventHubsSendResult], any Error>
        do {
            results = .success(
                try await producer.send(
                    contentsOf: events, onSettled: { index, _, count in sends.withLock { $0[index] = count } }))
        } catch {
            results = .failure(error)
        }
        await finish(wave, id: id, launched: launched, results: results, sends: sends.withLock { $0 })
    }

    private func finish(
        _ wave: [OutboxEntry], id: Int, launched: ContinuousClock.Instant,
        results: Result<[EventHubsSendResult], any Error>, sends: [Int]
    ) async {
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
            if let outage = state.outage(now: now, launched: launched, pause: pause) { reportOutage(error, outage) }
        case .success(let outcomes):
            let result = state.finish(wave, outcomes: outcomes, sends: sends, launched: launched, now: now, pause: pause, holdFor: holdFor)
            let seconds = Date().timeIntervalSince1970
            for entry in result.settlement.acknowledged { live.recordLatency(dataflow: entry.dataflow, seconds: seconds - entry.enqueued) }
            if let (error, pause, new) = result.outage {
                reportOutage(error, (pause, new))
            } else if !result.settlement.acknowledged.isEmpty {
                reportReachable(now: now, recovered: result.recovered)
            }
            if let change = result.rateChange { report(change) }
            if result.throttled > 0 {
                rejections.add(result.throttled, at: Self.second(now))
                if result.throttlingStarted {
                    let delay = String(format: "%.1f s", options.retry.serverBusyDelay / .seconds(1))
                    logger.notice(
                        "\(destination) throttles (server-busy): throttled exports wait \(delay) or more aside while the rest flows; the send rate follows what the hub accepts"
                    )
                }
                live.update { [destination] in $0.destinations[destination, default: .init()].connection = .init(.throttled) }
            }
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

    /// How long a throttled entry waits before it is sent again: the server-busy delay (the service
    /// asks for 4 s) and up to a quarter more, so that entries throttled together do not all
    /// come back at once.
    private nonisolated var holdFor: () -> Duration {
        { [delay = options.retry.serverBusyDelay] in delay + delay * Double.random(in: 0...0.25) }
    }

    /// Whole seconds on the continuous clock, for the last minute's counts.
    private static func second(_ instant: ContinuousClock.Instant) -> Int64 {
        (instant - Self.origin).components.seconds
    }

    private static let origin = ContinuousClock.now

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

    /// One alert per outage; each later failed attempt while it lasts is logged once (the waves
    /// that fail with an attempt are not).
    private func reportOutage(_ error: any Error, _ outage: (pause: Duration, new: Bool)) {
        if outage.new || unreachable == nil { unreachable = (.now, "\(error)") } else { unreachable?.error = "\(error)" }
        live.update { [destination] in
            $0.destinations[destination, default: .init()].connection = .init(.down, reason: "\(error)")
            if outage.new { $0.destinations[destination, default: .init()].outages += 1 }
        }
        let message =
            "destination \(destination) unreachable (\(error)); exports kept in the outbox, trying again in "
            + String(format: "%.1f s", outage.pause.seconds)
        if outage.new { raiseAlert(message) } else { logger.info("\(message)") }
    }

    private func reportReachable(now: ContinuousClock.Instant, recovered: Bool) {
        unreachable = nil
        if recovered { logger.notice("destination \(destination) reachable again") }
        if state.throttling == nil {
            live.update { [destination] in $0.destinations[destination, default: .init()].connection = .init(.connected) }
        }
    }

    private func raiseAlert(_ message: String) {
        logger.error("ALERT: \(message)")
        live.update { $0.alerts += 1 }
    }

    private func publish() {
        let (window, inFlight, held) = (state.window, state.inFlight, state.held.count)
        let (limit, rate, throttling) = (state.rate.limit, state.rate.measuredRate, state.throttling != nil)
        let lastMinute = rejections.total(at: Self.second(.now))
        live.update { [destination, throttles] in
            var status = $0.destinations[destination, default: .init()]
            status.window = window
            status.inFlight = inFlight
            status.peakInFlight = max(status.peakInFlight, inFlight)
            status.throttled = throttles.count
            status.throttling = throttling
            status.sendRateLimit = limit
            status.sendRate = rate
            status.rejectionsLastMinute = lastMinute
            status.held = held
            $0.destinations[destination] = status
        }
    }
}
