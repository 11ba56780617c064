// The dispatcher's decisions as a value: waves, order, outcomes, window, pauses, coalescing.

import AMQP
import EventHubs
@testable import HubcastConnector
import Testing

@Suite struct DispatchStateTests {
    static func entry(_ seq: Int64, profile: Int64, dataflow: String = "flow") -> OutboxEntry {
        OutboxEntry(seq: seq, dataflow: dataflow, partitionKey: "k\(profile)", profileKey: profile, payload: [UInt8(seq & 0xFF)], enqueued: 0)
    }

    static func state(window: Int = 10, waveSize: Int = 10, coalesce: Bool = false) -> DispatchState {
        DispatchState(.init(window: window, waveSize: waveSize, coalesce: coalesce))
    }

    let now = ContinuousClock.now
    let pause: (Int) -> Duration = { .seconds($0) }
    let hold: () -> Duration = { .seconds(4) }

    @Test func aWaveTakesOneEntryPerProfileAndBusyProfilesWait() {
        var state = Self.state()
        state.loaded([Self.entry(1, profile: 1), Self.entry(2, profile: 1), Self.entry(3, profile: 2), Self.entry(4, profile: 3)])
        let first = state.nextWave(now: now)?.wave.map(\.seq)
        #expect(first == [1, 3, 4])
        // Profile 1's second export waits while its first is in flight.
        #expect(state.nextWave(now: now) == nil)
        #expect(state.cursor == 4)
        let done = state.finish(
            [Self.entry(1, profile: 1)], outcomes: [.success(.accepted)], sends: [1], launched: now,
            now: now, pause: pause, holdFor: hold)
        // Still in flight until the settlement is recorded and the wave released.
        #expect(state.nextWave(now: now) == nil)
        state.release([Self.entry(1, profile: 1)], back: done.back)
        #expect(state.nextWave(now: now)?.wave.map(\.seq) == [2])
    }

    @Test func theWindowAndTheWaveSizeBoundWhatIsInFlight() {
        var state = Self.state(window: 5, waveSize: 2)
        state.loaded((1...20).map { Self.entry($0, profile: $0) })
        var sent = 0
        while let (wave, _) = state.nextWave(now: now) {
            #expect(wave.count <= 2)
            sent += wave.count
        }
        #expect(sent == 5)
        #expect(state.inFlight == 5)
        #expect(state.roomToLoad == 0)
    }

    @Test func outcomesSettleFailOrComeBackInOrder() {
        var state = Self.state()
        let wave = [Self.entry(1, profile: 1), Self.entry(2, profile: 2), Self.entry(3, profile: 3)]
        state.loaded(wave + [Self.entry(4, profile: 4)])
        #expect(state.nextWave(now: now)?.wave.count == 4)
        let refused = EventHubsOutcome.rejected(condition: AMQPCondition.messageSizeExceeded, description: "too big")
        let result = state.finish(
            wave,
            outcomes: [.success(.accepted), .success(refused), .failure(EventHubsError(.timeout, "deadline"))],
            sends: [1, 1, 2], launched: now, now: now, pause: pause, holdFor: hold)
        #expect(result.settlement.acknowledged.map(\.seq) == [1])
        #expect(result.settlement.failed.map(\.condition) == [AMQPCondition.messageSizeExceeded])
        #expect(result.settlement.retried == ["flow": 1])
        #expect(result.back.map(\.seq) == [3])
        #expect(result.outage?.new == true)
        state.release(wave, back: result.back)
        // The unreachable hub pauses sending; entry 3 waits, first in line, and keeps its sends.
        #expect(state.nextWave(now: now) == nil)
        let later = now + .seconds(2)
        let again = state.nextWave(now: later)?.wave
        #expect(again?.map(\.seq) == [3])
        let failed = state.finish(
            again!, outcomes: [.success(refused)], sends: [1], launched: later,
            now: later, pause: pause, holdFor: hold)
        state.release(again!, back: failed.back)
        #expect(failed.settlement.failed.first?.attempts == 3)
    }

    @Test func coalescingKeepsTheNewestWaitingExportPerProfileAndDataflow() {
        var state = Self.state(coalesce: true)
        state.loaded([
            Self.entry(1, profile: 1), Self.entry(2, profile: 1), Self.entry(3, profile: 1, dataflow: "other"),
            Self.entry(4, profile: 1), Self.entry(5, profile: 2),
        ])
        let (wave, skipped) = state.nextWave(now: now)!
        #expect(wave.map(\.seq) == [1, 5])
        #expect(skipped.map(\.seq) == [2])
        #expect(state.queue.map(\.seq) == [3, 4])
    }

