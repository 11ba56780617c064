// The dispatcher's decisions as a value: waves, order, outcomes, window, pauses, coalescing.

import AMQP
@testable import HubcastConnector
import Testing

@Suite struct DispatchStateTests {
    static func entry(_ seq: Int64, profile: Int64, dataflow: String = "flow") -> OutboxEntry {
        OutboxEntry(seq: seq, dataflow: dataflow, partitionKey: "k\(profile)", profileKey: profile, payload: [UInt8(seq & 0xFF)], enqueued: 0)
    }

    static func state(window: Int = 10, waveSize: Int = 10, coalesce: Bool = false) -> DispatchState {
        DispatchState(.init(window: window, minimumWindow: 2, waveSize: waveSize, coalesce: coalesce))
    }

    let now = ContinuousClock.now
    let pause: (Int) -> Duration = { .seconds($0) }

    @Test func aWaveTakesOneEntryPerProfileAndBusyProfilesWait() {
        var state = Self.state()
        state.loaded([Self.entry(1, profile: 1), Self.entry(2, profile: 1), Self.entry(3, profile: 2), Self.entry(4, profile: 3)])
        let first = state.nextWave(now: now)?.wave.map(\.seq)
        #expect(first == [1, 3, 4])
        // Profile 1's second export waits while its first is in flight.
        #expect(state.nextWave(now: now) == nil)
        #expect(state.cursor == 4)
        let done = state.finish([Self.entry(1, profile: 1)], outcomes: [.success(.accepted)], sends: [1],
                                throttled: false, now: now, pause: pause)
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
        let refused = AMQPCondition(name: AMQPCondition.messageSizeExceeded, description: "too big")
        let result = state.finish(wave, 
                                  outcomes: [.success(.accepted), .success(.rejected(refused)), .failure(AMQPError(.timeout, "deadline"))],
                                  sends: [1, 1, 2], throttled: false, now: now, pause: pause)
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
        let failed = state.finish(again!, outcomes: [.success(.rejected(refused))], sends: [1],
                                  throttled: false, now: later, pause: pause)
        state.release(again!, back: failed.back)
        #expect(failed.settlement.failed.first?.attempts == 3)
    }

    @Test func throttlingHalvesTheWindowAndQuietRaisesIt() {
        var state = Self.state(window: 64)
        state.loaded((1...3).map { Self.entry($0, profile: $0) })
        let wave = state.nextWave(now: now)!.wave
        let throttled = state.finish(wave, outcomes: wave.map { _ in .success(.accepted) }, sends: [1, 1, 1],
                                     throttled: true, now: now, pause: pause)
        state.release(wave, back: [])
        #expect(throttled.windowChange.map { [$0.from, $0.to] } == [64, 32])
        // Within 5 s of the throttling the window stays down; after that a clean wave raises it.
        state.loaded([Self.entry(4, profile: 4)])
        let soon = state.nextWave(now: now + .seconds(2))!.wave
        #expect(state.finish(soon, outcomes: [.success(.accepted)], sends: [1], throttled: false,
                             now: now + .seconds(2), pause: pause).windowChange == nil)
        state.release(soon, back: [])
        state.loaded([Self.entry(5, profile: 5)])
        let quiet = state.nextWave(now: now + .seconds(6))!.wave
        let raised = state.finish(quiet, outcomes: [.success(.accepted)], sends: [1], throttled: false,
                                  now: now + .seconds(6), pause: pause)
        #expect(raised.windowChange.map { [$0.from, $0.to] } == [32, 36])
    }

    @Test func coalescingKeepsTheNewestWaitingExportPerProfileAndDataflow() {
        var state = Self.state(coalesce: true)
        state.loaded([Self.entry(1, profile: 1), Self.entry(2, profile: 1), Self.entry(3, profile: 1, dataflow: "other"),
                      Self.entry(4, profile: 1), Self.entry(5, profile: 2)])
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
}
