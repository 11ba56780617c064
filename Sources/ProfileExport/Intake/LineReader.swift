// Hubcast — reading JSON-lines input (a file or standard input), line by line.

public import Foundation
import Synchronization

/// Reads lines from a file or standard input (a pipe too: whatever has arrived is used); numbers
/// them from 1.
///
/// Each byte is looked at once, however long its line: the search for a line break resumes where
/// the last one stopped. A line longer than ``maxLineBytes`` is not held: its bytes are counted and
/// dropped as they arrive, and it comes out as ``Line/overlong(length:head:)`` with its first
/// bytes, so the reader holds at most the limit and one read (in an array that may have grown to
/// twice that) whatever the input holds.
public final class LineReader {
    /// One line of the input.
    public enum Line: Hashable, Sendable {
        /// A line, without its line break (`\n` or `\r\n`).
        case text([UInt8])
        /// A line longer than ``LineReader/maxLineBytes``, skipped: its length in bytes (without
        /// the line break) and its first ``LineReader/overlongHeadBytes`` bytes.
        case overlong(length: Int, head: [UInt8])
    }

    /// The longest line a reader accepts when none is set: 1 MiB. Profile updates are a few hundred
    /// bytes; a longer line is almost always a broken input (a missing line break, a binary file).
    public static let standardMaxLineBytes = 1 << 20

    /// How many first bytes of an over-long line are kept, to show in the rejects file what it was.
    public static let overlongHeadBytes = 256

    /// The file's path, or `-` for standard input.
    public let source: String
    private let handle: FileHandle
    private var buffer: [UInt8] = []
    /// What one read(2) reads into, before it is appended to `buffer`.
    private var chunk = [UInt8](repeating: 0, count: 1 << 16)
    /// Where the next line starts in `buffer`.
    private var start = 0
    /// `buffer[start..<scanned]` holds no line break: the search goes on from `scanned`.
    private var scanned = 0
    /// The line break that ends the line at `start`, once found.
    private var lineEnd: Int?
    /// The over-long line being skipped: its length so far, its first bytes, and whether the last
    /// byte dropped was a CR (of a `\r\n` split between two reads).
    private var skipped: (length: Int, head: [UInt8], endsWithCR: Bool)?
    private var finished = false
    /// The number of the last line returned.
    public private(set) var lineNumber = 0

    /// The longest line returned as ``Line/text(_:)``, in bytes without the line break; longer
    /// ones are skipped and returned as ``Line/overlong(length:head:)``. At least 1.
    public var maxLineBytes: Int {
        didSet { maxLineBytes = Swift.max(1, maxLineBytes) }
    }

    /// Whether the input is a regular file (not a pipe, terminal or socket, where lines arrive live).
    public let isRegularFile: Bool

    /// Opens `path` (`-` is standard input).
    public convenience init(path: String, maxLineBytes: Int = LineReader.standardMaxLineBytes) throws(ProfileExportError) {
        if path == "-" {
            self.init(handle: FileHandle.standardInput, source: "-", maxLineBytes: maxLineBytes)
        } else {
            var status = stat()
            if stat(path, &status) == 0, (status.st_mode & S_IFMT) == S_IFDIR {
                throw ProfileExportError(.unreadableInput, "the input is a folder, not a file of updates", at: .init(file: path))
            }
            guard let opened = FileHandle(forReadingAtPath: path) else {
                throw ProfileExportError(.unreadableInput, "cannot open the input file: \(String(cString: strerror(errno)))", at: .init(file: path))
            }
            self.init(handle: opened, source: path, maxLineBytes: maxLineBytes)
        }
    }

    /// Reads from an open handle; `source` names it in rejects and messages.
    public init(handle: FileHandle, source: String, maxLineBytes: Int = LineReader.standardMaxLineBytes) {
        self.handle = handle
        self.source = source
        self.maxLineBytes = Swift.max(1, maxLineBytes)
        var status = stat()
        isRegularFile = fstat(handle.fileDescriptor, &status) == 0 && (status.st_mode & S_IFMT) == S_IFREG
    }

    /// Why reading failed (an I/O error), once it has; the input then ends.
    public private(set) var failure: String?

    /// Whether a last line without a line break waits for the rest instead of being returned at the
    /// end of the input (for a file that is still being written, `--follow`). Default: false.
    public var waitsForLineEnd = false

    /// What tells this file from another later written at the same path: its device, inode and a
    /// fingerprint of its first line (nil for what is not a regular file). A checkpoint kept under
    /// the path and this identity never skips lines of a different file.
    public var fileIdentity: String? {
        guard isRegularFile else { return nil }
        var status = stat()
        guard fstat(handle.fileDescriptor, &status) == 0 else { return nil }
        var head = [UInt8](repeating: 0, count: 4096)
        let count = head.withUnsafeMutableBytes { pread(handle.fileDescriptor, $0.baseAddress, $0.count, 0) }
        var fingerprint = Fingerprint()
        let firstLine = head.prefix(max(0, count))
        fingerprint.add(firstLine.prefix { $0 != 0x0A })
        return "\(status.st_dev):\(status.st_ino):\(String(fingerprint.value, radix: 16))"
    }

