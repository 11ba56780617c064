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
/// and is sent again after a pause (an alert is raised), without using up its retries.
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

    /// Loaded entries not yet in flight, oldest first.
    private var queue: Deque<OutboxEntry> = []
    /// The highest sequence number loaded.
    private var cursor: Int64 = 0
    private var inFlightProfiles: Set<Int64> = []
    private var inFlight = 0
    private var window: Int
    private var lastThrottle: ContinuousClock.Instant?
    private var pausedUntil: ContinuousClock.Instant?
    private var outages = 0
    /// Sends so far of entries that came back after an outage.
    private var attempts: [Int64: Int] = [:]
    private var waves: [Int: Task<Void, Never>] = [:]
    private var nextWave = 0
    private var skipped: [OutboxEntry] = []
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
        self.window = max(1, options.window)
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
            if !skipped.isEmpty { await settle(DeliveryStore.Settlement(skipped: skipped)); skipped = [] }
            launchWaves()
            if intakeWasFinished && loadedAll && queue.isEmpty && inFlight == 0 && !control.follow { break }
            _ = await bell.next(isolation: self)
        }
        // Drain: let what is in flight settle, up to the timeout; the rest stays in the outbox.
        if inFlight > 0 {
            live.update { $0.state = "draining" }
            let deadline = ContinuousClock.now + options.drainTimeout
            while inFlight > 0 && ContinuousClock.now < deadline { _ = await bell.next(isolation: self) }
            abandoned = true
            for task in waves.values { task.cancel() }
            if inFlight > 0 { logger.info("\(destination): \(inFlight) sends unsettled at shutdown; they stay in the outbox") }
        }
        if let failure { throw failure }
    }

    /// Reads more entries when fewer than a window's worth wait; true when the outbox had nothing
    /// more for this destination.
    private func refill() async throws(ConnectorError) -> Bool {
        let room = window * 2 - queue.count
        guard room >= max(1, window / 2) else { return false }
        let entries = try await store.load(destination: destination, after: cursor, limit: room)
        if let last = entries.last { cursor = last.seq }
        // Rows a redrive put into the outbox while this run goes on: count them now, as they leave
        // it like any other.
        let redriven = entries.reduce(0) { $0 + ($1.redriven ? 1 : 0) }
        if redriven > 0 { gate.add(redriven) }
        queue.append(contentsOf: entries)
        return entries.count < room
    }

    /// Starts waves while the window has room: the oldest entries whose profile has nothing in
    /// flight, one per profile per wave.
    private func launchWaves() {
        if let pausedUntil, ContinuousClock.now < pausedUntil { return }
        while inFlight < window && !queue.isEmpty {
            let capacity = min(options.waveSize, window - inFlight)
            var wave: [OutboxEntry] = []
            var rest: Deque<OutboxEntry> = []
            var blocked: Set<Int64> = []
            for entry in queue {
                if wave.count < capacity && !inFlightProfiles.contains(entry.profileKey) && !blocked.contains(entry.profileKey) {
                    wave.append(entry)
                } else {
                    rest.append(entry)
                }
                blocked.insert(entry.profileKey)
            }
            guard !wave.isEmpty else { break }
            queue = rest
            for entry in wave { inFlightProfiles.insert(entry.profileKey) }
            if options.coalesce { coalesce() }
            inFlight += wave.count
            let id = nextWave
            nextWave += 1
            let chosen = wave
            waves[id] = Task { await self.send(chosen, id: id) }
        }
        publish()
    }

    /// Latest state wins: of the waiting entries of a profile that has one in flight, only the
    /// newest per dataflow stays; the others are skipped.
    private func coalesce() {
        var newest: [String: Int] = [:]
        for (index, entry) in queue.enumerated() where inFlightProfiles.contains(entry.profileKey) {
            newest["\(entry.profileKey)/\(entry.dataflow)"] = index
        }
        guard queue.count > newest.count || newest.isEmpty == false else { return }
        var kept: Deque<OutboxEntry> = []
        for (index, entry) in queue.enumerated() {
            if inFlightProfiles.contains(entry.profileKey), newest["\(entry.profileKey)/\(entry.dataflow)"] != index {
                skipped.append(entry)
            } else {
                kept.append(entry)
            }
        }
        queue = kept
    }

    private func send(_ wave: [OutboxEntry], id: Int) async {
        let events = wave.map { EventHubsEvent(body: $0.payload, contentType: "application/json", partitionKey: $0.partitionKey) }
        let sends = Mutex([Int](repeating: 1, count: wave.count))
        let throttlesBefore = throttles.count
        let results: Result<[Result<AMQPOutcome, AMQPError>], any Error>
        do {
            results = .success(try await producer.send(contentsOf: events) { index, _, count in sends.withLock { $0[index] = count } })
        } catch {
            results = .failure(error)
        }
        await finish(wave, id: id, results: results, sends: sends.withLock { $0 }, throttled: throttles.count > throttlesBefore)
    }

    private func finish(_ wave: [OutboxEntry], id: Int, results: Result<[Result<AMQPOutcome, AMQPError>], any Error>, sends: [Int],
                        throttled: Bool) async {
        waves[id] = nil
        guard !abandoned else { return }
        var settlement = DeliveryStore.Settlement()
        var back: [OutboxEntry] = []
        switch results {
        case .failure(let error) where error is CancellationError || control.isStopping && Task.isCancelled:
            back = wave
        case .failure(let error):
            if Self.isFatal(error) {
                failure = ConnectorError(.destination, "\(destination) cannot be used: \(error); its exports stay in the outbox")
                live.update { [destination] in $0.destinations[destination, default: .init()].connection = "failed: \(error)" }
                raiseAlert("destination \(destination) cannot be used: \(error); its exports stay in the outbox")
                back = wave
            } else {
                outage(error)
                back = wave
            }
        case .success(let outcomes):
            let now = Date().timeIntervalSince1970
            var lastOutage: AMQPError?
            for (index, (entry, outcome)) in zip(wave, outcomes).enumerated() {
                let attempts = (self.attempts.removeValue(forKey: entry.seq) ?? 0) + sends[index]
                if sends[index] > 1 { settlement.retried[entry.dataflow, default: 0] += sends[index] - 1 }
                switch outcome {
                case .success(.accepted):
                    settlement.acknowledged.append(entry)
                    live.recordLatency(dataflow: entry.dataflow, seconds: now - entry.enqueued)
                case .failure(let error) where EventHubsRetryPolicy.isTransient(error):
                    self.attempts[entry.seq] = attempts
                    lastOutage = error
                    back.append(entry)
                case .success(let other):
                    let (condition, reason) = Self.describe(other)
                    settlement.failed.append((entry, destination, attempts, condition, reason))
                case .failure(let error):
                    settlement.failed.append((entry, destination, attempts, error.remoteCondition?.name ?? error.code.description, "\(error)"))
                }
            }
            if let lastOutage { outage(lastOutage) } else if !settlement.acknowledged.isEmpty { recovered() }
            if !settlement.failed.isEmpty {
                let conditions = Set(settlement.failed.map(\.condition)).sorted().joined(separator: ", ")
                raiseAlert("\(settlement.failed.count) exports to \(destination) failed (\(conditions)); kept in the failed-exports store")
            }
        }
        adjustWindow(throttled: throttled, clean: back.isEmpty && settlement.failed.isEmpty)
        if !back.isEmpty {
            // Back in sequence order, ahead of what was loaded after them.
            queue = Deque((Array(queue) + back).sorted { $0.seq < $1.seq })
        }
        await settle(settlement)
        inFlight -= wave.count
        for entry in wave { inFlightProfiles.remove(entry.profileKey) }
        publish()
        ring.yield()
    }

    private func settle(_ settlement: DeliveryStore.Settlement) async {
        let count = settlement.acknowledged.count + settlement.failed.count + settlement.skipped.count
        guard count > 0 || !settlement.retried.isEmpty else { return }
        do {
            try await store.settle(settlement)
        } catch {
            // Nothing of it was recorded: the entries stay in the outbox and are sent again by the
            // next run (at least once). This run stops.
            failure = error
            raiseAlert("\(error)")
            return
        }
        gate.remove(count)
        live.update { status in
            for entry in settlement.acknowledged { status.dataflows[entry.dataflow, default: .init()].counters.acknowledged += 1 }
            for failed in settlement.failed { status.dataflows[failed.entry.dataflow, default: .init()].counters.failed += 1 }
            for entry in settlement.skipped { status.dataflows[entry.dataflow, default: .init()].counters.skipped += 1 }
            for (dataflow, count) in settlement.retried { status.dataflows[dataflow, default: .init()].counters.retried += count }
            status.outboxDepth = gate.current
        }
    }

    /// The hub asked us to wait: halve the window. Raised again, a step at a time, once nothing was
    /// throttled for 5 seconds.
    private func adjustWindow(throttled: Bool, clean: Bool) {
        let now = ContinuousClock.now
        if throttled {
            if lastThrottle.map({ now - $0 > .seconds(1) }) ?? true {
                window = max(min(options.minimumWindow, options.window), window / 2)
                logger.info("\(destination) throttles (server-busy): in-flight window lowered to \(window)")
            }
            lastThrottle = now
            live.update { $0.destinations[destination, default: .init()].connection = "throttled" }
        } else if clean, window < options.window, lastThrottle.map({ now - $0 > .seconds(5) }) ?? true {
            window = min(options.window, window + max(1, options.window / 16))
        }
    }

    private func outage(_ error: any Error) {
        outages += 1
        let pause = min(Duration.seconds(30), options.retry.backoff(attempt: min(outages, 8)))
        pausedUntil = ContinuousClock.now + pause
        live.update { [outages] in
            $0.destinations[destination, default: .init()].connection = "down: \(error)"
            if outages == 1 { $0.destinations[destination, default: .init()].outages += 1 }
        }
        let message = "destination \(destination) unreachable (\(error)); exports kept in the outbox, trying again in "
            + String(format: "%.1f s", pause.seconds)
        // One alert per outage; the waves that fail while it lasts are logged only.
        if outages == 1 { raiseAlert(message) } else { logger.info("\(message)") }
    }

    private func recovered() {
        if outages > 0 { logger.notice("destination \(destination) reachable again") }
        outages = 0
        pausedUntil = nil
        live.update { status in
            if lastThrottle.map({ ContinuousClock.now - $0 > .seconds(5) }) ?? true {
                status.destinations[destination, default: .init()].connection = "connected"
            }
        }
    }

    private func raiseAlert(_ message: String) {
        logger.error("ALERT: \(message)")
        live.update { $0.alerts += 1 }
    }

    private func publish() {
        live.update {
            $0.destinations[destination, default: .init()].window = window
            let lowest = $0.destinations[destination, default: .init()].lowestWindow
            $0.destinations[destination, default: .init()].lowestWindow = lowest == 0 ? window : min(lowest, window)
            $0.destinations[destination, default: .init()].inFlight = inFlight
            $0.destinations[destination, default: .init()].peakInFlight = max($0.destinations[destination, default: .init()].peakInFlight, inFlight)
            $0.destinations[destination, default: .init()].throttled = throttles.count
        }
    }

    /// Errors that concern every event of the destination and that no wait fixes.
    private static func isFatal(_ error: any Error) -> Bool {
        if let error = error as? EventHubsError {
            return [.invalidConnectionString, .invalidToken, .tokenExpired, .unauthorized, .notFound].contains(error.code)
        }
        return !EventHubsRetryPolicy.isTransient(error)
    }

    private static func describe(_ outcome: AMQPOutcome) -> (condition: String, reason: String) {
        switch outcome {
        case .rejected(let condition):
            (condition?.name ?? "rejected", condition.map { "rejected: \($0.description ?? $0.name)" } ?? "rejected without a condition")
        case .released: ("released", "released by the hub after every retry")
        case .modified: ("modified", "modified by the hub after every retry")
        default: ("\(outcome)", "\(outcome)")
        }
    }
}