    @Test func aGivenBackWaveIsSentAgainFirst() {
        var state = Self.state()
        state.loaded([Self.entry(1, profile: 1), Self.entry(2, profile: 2)])
        let wave = state.nextWave(now: now)!.wave
        state.loaded([Self.entry(3, profile: 3)])
        state.giveBack(wave)
        #expect(state.inFlight == 0)
        #expect(state.queue.map(\.seq) == [1, 2, 3])
    }

    static let busy = EventHubsOutcome.rejected(condition: "com.microsoft:server-busy", description: "Please wait 4 seconds and try again.")

    @Test func aThrottledEntryFreesItsSlotAtOnce() {
        var state = Self.state(window: 2, waveSize: 2)
        state.loaded((1...4).map { Self.entry($0, profile: $0) })
        let wave = state.nextWave(now: now)!.wave
        #expect(wave.map(\.seq) == [1, 2])
        let result = state.finish(
            wave, outcomes: [.success(Self.busy), .success(.accepted)], sends: [1, 1], launched: now,
            now: now, pause: pause, holdFor: hold)
        #expect(result.throttled == 1)
        #expect(result.throttlingStarted)
        #expect(result.settlement.failed.isEmpty)
        #expect(result.outage == nil)
        state.release(wave, back: result.back)
        // Entry 1 waits aside: the whole window is free for the others.
        #expect(state.inFlight == 0)
        #expect(state.held.map(\.entry.seq) == [1])
        #expect(state.nextWave(now: now)?.wave.map(\.seq) == [3, 4])
        #expect(state.nextWake(now: now) == now + .seconds(4))
        #expect(!state.isIdle)
    }

    /// A profile whose export the hub throttles again and again: its later exports wait behind it,
    /// other profiles flow, and it goes out first once its time has come.
    @Test func profileOrderHoldsUnderRepeatedThrottling() {
        var state = Self.state(window: 10, waveSize: 10)
        state.loaded([
            Self.entry(1, profile: 1), Self.entry(2, profile: 1), Self.entry(3, profile: 2), Self.entry(4, profile: 1),
            Self.entry(5, profile: 3),
        ])
        var clock = now
        var sentOfProfile1: [Int64] = []
        var rounds = 0
        while !state.isIdle {
            rounds += 1
            guard let wave = state.nextWave(now: clock)?.wave else {
                clock = state.nextWake(now: clock)!
                continue
            }
            sentOfProfile1 += wave.filter { $0.profileKey == 1 }.map(\.seq)
            // The hub throttles profile 1's first export three times, then takes everything.
            let throttleFirst = sentOfProfile1.filter { $0 == 1 }.count <= 3
            let outcomes: [EventHubsSendResult] = wave.map {
                $0.seq == 1 && throttleFirst ? .success(Self.busy) : .success(.accepted)
            }
            let result = state.finish(wave, outcomes: outcomes, sends: wave.map { _ in 1 }, launched: clock, now: clock, pause: pause, holdFor: hold)
            #expect(result.settlement.failed.isEmpty)
            state.release(wave, back: result.back)
        }
        #expect(sentOfProfile1 == [1, 1, 1, 1, 2, 4])
        #expect(rounds < 20)
        // Throttling used no retry: entry 1 was simply sent four times.
        #expect(clock - now >= .seconds(12))
    }

    @Test func heldEntriesBoundWhatIsLoaded() {
        var state = Self.state(window: 4, waveSize: 4)
        var seq: Int64 = 0
        // Everything is throttled: the held entries grow to two windows, then nothing more is loaded.
        for _ in 0..<10 {
            let room = state.roomToLoad
            if room > 0 {
                state.loaded(
                    (1...room).map { _ in
                        seq += 1; return Self.entry(seq, profile: seq)
                    })
            }
            guard let wave = state.nextWave(now: now)?.wave else { break }
            let result = state.finish(
                wave, outcomes: wave.map { _ in .success(Self.busy) }, sends: wave.map { _ in 1 }, launched: now,
                now: now, pause: pause, holdFor: hold)
            state.release(wave, back: result.back)
        }
        #expect(state.held.count >= 8)
        #expect(state.roomToLoad == 0)
        #expect(state.held.count + state.queue.count <= 8 + 8)
        // Their time comes: they go back to the queue in sequence order.
        let later = now + .seconds(5)
        let next = state.nextWave(now: later)!.wave
        #expect(next.map(\.seq) == next.map(\.seq).sorted())
        #expect(next.first?.seq == 1)
    }