    /// The store name under which a run keeps how far it applied this input: `input.`, the file's
    /// full path, `#` and its ``fileIdentity``; nil for what is not a regular file (stdin, a pipe),
    /// which cannot be read again. The connector's checkpoint and a dry run's starting point.
    public var checkpointName: String? {
        fileIdentity.map { "input." + URL(fileURLWithPath: source).standardizedFileURL.path + "#" + $0 }
    }

    /// After the end of the input: reads on (a file that grows).
    public func resume() { finished = false }

    /// Whether the file holds bytes not read yet (it grew since its end was reached); always true
    /// for what is not a regular file, whose input cannot be measured.
    public var hasUnreadBytes: Bool {
        guard isRegularFile else { return true }
        var status = stat()
        let position = lseek(handle.fileDescriptor, 0, SEEK_CUR)
        guard fstat(handle.fileDescriptor, &status) == 0, position >= 0 else { return true }
        return Int64(status.st_size) > Int64(position)
    }

    /// Whether a whole line is already read and waiting (``next()`` will not block for it).
    public var hasWaitingLine: Bool {
        findLineEnd() != nil || (finished && (start < buffer.count || skipped != nil))
    }

    /// Waits up to `timeout` seconds for input and reads what arrived; true when ``next()`` will not
    /// block (a whole line is waiting, or the input has ended). Half a line is kept until its end
    /// arrives. Lets a reader of live input stop or do other work instead of blocking in `read`.
    public func waitForInput(timeout: Double) -> Bool {
        if finished || hasWaitingLine { return true }
        var descriptor = pollfd(fd: handle.fileDescriptor, events: Int16(POLLIN), revents: 0)
        guard poll(&descriptor, 1, Int32(timeout * 1000)) > 0 else { return false }
        readAvailable()
        return finished || hasWaitingLine
    }

    /// The bytes the reader's buffer can hold now without growing (for tests of its bound).
    var bufferCapacity: Int { buffer.capacity }
    /// How many bytes the search for line breaks has looked at so far (for tests that it is linear).
    private(set) var bytesSearched = 0

    /// The next line, or `nil` at the end of the input.
    public func next() -> Line? {
        while true {
            if let end = findLineEnd() { return take(upTo: end, lineBreak: true) }
            if finished {
                guard start < buffer.count || skipped != nil, !waitsForLineEnd else { return nil }
                return take(upTo: buffer.count, lineBreak: false)
            }
            readAvailable()
        }
    }

    /// The line break after `start`, searched for in the bytes not searched yet.
    private func findLineEnd() -> Int? {
        if let lineEnd { return lineEnd }
        guard scanned < buffer.count else { return nil }
        let found = buffer.withUnsafeBytes { raw -> Int? in
            memchr(raw.baseAddress! + scanned, 0x0A, raw.count - scanned).map { raw.baseAddress!.distance(to: UnsafeRawPointer($0)) }
        }
        bytesSearched += (found.map { $0 + 1 } ?? buffer.count) - scanned
        scanned = found ?? buffer.count
        lineEnd = found
        return found
    }

    /// Hands out the line from `start` to `end` (its line break, or the end of the input) and moves
    /// past it.
    private func take(upTo end: Int, lineBreak: Bool) -> Line {
        var length = end - start
        let carriageReturn = lineBreak && (length > 0 ? buffer[end - 1] == 0x0D : skipped?.endsWithCR == true)
        if carriageReturn { length -= 1 }
        let line: Line
        if let skipped {
            line = .overlong(length: skipped.length + length, head: skipped.head)
        } else if length > maxLineBytes {
            line = .overlong(length: length, head: Array(buffer[start..<(start + Swift.min(length, Self.overlongHeadBytes))]))
        } else {
            line = .text(Array(buffer[start..<(start + length)]))
        }
        skipped = nil
        start = lineBreak ? end + 1 : end
        scanned = start
        lineEnd = nil
        lineNumber += 1
        return line
    }

    /// One read(2) into the buffer: what has arrived (a pipe need not fill the buffer first); marks
    /// the end of the input. Then drops what belongs to a line already over the limit.
    private func readAvailable() {
        if start > 0 {
            buffer.removeFirst(start)
            scanned -= start
            lineEnd = lineEnd.map { $0 - start }
            start = 0
        }
        var count = 0
        var error: Int32 = 0
        repeat {
            count = chunk.withUnsafeMutableBytes { raw in read(handle.fileDescriptor, raw.baseAddress, raw.count) }
            error = count < 0 ? errno : 0
        } while error == EINTR
        // Copied in one go: appending element by element (or zeros to read into) costs more than
        // the read itself in an unoptimized build.
        if count > 0 { chunk.withUnsafeBufferPointer { buffer.append(contentsOf: UnsafeBufferPointer(rebasing: $0[..<count])) } }
        if count < 0 { failure = String(cString: strerror(error)) }
        if count <= 0 { finished = true }
        shed()
    }

