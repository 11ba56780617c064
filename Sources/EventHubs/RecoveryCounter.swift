// Hubcast — how many recoveries in a row a producer has made, as a value.

/// Counts a producer's recoveries (re-attaches, reconnects) since an event was last accepted, for
/// the backoff before the next try and the retry deadline: a recovery that let events through ends
/// the run, so the next one starts from the shortest backoff again (a hub that detaches a link now
/// and then is not an outage), and the deadline counts from the last accepted event, not from the
/// first failure.
struct RecoveryCounter {
    /// Recoveries since an event was last accepted, this one included.
    private(set) var attempts = 0
    /// When an event was last seen accepted (or the count started).
    private(set) var progressAt: ContinuousClock.Instant
    private var acceptedAtLastRecovery = 0

    init(now: ContinuousClock.Instant) {
        progressAt = now
    }

    /// A recovery, with `accepted` events accepted so far in all: returns the attempt number for the
    /// backoff (1 when events got through since the last recovery).
    mutating func recover(accepted: Int, now: ContinuousClock.Instant) -> Int {
        if accepted > acceptedAtLastRecovery {
            attempts = 0
            progressAt = now
        }
        acceptedAtLastRecovery = accepted
        attempts += 1
        return attempts
    }

    /// Whether waiting `wait` more would pass `deadline` counted from the last progress.
    func passes(_ deadline: Duration, after wait: Duration, now: ContinuousClock.Instant) -> Bool {
        now + wait > progressAt + deadline
    }
}