    @Test func aThrottlingEndsAfterTenQuietSecondsWithItsCounts() {
        var state = Self.state(window: 10, waveSize: 10)
        state.loaded((1...3).map { Self.entry($0, profile: $0) })
        let wave = state.nextWave(now: now)!.wave
        let result = state.finish(
            wave, outcomes: [.success(Self.busy), .success(.accepted), .success(.accepted)], sends: [1, 1, 1], launched: now,
            now: now, pause: pause, holdFor: hold)
        state.release(wave, back: result.back)
        #expect(state.tick(now: now + .seconds(9)).ended == nil)
        let ended = state.tick(now: now + .seconds(10)).ended
        #expect(ended?.rejections == 1)
        #expect(ended?.accepted == 2)
        #expect(state.throttling == nil)
    }

    // MARK: - The send rate

    /// Feeds the rate `seconds` of outcomes at 10 ms steps: each step sends what the rate allows (at
    /// most `capacity` per second) and `answer` says how many of them the hub rejects.
    static func drive(
        _ rate: inout SendRate, from start: ContinuousClock.Instant, seconds: Int, capacity: Double,
        answer: (_ sent: Int, _ step: Int) -> Int
    ) -> (sent: Int, accepted: Int, rejected: Int) {
        var totals = (sent: 0, accepted: 0, rejected: 0)
        for step in 0..<(seconds * 100) {
            let time = start + .milliseconds(10 * step)
            let sent = min(Int(capacity / 100), rate.available(now: time))
            rate.consume(sent)
            let rejected = answer(sent, step)
            _ = rate.record(accepted: sent - rejected, rejected: rejected, now: time)
            totals.sent += sent
            totals.accepted += sent - rejected
            totals.rejected += rejected
        }
        return totals
    }

    @Test func aSmallSteadyRejectionFractionNeverLowersTheRate() {
        var rate = SendRate()
        // 5 % of every step rejected, at full speed: no limit is ever set.
        let totals = Self.drive(&rate, from: now, seconds: 20, capacity: 50_000) { sent, _ in sent / 20 }
        #expect(rate.limit == nil)
        #expect(totals.sent == 20 * 50_000)
    }

    @Test func aLargeRejectionFractionLowersTheRateAndASmallOneLetsItGrowBack() {
        var rate = SendRate()
        _ = Self.drive(&rate, from: now, seconds: 2, capacity: 50_000) { sent, _ in sent * 3 / 10 }
        let lowered = try! #require(rate.limit)
        #expect(lowered < 50_000 * 0.8)
        // Then 3 % rejected (the first interval still counts some of the 30 %): the limit grows
        // step by step.
        _ = Self.drive(&rate, from: now + .seconds(2), seconds: 1, capacity: 50_000) { sent, _ in sent * 3 / 100 }
        let settled = try! #require(rate.limit)
        _ = Self.drive(&rate, from: now + .seconds(3), seconds: 2, capacity: 50_000) { sent, _ in sent * 3 / 100 }
        #expect(rate.limit.map { $0 > settled * 1.1 } ?? false, "\(settled) \(String(describing: rate.limit))")
    }

    /// A hub with a quota (a token bucket of `quota` events per second and one second of burst):
    /// the rate settles just under the quota with few rejections, and once the quota is lifted it
    /// goes back to full speed within seconds.
    @Test(arguments: [1000.0, 5000.0])
    func theRateFollowsAQuotaAndLeavesItBehindOnceLifted(quota: Double) {
        var rate = SendRate()
        var bucket = quota
        var lifted = false
        let hub: (Int, Int) -> Int = { sent, _ in
            if lifted { return 0 }
            bucket = min(quota, bucket + quota / 100)
            let taken = min(sent, Int(bucket))
            bucket -= Double(taken)
            return sent - taken
        }
        _ = Self.drive(&rate, from: now, seconds: 5, capacity: 50_000, answer: hub)
        let steady = Self.drive(&rate, from: now + .seconds(5), seconds: 60, capacity: 50_000, answer: hub)
        #expect(Double(steady.accepted) >= 0.9 * quota * 60)
        #expect(Double(steady.rejected) <= 0.2 * Double(steady.sent))
        lifted = true
        var seconds = 0
        while seconds < 30 {
            let second = Self.drive(&rate, from: now + .seconds(65 + seconds), seconds: 1, capacity: 50_000, answer: hub)
            seconds += 1
            if second.sent >= 45_000 { break }
        }
        #expect(seconds <= 10)
    }

