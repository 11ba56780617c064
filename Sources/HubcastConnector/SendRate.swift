// Hubcast — how fast a dispatcher sends to a hub that throttles, as a value.

/// The send rate a dispatcher allows itself: unlimited until the hub throttles, then a limit in
/// events per second that follows the hub's quota (docs/throttling.md).
///
/// Outcomes are counted over intervals of time (``Settings/interval``), not per wave, so one slow
/// or throttled wave says little and a steady fraction of rejections says much:
/// - more than ``Settings/tolerated`` of an interval's outcomes answered `server-busy` (and at
///   least ``Settings/leastRejections`` of them): the limit drops to a little under the rate the
///   hub **accepted** in that interval, which is what its quota let through;
/// - some rejections, but no more than tolerated: the limit grows by ``Settings/probe`` (additive in
///   effect), so the rate creeps up to the quota and stays just under it;
/// - no rejection: the limit grows faster with each clean interval in a row (5 %, 10 %, 20 %, … up
///   to doubling), so a throttle that was lifted is left behind within seconds;
/// - the limit does not hold the dispatcher back (it sends less than ``Settings/limitedShare`` of
///   it, for example while many profiles wait for a throttled export): the limit stays as it is,
///   untested; it goes once nothing was rejected for ``Settings/quietIntervals`` intervals.
///
/// A random fraction of rejections under the tolerated one (a hub that sheds some load at any rate)
/// therefore never lowers the rate; a quota holds it near the quota. Tokens for the limit are a
/// bucket that holds ``Settings/burst`` of sending.
struct SendRate {
    struct Settings {
        /// How long outcomes are counted before the limit is adjusted.
        var interval: Duration = .milliseconds(500)
        /// The fraction of an interval's outcomes that may be `server-busy` without lowering the limit.
        var tolerated = 0.10
        /// The least number of rejections in an interval that lowers the limit (a few rejections
        /// among few sends are chance).
        var leastRejections = 10
        /// How far under the accepted rate the limit drops.
        var backoff = 0.95
        /// Growth per interval with some (tolerated) rejections.
        var probe = 0.05
        /// The lowest limit, events per second.
        var minimum = 10.0
        /// How much sending the token bucket holds.
        var burst: Duration = .milliseconds(200)
        /// The share of the limit below which the dispatcher counts as not held back by it.
        var limitedShare = 0.7
        /// Intervals in a row without a rejection after which a limit that does not hold the
        /// dispatcher back goes (a hub that throttled recently keeps the dispatcher limited while
        /// demand dips, so that the rate does not burst past the quota when it returns).
        var quietIntervals = 10
    }

    /// How an interval ended, for the dispatcher's log and status.
    enum Change: Equatable {
        case lowered(from: Double?, to: Double)
        case raised(from: Double, to: Double)
        case lifted(from: Double)
    }

    let settings: Settings
    /// The limit in events per second, or nil for none.
    private(set) var limit: Double?
    /// Events sent per second over the last whole interval.
    private(set) var measuredRate: Double = 0
    private var tokens: Double = 0
    private var refilled: ContinuousClock.Instant?
    private var intervalStart: ContinuousClock.Instant?
    private var sent = 0
    private var accepted = 0
    private var rejected = 0
    /// Clean intervals in a row in which the limit held the dispatcher back (the growth's pace).
    private var growthInRow = 0
    /// Intervals in a row without a rejection.
    private var quietInRow = 0

    init(_ settings: Settings = Settings()) {
        self.settings = settings
    }

    private var burstSeconds: Double { settings.burst / .seconds(1) }

    /// How many events may go now (`Int.max` without a limit).
    mutating func available(now: ContinuousClock.Instant) -> Int {
        guard let limit else { return .max }
        refill(limit, now: now)
        return Int(tokens)
    }

    /// Takes `count` events' tokens; call after ``available(now:)``.
    mutating func consume(_ count: Int) {
        sent += count
        if limit != nil { tokens -= Double(count) }
    }

    /// When enough tokens for a useful wave (a hundredth of a second's sending, at least one) are
    /// there; nil without a limit.
    mutating func nextTokens(now: ContinuousClock.Instant) -> ContinuousClock.Instant? {
        guard let limit else { return nil }
        refill(limit, now: now)
        let wanted = max(1, min(limit * burstSeconds, limit / 100))
        guard tokens < wanted else { return now }
        return now + .seconds((wanted - tokens) / limit)
    }

    private mutating func refill(_ limit: Double, now: ContinuousClock.Instant) {
        if let refilled { tokens = min(max(1, limit * burstSeconds), tokens + limit * ((now - refilled) / .seconds(1))) }
        refilled = now
    }

    /// Counts outcomes that came back at `now`; at the end of an interval, adjusts the limit and
    /// says how.
    mutating func record(accepted: Int, rejected: Int, now: ContinuousClock.Instant) -> Change? {
        self.accepted += accepted
        self.rejected += rejected
        return tick(now: now)
    }

    /// Ends the interval if it is over (also called when nothing came back, so that a quiet hub is
    /// seen as quiet).
    mutating func tick(now: ContinuousClock.Instant) -> Change? {
        guard let start = intervalStart else {
            intervalStart = now
            return nil
        }
        let elapsed = now - start
        guard elapsed >= settings.interval else { return nil }
        let seconds = elapsed / .seconds(1)
        let (accepted, rejected, sent) = (self.accepted, self.rejected, self.sent)
        (self.accepted, self.rejected, self.sent) = (0, 0, 0)
        intervalStart = now
        measuredRate = Double(sent) / seconds
        let outcomes = accepted + rejected
        guard outcomes > 0 else { return nil }
        quietInRow = rejected == 0 ? quietInRow + 1 : 0
        let before = limit
        if rejected >= settings.leastRejections && Double(rejected) > settings.tolerated * Double(outcomes) {
            growthInRow = 0
            let target = max(settings.minimum, Double(accepted) / seconds * settings.backoff)
            let lowered = min(limit ?? .infinity, target)
            if limit == nil { tokens = 0; refilled = now }
            limit = lowered
            return .lowered(from: before, to: lowered)
        }
        guard let current = limit else { return nil }
        let heldBack = Double(sent) / seconds >= settings.limitedShare * current
        if !heldBack {
            guard quietInRow >= settings.quietIntervals else { return nil }
            limit = nil
            growthInRow = 0
            return .lifted(from: current)
        }
        growthInRow = rejected == 0 ? growthInRow + 1 : 0
        let growth = rejected == 0 ? min(1.0, settings.probe * Double(1 << min(growthInRow - 1, 10))) : settings.probe
        limit = current * (1 + growth)
        return .raised(from: current, to: limit!)
    }
}

/// Counts events over the last minute, in one-second buckets.
struct MinuteCount {
    private var buckets = [Int](repeating: 0, count: 60)
    private var second: Int64 = 0

    /// Adds `count` at `now` (seconds on any monotonic scale).
    mutating func add(_ count: Int, at now: Int64) {
        advance(to: now)
        buckets[Int(now % 60)] += count
    }

    /// The count over the 60 seconds up to `now`.
    mutating func total(at now: Int64) -> Int {
        advance(to: now)
        return buckets.reduce(0, +)
    }

    private mutating func advance(to now: Int64) {
        guard now > second else { return }
        if now - second >= 60 {
            buckets = [Int](repeating: 0, count: 60)
        } else {
            for tick in (second + 1)...now { buckets[Int(tick % 60)] = 0 }
        }
        second = now
    }
}
