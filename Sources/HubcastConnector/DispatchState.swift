// Hubcast — the dispatcher's decisions, as a value.

import AMQP
import DequeModule
import EventHubs

/// What a dispatcher decides, with no I/O: which outbox entries go in the next wave (oldest first,
/// one per profile, none of a profile with one in flight), what a wave's outcomes mean (acknowledged,
/// failed for good, back to the queue after an outage), the in-flight window (halved when the hub
/// throttles, raised step by step once it has not for 5 seconds) and pauses after an outage. The
/// ``Dispatcher`` actor loads, sends and settles what this decides.
struct DispatchState {
    struct Settings {
        var window: Int
        var minimumWindow: Int
        var waveSize: Int
        var coalesce: Bool
    }

    /// What one wave's results come to.
    struct WaveResult {
        var settlement = DeliveryStore.Settlement()
        /// The entries to put back into the queue (the hub was unreachable), with ``release(_:back:)``.
        var back: [OutboxEntry] = []
        /// The error that made the hub count as unreachable, if any did, with the pause it caused
        /// and whether the outage is new.
        var outage: (error: AMQPError, pause: Duration, new: Bool)?
        /// Whether the hub was unreachable before this wave got through.
        var recovered = false
        /// The window before and after, when it changed.
        var windowChange: (from: Int, to: Int)?
    }

    let settings: Settings
    /// Loaded entries not yet in flight, oldest first.
    private(set) var queue: Deque<OutboxEntry> = []
    /// The highest sequence number loaded.
    private(set) var cursor: Int64 = 0
    private(set) var inFlightProfiles: Set<Int64> = []
    private(set) var inFlight = 0
    private(set) var window: Int
    private(set) var lastThrottle: ContinuousClock.Instant?
    private(set) var pausedUntil: ContinuousClock.Instant?
    /// Outage waves in a row (0 while the hub is reachable).
    private(set) var outages = 0
    /// Sends so far of entries that came back after an outage.
    private var attempts: [Int64: Int] = [:]

    init(_ settings: Settings) {
        self.settings = settings
        window = max(1, settings.window)
    }

    /// How many entries to load now: up to two windows wait, loaded once half a window is free.
    var roomToLoad: Int {
        let room = window * 2 - queue.count
        return room >= max(1, window / 2) ? room : 0
    }

    /// Whether nothing waits and nothing is in flight.
    var isIdle: Bool { queue.isEmpty && inFlight == 0 }

    /// Adds entries read from the outbox (in sequence order, after ``cursor``).
    mutating func loaded(_ entries: [OutboxEntry]) {
        if let last = entries.last { cursor = last.seq }
        queue.append(contentsOf: entries)
    }

    /// The next wave: the oldest entries whose profile has nothing in flight, one per profile, as
    /// many as the window and the wave size allow; nil when none can go now (paused, window full,
    /// every waiting profile busy). With coalescing, also the waiting entries it drops.
    mutating func nextWave(now: ContinuousClock.Instant) -> (wave: [OutboxEntry], skipped: [OutboxEntry])? {
        if let pausedUntil, now < pausedUntil { return nil }
        guard inFlight < window, !queue.isEmpty else { return nil }
        let capacity = min(settings.waveSize, window - inFlight)
        var wave: [OutboxEntry] = []
        var rest: Deque<OutboxEntry> = []
        var blocked: Set<Int64> = []
        var index = queue.startIndex
        while index < queue.endIndex && wave.count < capacity {
            let entry = queue[index]
            if !inFlightProfiles.contains(entry.profileKey) && !blocked.contains(entry.profileKey) {
                wave.append(entry)
            } else {
                rest.append(entry)
            }
            blocked.insert(entry.profileKey)
            index += 1
        }
        guard !wave.isEmpty else { return nil }
        // Once the wave is full, what follows keeps its place as it is.
        rest.append(contentsOf: queue[index...])
        queue = rest
        for entry in wave { inFlightProfiles.insert(entry.profileKey) }
        inFlight += wave.count
        return (wave, settings.coalesce ? coalesce() : [])
    }

    /// Latest state wins: of the waiting entries of a profile that has one in flight, only the
    /// newest per dataflow stays; returns the others.
    private mutating func coalesce() -> [OutboxEntry] {
        var newest: [String: Int] = [:]
        for (index, entry) in queue.enumerated() where inFlightProfiles.contains(entry.profileKey) {
            newest["\(entry.profileKey)/\(entry.dataflow)"] = index
        }
        var kept: Deque<OutboxEntry> = []
        var skipped: [OutboxEntry] = []
        for (index, entry) in queue.enumerated() {
            if inFlightProfiles.contains(entry.profileKey), newest["\(entry.profileKey)/\(entry.dataflow)"] != index {
                skipped.append(entry)
            } else {
                kept.append(entry)
            }
        }
        queue = kept
        return skipped
    }

