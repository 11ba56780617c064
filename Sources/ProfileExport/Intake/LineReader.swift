// Hubcast — reading JSON-lines input (a file or standard input), line by line.

public import Foundation

/// Reads lines from a file or standard input (a pipe too: whatever has arrived is used); numbers
/// them from 1.
public final class LineReader {
    /// The file's path, or `-` for standard input.
    public let source: String
    private let handle: FileHandle
    private var buffer: [UInt8] = []
    private var start = 0
    private var finished = false
    /// The number of the last line returned.
    public private(set) var lineNumber = 0

    /// Whether the input is a regular file (not a pipe, terminal or socket, where lines arrive live).
    public let isRegularFile: Bool

    /// Opens `path` (`-` is standard input).
    public convenience init(path: String) throws(ProfileExportError) {
        if path == "-" {
            self.init(handle: FileHandle.standardInput, source: "-")
        } else {
            var status = stat()
            if stat(path, &status) == 0, (status.st_mode & S_IFMT) == S_IFDIR {
                throw ProfileExportError(.unreadableInput, "the input is a folder, not a file of updates", at: .init(file: path))
            }
            guard let opened = FileHandle(forReadingAtPath: path) else {
                throw ProfileExportError(.unreadableInput, "cannot open the input file: \(String(cString: strerror(errno)))", at: .init(file: path))
            }
            self.init(handle: opened, source: path)
        }
    }

    /// Reads from an open handle; `source` names it in rejects and messages.
    public init(handle: FileHandle, source: String) {
        self.handle = handle
        self.source = source
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
        buffer[start...].contains(0x0A) || (finished && start < buffer.count)
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

    /// The next line without its line break, or `nil` at the end of the input.
    public func next() -> [UInt8]? {
        while true {
            if let newline = buffer[start...].firstIndex(of: 0x0A) {
                var end = newline
                if end > start, buffer[end - 1] == 0x0D { end -= 1 }
                let line = Array(buffer[start..<end])
                start = newline + 1
                lineNumber += 1
                return line
            }
            if finished {
                guard start < buffer.count, !waitsForLineEnd else { return nil }
                let line = Array(buffer[start...])
                start = buffer.count
                lineNumber += 1
                return line
            }
            readAvailable()
        }
    }

    /// One read(2) into the buffer: what has arrived (a pipe need not fill the buffer first); marks
    /// the end of the input.
    private func readAvailable() {
        if start > 0 {
            buffer.removeFirst(start)
            start = 0
        }
        let old = buffer.count
        buffer.append(contentsOf: repeatElement(0, count: 1 << 16))
        var count = 0
        var error: Int32 = 0
        repeat {
            count = buffer.withUnsafeMutableBytes { raw in
                read(handle.fileDescriptor, raw.baseAddress! + old, 1 << 16)
            }
            error = count < 0 ? errno : 0
        } while error == EINTR
        buffer.removeLast(buffer.count - old - max(count, 0))
        if count < 0 { failure = String(cString: strerror(error)) }
        if count <= 0 { finished = true }
    }
}

/// Where malformed updates are kept aside: one JSON line each with source, line number, reason
/// and the original text (`rejects.jsonl` in the store folder).
public final class RejectsFile {
    public let path: String
    private let handle: FileHandle

    public init(path: String) throws(ProfileExportError) {
        self.path = path
        if !FileManager.default.fileExists(atPath: path) {
            _ = FileManager.default.createFile(atPath: path, contents: nil)
        }
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw ProfileExportError(.store, "cannot write the rejects file", at: .init(file: path))
        }
        handle.seekToEndOfFile()
        self.handle = handle
    }

    /// Appends one rejected line.
    public func append(source: String, line: Int, reason: String, text: [UInt8]) {
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
        handle.write(Data(writer.bytes + [0x0A]))
    }

    /// Forces what was appended to disk.
    public func synchronize() { try? handle.synchronize() }
}
