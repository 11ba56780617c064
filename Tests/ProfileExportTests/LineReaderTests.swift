// Reading input lines: in one pass however long a line is, within a bound however long the input's
// lines are; over-long lines rejected and skipped; the rejects file bounded and never a crash.

import Foundation
import Testing
@testable import ProfileExport

@Suite struct LineReaderTests {
    func write(_ bytes: [UInt8], in folder: String, name: String = "updates.jsonl") throws -> String {
        let path = folder + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// Lines, each ended by a line break (copied in one go: `joined` goes byte by byte in a debug build).
    static func joined(_ lines: [[UInt8]]) -> [UInt8] {
        var bytes: [UInt8] = []
        for line in lines {
            bytes += line
            bytes.append(0x0A)
        }
        return bytes
    }

    /// An update line of about `bytes` bytes: valid JSON, so only its length makes it a reject.
    static func longUpdate(_ profile: Int, bytes: Int) -> [UInt8] {
        Array(#"{"profileId": "p\#(profile)", "identities": {"ecid": ["e\#(profile)"]}, "attributes": {"blob": ""#.utf8)
            + [UInt8](repeating: UInt8(ascii: "x"), count: bytes) + Array(#""}}"#.utf8)
    }

    /// A 16 MiB line under a larger limit comes out whole, each byte searched for a line break
    /// once: the search goes on from where the last read's stopped (it used to start again from the
    /// line's first byte after every 64 KiB read: 256 reads, 2 GiB searched, a 10 MB line took 35 s).
    @Test func aLongLineIsSearchedInOnePass() throws {
        let folder = temporaryFolder()
        let long = [UInt8](repeating: UInt8(ascii: "x"), count: 16 << 20)
        let path = try write(long + Array("\nnext\n".utf8), in: folder)
        let reader = try LineReader(path: path, maxLineBytes: 32 << 20)
        #expect(reader.next() == .text(long))
        #expect(reader.next() == .text(Array("next".utf8)))
        #expect(reader.next() == nil)
        #expect(reader.lineNumber == 2)
        #expect(reader.bytesSearched == long.count + 6, "searched \(reader.bytesSearched) bytes of \(long.count + 6)")
    }

    /// A line over the limit is counted and dropped as it is read: the reader never holds more than
    /// the limit and one read (in an array that may have doubled), it comes out with its length and
    /// first bytes, and the next line flows with the right number.
    @Test func anOverlongLineIsSkippedWithoutBeingHeld() throws {
        let folder = temporaryFolder()
        let path = try write([UInt8](repeating: UInt8(ascii: "y"), count: 20 << 20) + Array("\r\n{\"a\":1}\n".utf8), in: folder)
        let reader = try LineReader(path: path, maxLineBytes: 1 << 20)
        var largest = 0
        let line = reader.next()
        largest = max(largest, reader.bufferCapacity)
        #expect(line == .overlong(length: 20 << 20, head: [UInt8](repeating: UInt8(ascii: "y"), count: LineReader.overlongHeadBytes)))
        // The line's bytes up to the limit and one read; the array may have doubled past them.
        #expect(largest <= 2 * ((1 << 20) + (64 << 10) + 2), "held \(largest) bytes for a 20 MiB line")
        #expect(reader.lineNumber == 1)
        #expect(reader.next() == .text(Array(#"{"a":1}"#.utf8)))
        #expect(reader.lineNumber == 2)
        #expect(reader.next() == nil)
    }

    /// The limit counts a line's bytes without its line break (`\n` or `\r\n`).
    @Test func theLimitCountsTheLineWithoutItsLineBreak() throws {
        let folder = temporaryFolder()
        let text = "0123456789\n0123456789\r\n0123456789A\n0123456789A\r\n\nabc"
        let reader = try LineReader(path: write(Array(text.utf8), in: folder), maxLineBytes: 10)
        let ten = Array("0123456789".utf8)
        #expect(reader.next() == .text(ten))
        #expect(reader.next() == .text(ten))
        #expect(reader.next() == .overlong(length: 11, head: Array("0123456789A".utf8)))
        #expect(reader.next() == .overlong(length: 11, head: Array("0123456789A".utf8)))
        #expect(reader.next() == .text([]))
        #expect(reader.next() == .text(Array("abc".utf8)))
        #expect(reader.next() == nil)
        #expect(reader.lineNumber == 6)
    }

    /// Live input (a pipe): the bytes of an over-long line are dropped as they arrive, while the
    /// reader waits for its end; a `\r\n` split between two reads still ends it.
    @Test(.timeLimit(.minutes(1))) func liveInputDropsAnOverlongLineAsItArrives() throws {
        let pipe = Pipe()
        let reader = LineReader(handle: pipe.fileHandleForReading, source: "pipe", maxLineBytes: 4096)
        let writer = pipe.fileHandleForWriting
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            let chunk = Data(repeating: UInt8(ascii: "q"), count: 64 << 10)
            for _ in 0..<48 { writer.write(chunk) }  // 3 MiB, no line break yet
            writer.write(Data("\r".utf8))
            Thread.sleep(forTimeInterval: 0.05)
            writer.write(Data("\nafter\n".utf8))
            try? writer.close()
            done.signal()
        }
        thread.start()
        var largest = 0
        while !reader.waitForInput(timeout: 0.1) { largest = max(largest, reader.bufferCapacity) }
        #expect(reader.next() == .overlong(length: 3 << 20, head: [UInt8](repeating: UInt8(ascii: "q"), count: LineReader.overlongHeadBytes)))
        largest = max(largest, reader.bufferCapacity)
        #expect(largest < 256 << 10, "held \(largest) bytes for a 3 MiB line under a 4 KiB limit")
        #expect(reader.next() == .text(Array("after".utf8)))
        #expect(reader.next() == nil)
        done.wait()
    }

    /// Through the stream: an over-long line (valid JSON, only too long) is rejected with its line
    /// number and a reason, kept in the rejects file by its first bytes, and the lines after it
    /// are applied. It used to be read whole and applied.
    @Test func anOverlongUpdateIsRejectedAndTheRestFlows() throws {
        let folder = temporaryFolder()
        let lines = [Array(StreamTests.join(1).utf8), Self.longUpdate(2, bytes: 2 << 20), Array(StreamTests.join(3).utf8)]
        let input = try write(Self.joined(lines), in: folder)
        let harness = try Harness(ExportRuleTests.yaml)
        let rejects = try RejectsFile(path: folder + "/rejects.jsonl")
        var rejected: [(Int, ProfileExportError)] = []
        let stream = ExportStream(
            engine: harness.engine, reader: try LineReader(path: input), rejects: rejects,
            onReject: { rejected.append(($0, $1)) })
        var exported: [String] = []
        while let item = try stream.nextItem() { exported.append(item.partitionKey) }
        #expect(exported == ["e1", "e3"])
        #expect(rejected.map(\.0) == [2])
        #expect(rejected.first?.1.message.contains("over the limit of 1048576") == true)
        #expect(stream.summary.updatesRead == 3 && stream.summary.rejected == 1)
        let kept = try String(contentsOfFile: folder + "/rejects.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(kept.count == 1)
        let record = try JSONParser.parse(String(kept[0]))
        #expect(record.object?["line"] == .int(2))
        #expect(kept[0].utf8.count < 1024, "only the line's first bytes are kept")
    }

    /// The same through the stream, timed: a 16 MiB line between two updates costs one pass over
    /// its bytes, not one per read (it used to take minutes).
    @Test func aVeryLongLineDoesNotSlowTheStream() throws {
        let folder = temporaryFolder()
        let lines = [Array(StreamTests.join(1).utf8), Self.longUpdate(2, bytes: 16 << 20), Array(StreamTests.join(3).utf8)]
        let input = try write(Self.joined(lines), in: folder)
        let harness = try Harness(ExportRuleTests.yaml)
        let stream = ExportStream(engine: harness.engine, reader: try LineReader(path: input))
        var exported: [String] = []
        while let item = try stream.nextItem() { exported.append(item.partitionKey) }
        #expect(exported == ["e1", "e3"])
        #expect(stream.summary.rejected == 1)
    }

    /// A rejects file that cannot be written (a full disk: /dev/full) is an error naming the file,
    /// the system's reason and the lines not kept — it used to crash the process (`try!` in
    /// FileHandle). The batch is committed: its exports are handed out by the next call.
    @Test func aRejectsFileOnAFullDiskIsAnErrorNotACrash() throws {
        try #require(FileManager.default.fileExists(atPath: "/dev/full"))
        let folder = temporaryFolder()
        let input = try write(Array((StreamTests.join(1) + "\n{bad\n" + StreamTests.join(3) + "\n").utf8), in: folder)
        let harness = try Harness(ExportRuleTests.yaml)
        let stream = ExportStream(engine: harness.engine, reader: try LineReader(path: input), rejects: try RejectsFile(path: "/dev/full"))
        let error = try #require(throws: ProfileExportError.self) { try stream.nextItem() }
        #expect(error.location?.file == "/dev/full")
        #expect(error.message.contains("No space left on device"))
        #expect(error.message.contains("line 2 not kept"))
        #expect(try stream.nextItem()?.partitionKey == "e1")
        #expect(try stream.nextItem()?.partitionKey == "e3")
        #expect(try stream.nextItem() == nil)
    }

    /// The rejects file is rotated to rejects.1.jsonl when an append would take it past its size:
    /// both stay within it, every line whole, the latest rejects in the two; a file opened again
    /// goes on from its size.
    @Test func theRejectsFileIsRotatedAtItsSize() throws {
        let folder = temporaryFolder()
        let path = folder + "/rejects.jsonl"
        func append(_ rejects: RejectsFile, _ lines: ClosedRange<Int>) throws {
            for line in lines { try rejects.append(source: "in", line: line, reason: "bad", text: Array(repeating: UInt8(ascii: "t"), count: 50)) }
        }
        let rejects = try RejectsFile(path: path, maxBytes: 1000)
        #expect(rejects.rotatedPath == folder + "/rejects.1.jsonl")
        try append(rejects, 1...40)
        try append(RejectsFile(path: path, maxBytes: 1000), 41...45)
        func numbers(_ file: String) throws -> [Int] {
            let text = try String(contentsOfFile: file, encoding: .utf8)
            #expect(text.utf8.count <= 1000)
            return try text.split(separator: "\n").map { line in
                guard case .int(let number)? = try JSONParser.parse(String(line)).object?["line"] else { throw CocoaError(.fileReadCorruptFile) }
                return Int(number)
            }
        }
        let older = try numbers(folder + "/rejects.1.jsonl"), newer = try numbers(path)
        #expect(newer.last == 45)
        #expect(older + newer == Array((older.first ?? 0)...45), "the latest rejects, in order, none lost between the two")
        #expect(older.count > 5)
    }
}
