// Hubcast — the dispatcher's decisions, as a value.

import DequeModule
import EventHubs

/// What a dispatcher decides, with no I/O: which outbox entries go in the next wave (oldest first,
/// one per profile, none of a profile that has one in flight or waiting out a throttle), what a
/// wave's outcomes mean (acknowledged, failed for good, held after `server-busy`, back to the queue
/// after an outage), how fast it may send (``SendRate``) and pauses after an outage. The
/// ``Dispatcher`` actor loads, sends and settles what this decides (docs/throttling.md).
///
/// An entry the hub throttled leaves the in-flight window at once: it is held aside with a
/// not-before time and goes back to its place in the queue (by sequence number) once that time has
/// come, while the other profiles' entries keep flowing. Its profile stays busy while it is held, so
/// the profile's later exports never overtake it.
struct DispatchState {
    struct Settings {
        /// The most entries in flight.
        var window: Int
        var waveSize: Int
        var coalesce: Bool
        var rate = SendRate.Settings()
        /// How long after its last `server-busy` the hub counts as no longer throttling.
        var throttleQuiet: Duration = .seconds(10)
    }

    /// A stretch of time in which the hub throttled: from its first `server-busy` to
    /// ``Settings/throttleQuiet`` after its last.
    struct Throttling: Equatable {
        var since: ContinuousClock.Instant
        var last: ContinuousClock.Instant
        var rejections = 0
        var accepted = 0
    }

    /// What one wave's results come to.
    struct WaveResult {
        var settlement = DeliveryStore.Settlement()
        /// The entries to put back into the queue (the hub was unreachable), with ``release(_:back:)``.
        var back: [OutboxEntry] = []
        /// The error that made the hub count as unreachable, if any did, with the pause it caused
        /// and whether the outage is new.
        var outage: (error: EventHubsError, pause: Duration, new: Bool)?
        /// Whether the hub was unreachable before this wave got through.
        var recovered = false
        /// Entries the hub answered `server-busy`, now held aside.
        var throttled = 0
        /// Whether this wave started a throttling.
        var throttlingStarted = false
        /// How the send rate changed, when it did.
        var rateChange: SendRate.Change?
    }

    let settings: Settings
    /// Loaded entries not yet in flight, oldest first.
    private(set) var queue: Deque<OutboxEntry> = []
    /// The highest sequence number loaded.
    private(set) var cursor: Int64 = 0
    /// Profiles with an entry in flight.
    private(set) var inFlightProfiles: Set<Int64> = []
    private(set) var inFlight = 0
    /// Entries the hub throttled, with the time before which they are not sent again.
    private(set) var held: [(entry: OutboxEntry, notBefore: ContinuousClock.Instant)] = []
    /// Profiles with a held entry.
    private(set) var heldProfiles: Set<Int64> = []
    /// The earliest not-before time of the held entries.
    private var nextDue: ContinuousClock.Instant?
    private(set) var rate: SendRate
    /// The throttling going on, if the hub throttles.
    private(set) var throttling: Throttling?
    private(set) var pausedUntil: ContinuousClock.Instant?
    /// Failed attempts in a row to reach the hub (0 while it is reachable). Waves sent before an
    /// attempt was counted that fail with it are the same attempt: however many waves were in
    /// flight when the hub went away, the pause grows once per try after a pause.
    private(set) var outages = 0
    /// When the last failed attempt was counted.
    private var outageCountedAt: ContinuousClock.Instant?
    /// Sends so far of entries that came back after an outage or a throttle.
    private var attempts: [Int64: Int] = [:]

    init(_ settings: Settings) {
        self.settings = settings
        rate = SendRate(settings.rate)
    }

    /// The most entries in flight.
    var window: Int { max(1, settings.window) }

    /// How many entries to load now: up to two windows wait, loaded once half a window is free.
    /// Nothing is loaded while two windows' worth are held (a hub that throttles for long keeps
    /// the rest in the outbox, not in memory).
    var roomToLoad: Int {
        guard held.count < window * 2 else { return 0 }
        let room = window * 2 - queue.count
        return room >= max(1, window / 2) ? room : 0
    }

    /// Whether nothing waits, is held or is in flight.
    var isIdle: Bool { queue.isEmpty && inFlight == 0 && held.isEmpty }

    /// Adds entries read from the outbox (in sequence order, after ``cursor``).
    mutating func loaded(_ entries: [OutboxEntry]) {
        if let last = entries.last { cursor = last.seq }
        queue.append(contentsOf: entries)
    }