    /// A wave's outcomes (`sends[i]`: how many times entry `i` was sent): accepted entries are
    /// acknowledged, entries the hub could not take in time are to go back to the queue and pause
    /// the sending, the others are failed with their condition. Adjusts the window. The wave stays
    /// in flight until ``release(_:back:)``, called once the settlement is recorded.
    mutating func finish(_ wave: [OutboxEntry], outcomes: [Result<AMQPOutcome, AMQPError>], sends: [Int],
                         throttled: Bool, now: ContinuousClock.Instant, pause: (Int) -> Duration) -> WaveResult {
        var result = WaveResult()
        var back: [OutboxEntry] = []
        var unreachable: AMQPError?
        for (index, (entry, outcome)) in zip(wave, outcomes).enumerated() {
            let attempts = (self.attempts.removeValue(forKey: entry.seq) ?? 0) + sends[index]
            if sends[index] > 1 { result.settlement.retried[entry.dataflow, default: 0] += sends[index] - 1 }
            switch outcome {
            case .success(.accepted):
                result.settlement.acknowledged.append(entry)
            case .failure(let error) where EventHubsRetryPolicy.isTransient(error):
                self.attempts[entry.seq] = attempts
                unreachable = error
                back.append(entry)
            case .success(let other):
                let (condition, reason) = Self.describe(other)
                result.settlement.failed.append((entry, attempts, condition, reason))
            case .failure(let error):
                result.settlement.failed.append((entry, attempts, error.remoteCondition?.name ?? error.code.description, "\(error)"))
            }
        }
        if let unreachable {
            let (wait, new) = outage(now: now, pause: pause)
            result.outage = (unreachable, wait, new)
        } else if !result.settlement.acknowledged.isEmpty {
            result.recovered = outages > 0
            outages = 0
            pausedUntil = nil
        }
        result.windowChange = adjustWindow(throttled: throttled, clean: back.isEmpty && result.settlement.failed.isEmpty, now: now)
        result.back = back
        return result
    }

    /// A wave none of whose entries was settled (cancelled at shutdown, or the destination failed):
    /// every entry goes back to the queue.
    mutating func giveBack(_ wave: [OutboxEntry]) { release(wave, back: wave) }

    /// The hub could not be reached: sending pauses for `pause(outages in a row)`; returns the pause
    /// and whether this outage is new.
    @discardableResult
    mutating func outage(now: ContinuousClock.Instant, pause: (Int) -> Duration) -> (pause: Duration, new: Bool) {
        outages += 1
        let wait = pause(outages)
        pausedUntil = now + wait
        return (wait, outages == 1)
    }

    /// Ends a wave: its profiles are free again, `back` returns to the queue in sequence order.
    mutating func release(_ wave: [OutboxEntry], back: [OutboxEntry]) {
        if !back.isEmpty {
            // Back in sequence order, ahead of what was loaded after them: both are in order, so
            // one merge pass.
            var merged: Deque<OutboxEntry> = []
            merged.reserveCapacity(queue.count + back.count)
            var waiting = queue.startIndex, returned = back.startIndex
            while waiting < queue.endIndex || returned < back.endIndex {
                if returned < back.endIndex && (waiting == queue.endIndex || back[returned].seq < queue[waiting].seq) {
                    merged.append(back[returned])
                    returned += 1
                } else {
                    merged.append(queue[waiting])
                    waiting += 1
                }
            }
            queue = merged
        }
        inFlight -= wave.count
        for entry in wave { inFlightProfiles.remove(entry.profileKey) }
    }

    /// Halves the window when the hub throttled (at most once a second); raises it by a sixteenth of
    /// the maximum after a clean wave once it has not throttled for 5 seconds.
    private mutating func adjustWindow(throttled: Bool, clean: Bool, now: ContinuousClock.Instant) -> (from: Int, to: Int)? {
        let before = window
        if throttled {
            if lastThrottle.map({ now - $0 > .seconds(1) }) ?? true {
                window = max(min(settings.minimumWindow, settings.window), window / 2)
            }
            lastThrottle = now
        } else if clean, window < settings.window, lastThrottle.map({ now - $0 > .seconds(5) }) ?? true {
            window = min(settings.window, window + max(1, settings.window / 16))
        }
        return window == before ? nil : (before, window)
    }

    /// Whether the hub throttled in the last 5 seconds.
    func recentlyThrottled(now: ContinuousClock.Instant) -> Bool {
        lastThrottle.map { now - $0 <= .seconds(5) } ?? false
    }

    static func describe(_ outcome: AMQPOutcome) -> (condition: String, reason: String) {
        switch outcome {
        case .rejected(let condition):
            (condition?.name ?? "rejected", condition.map { "rejected: \($0.description ?? $0.name)" } ?? "rejected without a condition")
        case .released: ("released", "released by the hub after every retry")
        case .modified: ("modified", "modified by the hub after every retry")
        default: ("\(outcome)", "\(outcome)")
        }
    }
}
