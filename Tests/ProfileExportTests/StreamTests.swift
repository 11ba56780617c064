import Foundation
import OrderedCollections
import Testing
@testable import ProfileExport

/// The pull interface over JSON-lines input, with rejects, checkpoints and backfill.
@Suite struct StreamTests {
    func write(_ lines: [String], in folder: String) throws -> String {
        let path = folder + "/updates.jsonl"
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func join(_ index: Int) -> String {
        #"{"profileId": "p\#(index)", "identities": {"ecid": ["e\#(index)"]}, "attributes": {"person": {"name": {"firstName": "John"}}}}"#
    }

    @Test func malformedLinesAreReportedKeptAsideAndSkipped() async throws {
        let folder = temporaryFolder()
        let input = try write(
            [
                Self.join(1), "{not json", #"{"attributes": {}}"#, "", Self.join(2),
                #"{"profileId": "p9", "identities": {"ecid": ["e1"]}}"#,
            ], in: folder)
        let harness = try Harness(ExportRuleTests.yaml)
        let rejects = try RejectsFile(path: folder + "/rejects.jsonl")
        var rejectedLines: [Int] = []
        let stream = ExportStream(
            engine: harness.engine, reader: try LineReader(path: input), rejects: rejects,
            onReject: { line, _ in rejectedLines.append(line) })
        var exported: [String] = []
        for try await item in stream { exported.append(item.partitionKey) }
        #expect(exported == ["e1", "e2"])
        #expect(rejectedLines == [2, 3, 6])
        #expect(stream.summary.updatesRead == 5)
        #expect(stream.summary.rejected == 3)
        #expect(stream.summary.exports == ["flow": 2, "second": 0])
        #expect(stream.summary.rejectedByKind == ["invalid JSON": 1, "invalid profile update": 1, "identity conflict": 1])
        let kept = try String(contentsOfFile: folder + "/rejects.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(kept.count == 3)
        let first = try JSONParser.parse(String(kept[0]))
        #expect(first.object?["line"] == .int(2))
        #expect(first.object?["text"] == .string("{not json"))
    }

    @Test func workHappensOnlyAsTheConsumerPulls() throws {
        let folder = temporaryFolder()
        let input = try write((1...100).map(Self.join), in: folder)
        let harness = try Harness(ExportRuleTests.yaml)
        let stream = ExportStream(engine: harness.engine, reader: try LineReader(path: input), batchSize: 10)
        _ = try stream.nextItem()
        #expect(stream.summary.updatesRead == 10)
        #expect(try harness.engine.store.profileCount() == 10)
        for _ in 0..<10 { _ = try stream.nextItem() }
        #expect(stream.summary.updatesRead == 20)
    }

    @Test(.timeLimit(.minutes(1))) func liveInputIsAppliedAsItArrives() throws {
        let pipe = Pipe()
        let harness = try Harness(ExportRuleTests.yaml)
        let stream = ExportStream(engine: harness.engine, reader: LineReader(handle: pipe.fileHandleForReading, source: "pipe"))
        pipe.fileHandleForWriting.write(Data((Self.join(1) + "\n" + Self.join(2) + "\n").utf8))
        // Two lines arrived and the writer is still open: both are applied without waiting for more.
        #expect(try stream.nextItem()?.partitionKey == "e1")
        #expect(try stream.nextItem()?.partitionKey == "e2")
        pipe.fileHandleForWriting.write(Data((Self.join(3) + "\n").utf8))
        #expect(try stream.nextItem()?.partitionKey == "e3")
        try pipe.fileHandleForWriting.close()
        #expect(try stream.nextItem() == nil)
    }

    /// A followed file that has not grown is not read again (no read-ahead thread per poll); once it
    /// grows, reading goes on where it stopped, and half a line waits for its end.
    @Test func aGrowingFileIsReadOnOnlyWhenItGrew() throws {
        let folder = temporaryFolder()
        let input = try write([Self.join(1)], in: folder)
        let harness = try Harness(ExportRuleTests.yaml)
        let reader = try LineReader(path: input)
        reader.waitsForLineEnd = true
        let stream = ExportStream(engine: harness.engine, reader: reader)
        #expect(try stream.nextItem()?.partitionKey == "e1")
        #expect(try stream.nextItem() == nil)
        #expect(!stream.resume(), "the file did not grow")
        #expect(try stream.nextItem() == nil)

        let file = try #require(FileHandle(forWritingAtPath: input))
        defer { try? file.close() }
        file.seekToEndOfFile()
        let second = Self.join(2)
        file.write(Data(second.prefix(20).utf8))
        #expect(stream.resume())
        #expect(try stream.nextItem() == nil, "half a line waits for its end")
        #expect(!stream.resume(), "nothing since the half line")
        file.write(Data((second.dropFirst(20) + "\n").utf8))
        #expect(stream.resume())
        #expect(try stream.nextItem()?.partitionKey == "e2")
        #expect(stream.summary.updatesRead == 2)
        #expect(stream.summary.rejected == 0)
    }

    @Test func checkpointResumesAfterTheLastCommittedLine() throws {
        let folder = temporaryFolder()
        let input = try write((1...50).map(Self.join), in: folder)
        let store = try SQLiteProfileStore(folder: folder + "/store")
        let harness = try Harness(ExportRuleTests.yaml, store: store)
        let first = ExportStream(engine: harness.engine, reader: try LineReader(path: input), batchSize: 20, checkpoint: "input")
        for _ in 0..<25 { _ = try first.nextItem() }  // two batches committed: 40 lines
        #expect(try store.value(named: "input") == "40")
        let second = ExportStream(engine: harness.engine, reader: try LineReader(path: input), batchSize: 20, checkpoint: "input")
        var keys: [String] = []
        while let item = try second.nextItem() { keys.append(item.partitionKey) }
        #expect(keys == (41...50).map { "e\($0)" })
    }

    @Test func onBatchRunsInsideTheBatchAndItsFailureRollsBack() throws {
        let folder = temporaryFolder()
        let input = try write((1...5).map(Self.join), in: folder)
        let store = try SQLiteProfileStore(folder: folder + "/store")
        let harness = try Harness(ExportRuleTests.yaml, store: store)
        let stream = ExportStream(
            engine: harness.engine, reader: try LineReader(path: input),
            onBatch: { _ throws(ProfileExportError) in
                throw ProfileExportError(.store, "outbox full (simulated)")
            })
        #expect(throws: ProfileExportError.self) { try stream.nextItem() }
        #expect(try store.profileCount() == 0)
    }

    /// A file is read and parsed ahead on a thread of its own: a batch that fails to commit is
    /// applied again from the lines already read, and nothing is skipped or applied twice.
    @Test func aReadAheadBatchThatFailsIsAppliedAgain() throws {
        let folder = temporaryFolder()
        let input = try write((1...50).map(Self.join) + ["{bad"], in: folder)
        let store = try SQLiteProfileStore(folder: folder + "/store")
        let harness = try Harness(ExportRuleTests.yaml, store: store)
        var batches = 0
        let stream = ExportStream(
            engine: harness.engine, reader: try LineReader(path: input), batchSize: 20, checkpoint: "input",
            onBatch: { _ throws(ProfileExportError) in
                batches += 1
                if batches == 2 { throw ProfileExportError(.store, "disk full (simulated)") }
            })
        var keys: [String] = []
        for _ in 0..<20 { keys.append(try #require(try stream.nextItem()).partitionKey) }
        #expect(throws: ProfileExportError.self) { try stream.nextItem() }
        while let item = try stream.nextItem() { keys.append(item.partitionKey) }
        #expect(keys == (1...50).map { "e\($0)" })
        #expect(stream.summary.updatesRead == 51 && stream.summary.rejected == 1)
        #expect(try store.value(named: "input") == "51")
    }

    /// A batch whose commit fails is rolled back, and its exports with it: the next `nextItem()`
    /// hands out no event of an update that was rolled back (they stayed in `pending` and went out
    /// while the lines were not read again, so the updates were lost).
    @Test func exportsOfARolledBackBatchAreNotHandedOut() throws {
        let folder = temporaryFolder()
        let path = folder + "/updates.jsonl"
        try ((1...3).map(StreamTests.join).joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let store = try SQLiteProfileStore(folder: folder + "/store")
        let harness = try Harness(ExportRuleTests.yaml, store: store)
        nonisolated(unsafe) var failures = 1
        let stream = ExportStream(
            engine: harness.engine, reader: try LineReader(path: path),
            onBatch: { _ throws(ProfileExportError) in
                if failures > 0 {
                    failures -= 1
                    throw ProfileExportError(.store, "outbox full (simulated)")
                }
            })
        #expect(throws: ProfileExportError.self) { try stream.nextItem() }
        #expect(try store.profileCount() == 0)
        // Pulling again must not hand out events of updates that were rolled back.
        var handedOut: [ExportItem] = []
        while let item = try stream.nextItem() { handedOut.append(item) }
        for item in handedOut {
            #expect(try store.profile(key: item.profileKey) != nil, "exported \(item.partitionKey), whose update was rolled back")
        }
    }

    @Test func backfillExportsExactlyThePreQualifiedMembersOnce() throws {
        let folder = temporaryFolder()
        let store = try SQLiteProfileStore(folder: folder)
        let before = try Harness(
            destinationsYAML + """

                audiences:
                  - {id: johns, rule: 'person.name.firstName = "John"'}
                  - {id: anns, rule: 'person.name.firstName = "Ann"'}
                dataflows:
                  - {id: flow, destination: hub, audiences: [johns], attributes: [person.name.firstName]}
                """, store: store)
        #expect(try before.engine.backfill().isEmpty)
        for (index, name) in ["John", "Ann", "Ann", "Bob"].enumerated() {
            try before.apply(#"{"profileId": "p\#(index)", "attributes": {"person": {"name": {"firstName": "\#(name)"}}}}"#)
        }
        // 'anns' is newly mapped: p1 and p2 already qualified and are exported; p0 only for 'johns', known already.
        let after = try Harness(
            destinationsYAML + """

                audiences:
                  - {id: johns, rule: 'person.name.firstName = "John"'}
                  - {id: anns, rule: 'person.name.firstName = "Ann"'}
                dataflows:
                  - {id: flow, destination: hub, audiences: [johns, anns], attributes: [person.name.firstName]}
                """, store: store)
        #expect(try after.engine.newlyMappedAudiences() == ["flow": ["anns"]])
        let items = try after.engine.backfill()
        #expect(items.map(\.partitionKey) == ["p1", "p2"])
        #expect(items.first?.triggers == [.backfill(audienceIds: ["anns"])])
        #expect(items.first?.payloadText.contains(#""anns":{"lastQualificationTime":"#) == true)
        #expect(try after.engine.backfill().isEmpty)
    }
}
