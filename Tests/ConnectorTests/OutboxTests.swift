// The outbox: its own bookkeeping on a real store file (what settling a wave removes), and rows
// that no dispatcher sends any more.

import Foundation
import GRDB
@testable import HubcastConnector
import HubcastEmulator
import ProfileExport
import Testing

@Suite struct OutboxTests {
    /// Settling removes exactly the exports settled — acknowledged, skipped (deleted as runs of
    /// consecutive sequence numbers) and failed (moved to the failed exports) — and leaves the rest.
    @Test func settlingRemovesExactlyTheSettledRows() async throws {
        #expect(DeliveryStore.runs(of: []) == [])
        #expect(DeliveryStore.runs(of: [5, 1, 2, 3, 7, 8, 8]) == [1...3, 5...5, 7...8])

        let folder = NSTemporaryDirectory() + "hubcast-outbox-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try SQLiteProfileStore(folder: folder)
        let delivery = try DeliveryStore(store: store)
        let items = (0..<10).map {
            ExportItem(
                dataflow: "flow", destination: "hub", partitionKey: "k\($0)", triggers: [], payload: [UInt8($0)],
                profileKey: Int64($0 + 1), time: Timestamp(seconds: 0))
        }
        try await store.databaseQueue.write { db in try delivery.enqueue(items, in: db, at: 0) }
        let entries = try await delivery.load(destination: "hub", after: 0, limit: 100)
        #expect(entries.map(\.payload) == (0..<10).map { [UInt8($0)] })

        var settlement = DeliveryStore.Settlement()
        settlement.acknowledged = [entries[0], entries[1], entries[2], entries[5], entries[8]]
        settlement.skipped = [entries[3], entries[9]]
        settlement.failed = [(entry: entries[6], attempts: 3, condition: "amqp:internal-error", reason: "test")]
        try await delivery.settle(settlement)

        let left = try await delivery.load(destination: "hub", after: 0, limit: 100)
        #expect(left.map(\.seq) == [entries[4].seq, entries[7].seq])
        let failed = try await store.databaseQueue.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM failed_exports") }
        #expect(failed == 1)
    }

    /// Outbox rows of a dataflow removed from the configuration do not hang the run, even once they
    /// reach the outbox limit and the input is empty (the outbox gate started at the depth of every
    /// destination's rows, but only destinations with a dataflow get a dispatcher: those rows were
    /// never settled, so intake waited forever and the run never returned).
    @Test func rowsOfARemovedDataflowDoNotHangTheRun() async throws {
        try await Fixture.with({ $0.faults.settlementDelay = .seconds(2) }) { fixture in
            let input = try fixture.writeUpdates(300, profiles: 100)
            let report = try await fixture.runAndStopEarly(input)
            try #require((report.outbox["active-flow"] ?? 0) > 20)
            fixture.emulator.faults = .init()

            // active-flow is taken out of the configuration.
            let yaml = try String(contentsOfFile: fixture.configurationFile, encoding: .utf8)
            let start = try #require(yaml.range(of: "  - id: active-flow"))
            let end = try #require(yaml.range(of: "retry:"))
            try String(yaml[..<start.lowerBound] + yaml[end.lowerBound...]).write(
                toFile: fixture.configurationFile, atomically: true, encoding: .utf8)
            let empty = try fixture.writeUpdates(0, profiles: 1, name: "empty.jsonl")
            let second = try fixture.connector { $0.outboxLimit = 20 }
            let outcome = try await runWithWatchdog(second, input: empty, seconds: 4)
            #expect(!outcome.fired, "the run with an empty input never finished: intake waits on outbox rows no dispatcher sends")
        }
    }
}