    /// Keeps the buffer within the limit: the bytes of a line with no line break yet are dropped
    /// (counted, the first ones kept) once they are more than ``maxLineBytes`` and a CR.
    private func shed() {
        guard findLineEnd() == nil else { return }
        let count = buffer.count - start
        guard count > 0 else { return }
        let endsWithCR = buffer[buffer.count - 1] == 0x0D
        if let skipped {
            self.skipped = (skipped.length + count, skipped.head, endsWithCR)
        } else if count > maxLineBytes + 1 {
            skipped = (count, Array(buffer[start..<(start + Swift.min(count, Self.overlongHeadBytes))]), endsWithCR)
        } else {
            return
        }
        start = buffer.count
        scanned = start
    }
}

/// Where malformed updates are kept aside: one JSON line each with source, line number, reason
/// and the original text (`rejects.jsonl` in the store folder).
///
/// The file does not grow without bound: an append that would take it past ``maxBytes`` first
/// renames it to ``rotatedPath`` (`rejects.1.jsonl`, replacing the one before) and begins a new
/// one, so the two hold the latest rejects in at most about twice ``maxBytes``. A write that fails
/// (a full disk) throws, naming the file and the system's reason, and leaves no torn line behind.
public final class RejectsFile {
    public let path: String
    /// The size in bytes at which the file is rotated to ``rotatedPath``.
    public let maxBytes: Int
    private var descriptor: Int32
    /// The file's size: what was there when it was opened, and what was appended since.
    private var size: Int

    /// The rotation size when none is given: 64 MiB.
    public static let standardMaxBytes = 64 << 20

    /// Opens (or creates) the file at `path`, to append to it.
    public init(path: String, maxBytes: Int = RejectsFile.standardMaxBytes) throws(ProfileExportError) {
        self.path = path
        self.maxBytes = Swift.max(1, maxBytes)
        (descriptor, size) = try Self.openForAppending(path)
    }

    deinit { close(descriptor) }

    /// Where the file goes when it is rotated: `rejects.1.jsonl` for `rejects.jsonl`.
    public var rotatedPath: String {
        path.hasSuffix(".jsonl") ? String(path.dropLast(6)) + ".1.jsonl" : path + ".1"
    }

    /// Appends one rejected line; throws when it cannot be written (the file is left as it was).
    public func append(source: String, line: Int, reason: String, text: [UInt8]) throws(ProfileExportError) {
        var writer = JSONWriter(capacity: text.count + 128)
        writer.beginObject()
        writer.key("source")
        writer.value(source)
        writer.key("line")
        writer.value(Int64(line))
        writer.key("reason")
        writer.value(reason)
        writer.key("text")
        writer.value(String(decoding: text, as: UTF8.self))
        writer.endObject()
        var record = writer.bytes
        record.append(0x0A)
        if size > 0 && size + record.count > maxBytes { try rotate() }
        let written = writeAll(descriptor, record)
        guard written == 0 else {
            // Whatever part of the line went in is cut off again, so that every line stays whole.
            _ = ftruncate(descriptor, off_t(size))
            throw failure("cannot write the rejects file", written)
        }
        size += record.count
    }

    /// Forces what was appended to disk.
    public func synchronize() throws(ProfileExportError) {
        guard fsync(descriptor) == 0 else { throw failure("cannot write the rejects file to disk", errno) }
    }

    /// Renames the file to ``rotatedPath`` and starts a new, empty one.
    private func rotate() throws(ProfileExportError) {
        guard rename(path, rotatedPath) == 0 else { throw failure("cannot rotate the rejects file to \(rotatedPath)", errno) }
        let (opened, openedSize) = try Self.openForAppending(path)
        close(descriptor)
        descriptor = opened
        size = openedSize
    }

    private static func openForAppending(_ path: String) throws(ProfileExportError) -> (Int32, Int) {
        let descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw ProfileExportError(.store, "cannot open the rejects file: \(String(cString: strerror(errno)))", at: .init(file: path))
        }
        var status = stat()
        let size = fstat(descriptor, &status) == 0 ? Int(status.st_size) : 0
        return (descriptor, size)
    }

    private func failure(_ what: String, _ error: Int32) -> ProfileExportError {
        ProfileExportError(.store, "\(what): \(String(cString: strerror(error)))", at: .init(file: path))
    }
}

/// Writes all of `bytes` to `descriptor`, going on after interruptions and partial writes; returns
/// 0, or the `errno` of the write that failed.
@discardableResult
public func writeAll(_ descriptor: Int32, _ bytes: [UInt8]) -> Int32 {
    bytes.withUnsafeBytes { raw in
        var offset = 0
        while offset < raw.count {
            let count = write(descriptor, raw.baseAddress! + offset, raw.count - offset)
            if count < 0 {
                if errno == EINTR { continue }
                return errno
            }
            offset += count
        }
        return 0
    }
}
