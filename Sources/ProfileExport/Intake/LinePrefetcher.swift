// Hubcast — reading and parsing the next batches of a file while the engine applies the current one.

import Foundation

/// One input line read ahead: its number, its bytes (for the rejects file and a retry), and the
/// update it parses to (or why it does not).
struct ParsedLine {
    var number: Int
    var bytes: [UInt8]
    var update: Result<ProfileUpdate, ProfileExportError>

    /// The next line of `reader` worth applying — past `skipThrough` (already committed), not blank —
    /// parsed; `nil` at the end of the input. A line over the reader's limit is a rejected line
    /// with its first bytes.
    static func next(from reader: LineReader, skipThrough: Int) -> ParsedLine? {
        while let line = reader.next() {
            let number = reader.lineNumber
            if number <= skipThrough { continue }
            switch line {
            case .text(let bytes):
                if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
                return ParsedLine(number: number, bytes: bytes)
            case .overlong(let length, let head):
                let error = ProfileExportError(
                    .invalidUpdate,
                    "the line is \(length) bytes long, over the limit of \(reader.maxLineBytes) (maxLineBytes); "
                        + "skipped, and only its first \(head.count) bytes are kept")
                return ParsedLine(number: number, bytes: head, update: .failure(error))
            }
        }
        return nil
    }

    init(number: Int, bytes: [UInt8], update: Result<ProfileUpdate, ProfileExportError>) {
        self.number = number
        self.bytes = bytes
        self.update = update
    }

    init(number: Int, bytes: [UInt8]) {
        self.number = number
        self.bytes = bytes
        update = bytes.withUnsafeBufferPointer { bytes in
            Result { () throws(ProfileExportError) in try ProfileUpdate(json: JSONParser.parse(bytes: bytes)) }
        }
    }
}

/// Reads a regular file's lines in batches on a thread of its own and parses them, at most three
/// batches ahead of the consumer (two waiting, one being read), so that parsing (a tenth of an
/// update's cost) runs beside the engine. Pipes and terminals are not read ahead: their lines are
/// applied as they arrive.
///
/// While it runs, the prefetcher alone uses the reader. At the end of the input it stops; after
/// ``LineReader/resume()`` (a growing file), ``start()`` reads on.
final class LinePrefetcher: @unchecked Sendable {
    /// The lines of one batch, and whether the input ended after them.
    struct Batch {
        var lines: [ParsedLine] = []
        var ended = false
    }

    private let reader: LineReader
    private let batchSize: Int
    private let skipThrough: Int
    /// Guards everything below.
    private let condition = NSCondition()
    private var ready: [Batch] = []
    private var running = false
    private var stopped = false

    init(reader: LineReader, batchSize: Int, skipThrough: Int) {
        self.reader = reader
        self.batchSize = batchSize
        self.skipThrough = skipThrough
    }

    /// Starts reading ahead (again, after the end of a growing file).
    func start() {
        condition.lock()
        defer { condition.unlock() }
        guard !running, !stopped else { return }
        running = true
        let thread = Thread { [self] in readAhead() }
        thread.name = "hubcast-read-ahead"
        thread.start()
    }

    /// The next batch, waiting for it; one with `ended` set is the last before the end of the input.
    func next() -> Batch {
        condition.lock()
        defer { condition.unlock() }
        while ready.isEmpty {
            if !running { return Batch(ended: true) }
            condition.wait()
        }
        condition.broadcast()
        return ready.removeFirst()
    }

    /// Stops reading ahead (the stream is done with the input).
    func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    private func readAhead() {
        var ended = false
        while !ended {
            var batch = Batch()
            while batch.lines.count < batchSize {
                guard let line = ParsedLine.next(from: reader, skipThrough: skipThrough) else {
                    ended = true
                    break
                }
                batch.lines.append(line)
            }
            batch.ended = ended
            condition.lock()
            while ready.count >= 2 && !stopped { condition.wait() }
            if stopped {
                running = false
                condition.broadcast()
                condition.unlock()
                return
            }
            ready.append(batch)
            if ended { running = false }
            condition.broadcast()
            condition.unlock()
        }
    }
}