    /// The next wave: the oldest entries whose profile is not busy, one per profile, as many as the
    /// window, the wave size and the send rate allow; nil when none can go now (paused, window full,
    /// no tokens, every waiting profile busy). With coalescing, also the waiting entries it drops.
    mutating func nextWave(now: ContinuousClock.Instant) -> (wave: [OutboxEntry], skipped: [OutboxEntry])? {
        releaseDue(now: now)
        if let pausedUntil, now < pausedUntil { return nil }
        guard inFlight < window, !queue.isEmpty else { return nil }
        let capacity = min(settings.waveSize, window - inFlight, rate.available(now: now))
        guard capacity > 0 else { return nil }
        var wave: [OutboxEntry] = []
        var rest: Deque<OutboxEntry> = []
        var blocked: Set<Int64> = []
        var index = queue.startIndex
        while index < queue.endIndex && wave.count < capacity {
            let entry = queue[index]
            if !isBusy(entry.profileKey) && !blocked.contains(entry.profileKey) {
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
        rate.consume(wave.count)
        return (wave, settings.coalesce ? coalesce() : [])
    }

    private func isBusy(_ profile: Int64) -> Bool {
        inFlightProfiles.contains(profile) || heldProfiles.contains(profile)
    }

    /// When something may change without a wave finishing: a held entry comes due, a pause ends,
    /// or the send rate has tokens again for waiting entries. Nil when only a finishing wave or a
    /// load can change anything.
    mutating func nextWake(now: ContinuousClock.Instant) -> ContinuousClock.Instant? {
        var times: [ContinuousClock.Instant] = []
        if let nextDue { times.append(nextDue) }
        if let pausedUntil, pausedUntil > now { times.append(pausedUntil) }
        if !queue.isEmpty && inFlight < window, let tokens = rate.nextTokens(now: now), tokens > now { times.append(tokens) }
        return times.min()
    }

    /// Latest state wins: of the waiting entries of a profile that has one in flight or held, only
    /// the newest per dataflow stays; returns the others.
    private mutating func coalesce() -> [OutboxEntry] {
        var newest: [String: Int] = [:]
        for (index, entry) in queue.enumerated() where isBusy(entry.profileKey) {
            newest["\(entry.profileKey)/\(entry.dataflow)"] = index
        }
        var kept: Deque<OutboxEntry> = []
        var skipped: [OutboxEntry] = []
        for (index, entry) in queue.enumerated() {
            if isBusy(entry.profileKey), newest["\(entry.profileKey)/\(entry.dataflow)"] != index {
                skipped.append(entry)
            } else {
                kept.append(entry)
            }
        }
        queue = kept
        return skipped
    }

    /// A wave's outcomes (`sends[i]`: how many times entry `i` was sent): accepted entries are
    /// acknowledged; entries answered `server-busy` are held until `now + holdFor()` (their retries
    /// untouched); entries the hub could not take in time are to go back to the queue and pause the
    /// sending; the others are failed with their condition. Counts the outcomes for the send rate.
    /// The wave stays in flight until ``release(_:back:)``, called once the settlement is recorded.
    mutating func finish(
        _ wave: [OutboxEntry], outcomes: [EventHubsSendResult], sends: [Int], launched: ContinuousClock.Instant,
        now: ContinuousClock.Instant, pause: (Int) -> Duration, holdFor: () -> Duration
    ) -> WaveResult {
        var result = WaveResult()
        var back: [OutboxEntry] = []
        var unreachable: EventHubsError?
        for (index, (entry, outcome)) in zip(wave, outcomes).enumerated() {
            let attempts = (self.attempts.removeValue(forKey: entry.seq) ?? 0) + sends[index]
            if sends[index] > 1 { result.settlement.retried[entry.dataflow, default: 0] += sends[index] - 1 }
            switch outcome {
            case .success(.accepted):
                result.settlement.acknowledged.append(entry)
            case .success(let outcome) where EventHubsRetryPolicy.isThrottled(outcome):
                self.attempts[entry.seq] = attempts
                hold(entry, until: now + holdFor())
                result.throttled += 1
                result.settlement.retried[entry.dataflow, default: 0] += 1
            case .failure(let error) where EventHubsRetryPolicy.isTransient(error):
                self.attempts[entry.seq] = attempts
                unreachable = error
                back.append(entry)
            case .success(let other):
                let (condition, reason) = Self.describe(other)
                result.settlement.failed.append((entry, attempts, condition, reason))
            case .failure(let error):
                result.settlement.failed.append((entry, attempts, error.condition ?? error.code.description, "\(error)"))
            }
        }
        if let unreachable {
            if let (wait, new) = outage(now: now, launched: launched, pause: pause) { result.outage = (unreachable, wait, new) }
        } else if !result.settlement.acknowledged.isEmpty {
            result.recovered = outages > 0
            outages = 0
            outageCountedAt = nil
            pausedUntil = nil
        }
        let accepted = result.settlement.acknowledged.count
        if result.throttled > 0 {
            result.throttlingStarted = throttling == nil
            var current = throttling ?? Throttling(since: now, last: now)
            current.last = now
            current.rejections += result.throttled
            throttling = current
        }
        throttling?.accepted += accepted
        result.rateChange = rate.record(accepted: accepted, rejected: result.throttled, now: now)
        result.back = back
        return result
    }

    /// Holds a throttled entry aside; its profile stays busy.
    private mutating func hold(_ entry: OutboxEntry, until notBefore: ContinuousClock.Instant) {
        held.append((entry, notBefore))
        heldProfiles.insert(entry.profileKey)
        nextDue = min(nextDue ?? notBefore, notBefore)
    }

    /// Puts the held entries whose time has come back into the queue, in sequence order.
    private mutating func releaseDue(now: ContinuousClock.Instant) {
        guard let due = nextDue, due <= now else { return }
        var ready: [OutboxEntry] = []
        var still: [(entry: OutboxEntry, notBefore: ContinuousClock.Instant)] = []
        nextDue = nil
        for item in held {
            if item.notBefore <= now {
                ready.append(item.entry)
                heldProfiles.remove(item.entry.profileKey)
            } else {
                still.append(item)
                nextDue = min(nextDue ?? item.notBefore, item.notBefore)
            }
        }
        held = still
        ready.sort { $0.seq < $1.seq }
        requeue(ready)
    }

    /// Ends a throttling once the hub has not throttled for ``Settings/throttleQuiet``, and ends the
    /// send rate's interval when it is over; called on the dispatcher's ticks. Returns the ended
    /// throttling and the rate's change, if any.
    mutating func tick(now: ContinuousClock.Instant) -> (ended: Throttling?, rateChange: SendRate.Change?) {
        var ended: Throttling?
        if let current = throttling, now - current.last >= settings.throttleQuiet {
            ended = current
            throttling = nil
        }
        return (ended, rate.tick(now: now))
    }

    /// A wave none of whose entries was settled (cancelled at shutdown, or the destination failed):
    /// every entry goes back to the queue.
    mutating func giveBack(_ wave: [OutboxEntry]) { release(wave, back: wave) }

    /// Held entries go back to the queue at once (the run is ending: what is not sent stays in the
    /// outbox anyway).
    mutating func releaseHeld() {
        let entries = held.map(\.entry).sorted { $0.seq < $1.seq }
        held = []
        heldProfiles = []
        nextDue = nil
        requeue(entries)
    }

    /// A wave sent at `launched` found the hub unreachable: unless an earlier failure of the same
    /// attempt was counted already, sending pauses for `pause(outages in a row)`. Returns the pause
    /// and whether the outage is new, or nil when the failure belongs to an attempt counted already.
    @discardableResult
    mutating func outage(
        now: ContinuousClock.Instant, launched: ContinuousClock.Instant,
        pause: (Int) -> Duration
    ) -> (pause: Duration, new: Bool)? {
        if let counted = outageCountedAt, launched <= counted { return nil }
        outages += 1
        outageCountedAt = now
        let wait = pause(outages)
        pausedUntil = now + wait
        return (wait, outages == 1)
    }

    /// Ends a wave: its profiles are free again (unless an entry of theirs is held), `back` returns
    /// to the queue in sequence order.
    mutating func release(_ wave: [OutboxEntry], back: [OutboxEntry]) {
        requeue(back)
        inFlight -= wave.count
        for entry in wave { inFlightProfiles.remove(entry.profileKey) }
    }

    /// Merges entries (in sequence order) into the queue, ahead of what was loaded after them: both
    /// are in order, so one merge pass.
    private mutating func requeue(_ back: [OutboxEntry]) {
        guard !back.isEmpty else { return }
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

    static func describe(_ outcome: EventHubsOutcome) -> (condition: String, reason: String) {
        switch outcome {
        case .rejected(let condition, let description):
            (condition ?? "rejected", condition.map { "rejected: \(description ?? $0)" } ?? "rejected without a condition")
        case .released: ("released", "released by the hub after every retry")
        case .modified: ("modified", "modified by the hub after every retry")
        default: ("\(outcome)", "\(outcome)")
        }
    }
}