    @Test func theLimitGoesOnceItNoLongerHoldsTheSenderBack() {
        var rate = SendRate()
        _ = Self.drive(&rate, from: now, seconds: 1, capacity: 10_000) { sent, _ in sent / 2 }
        #expect(rate.limit != nil)
        // The hub takes all; the sender can do only 10,000/s: the limit grows past that and goes
        // once nothing was rejected for 5 s.
        _ = Self.drive(&rate, from: now + .seconds(1), seconds: 4, capacity: 10_000) { _, _ in 0 }
        #expect(rate.limit != nil)
        _ = Self.drive(&rate, from: now + .seconds(5), seconds: 3, capacity: 10_000) { _, _ in 0 }
        #expect(rate.limit == nil)
    }

    /// While the limit does not hold the sender back (its profiles wait for throttled exports),
    /// clean intervals neither grow it nor lift it before the quiet time: demand that comes back
    /// meets the same limit, not a burst.
    @Test func anUntestedLimitStaysUntilQuiet() {
        var rate = SendRate()
        _ = Self.drive(&rate, from: now, seconds: 1, capacity: 10_000) { sent, _ in sent / 2 }
        let first = try! #require(rate.limit)
        // The sender sends a tenth of that, all accepted (the first interval still counts some of
        // the rejections), then 3 s more: the limit does not move.
        _ = Self.drive(&rate, from: now + .seconds(1), seconds: 1, capacity: first / 10) { _, _ in 0 }
        let limit = try! #require(rate.limit)
        _ = Self.drive(&rate, from: now + .seconds(2), seconds: 3, capacity: first / 10) { _, _ in 0 }
        #expect(rate.limit == limit)
    }

    @Test func aLimitBoundsTheWaves() {
        var state = DispatchState(.init(window: 1000, waveSize: 1000, coalesce: false))
        _ = state.tick(now: now)
        state.loaded((1...1000).map { Self.entry($0, profile: $0) })
        let first = state.nextWave(now: now)!.wave
        // Half of them throttled, twice in an interval: the rate gets a limit.
        let result = state.finish(
            first, outcomes: first.indices.map { $0 % 2 == 0 ? .success(Self.busy) : .success(.accepted) },
            sends: first.map { _ in 1 }, launched: now + .milliseconds(600), now: now + .milliseconds(600), pause: pause, holdFor: hold)
        state.release(first, back: result.back)
        #expect(result.rateChange != nil)
        let limit = try! #require(state.rate.limit)
        state.loaded((1001...3000).map { Self.entry($0, profile: $0) })
        // 100 ms later: at most a fifth of a second's worth (the burst) goes.
        let later = now + .milliseconds(700)
        var sent = 0
        while let wave = state.nextWave(now: later)?.wave { sent += wave.count }
        #expect(Double(sent) <= max(1, limit * 0.2) + 1)
        #expect(state.nextWake(now: later).map { $0 > later } == true)
    }

    @Test func theMinuteCountForgetsOldSeconds() {
        var count = MinuteCount()
        count.add(5, at: 100)
        count.add(3, at: 130)
        #expect(count.total(at: 159) == 8)
        #expect(count.total(at: 160) == 3)
        #expect(count.total(at: 500) == 0)
    }

    /// Many waves in flight when the hub goes away fail together: one attempt, one step of the
    /// pause; a wave sent after the pause that fails again is the next attempt.
    @Test func wavesFailingTogetherCountAsOneAttempt() {
        var state = Self.state(window: 100, waveSize: 2)
        state.loaded((1...20).map { Self.entry($0, profile: $0) })
        var waves: [[OutboxEntry]] = []
        while let wave = state.nextWave(now: now)?.wave { waves.append(wave) }
        #expect(waves.count == 10)
        let lost = EventHubsError(.connectionFailed, "gone")
        var outages: [Bool] = []
        for (index, wave) in waves.enumerated() {
            let result = state.finish(
                wave, outcomes: wave.map { _ in .failure(lost) }, sends: wave.map { _ in 1 }, launched: now,
                now: now + .milliseconds(index), pause: pause, holdFor: hold)
            outages.append(result.outage != nil)
            state.release(wave, back: result.back)
        }
        #expect(outages == [true] + Array(repeating: false, count: 9))
        #expect(state.outages == 1)
        #expect(state.pausedUntil == now + .seconds(1))
        // After the pause, a new try fails: the second attempt.
        let later = now + .seconds(1)
        let again = state.nextWave(now: later)!.wave
        let second = state.finish(
            again, outcomes: again.map { _ in .failure(lost) }, sends: again.map { _ in 1 }, launched: later,
            now: later + .milliseconds(5), pause: pause, holdFor: hold)
        #expect(second.outage?.new == false)
        #expect(state.outages == 2)
    }
}
