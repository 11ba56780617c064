// Hubcast — the emulator's data log: accepted events on disk, read back when it starts again.

import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// The events an emulator stored, appended to `events.log` in its data directory before each
/// delivery is settled, and read back into the partitions when an emulator starts on the same
/// directory, with the same sequence numbers, offsets, enqueued times and partition keys.
///
/// It guards against the process dying (kill -9), not against power loss: each delivery is one
/// `write(2)` that has returned before the delivery is accepted, and the kernel keeps what was
/// written; there is no fsync.
///
/// The file: a 12-byte header (the magic `HUBCASTE` and version 1 as a UInt32), then records, each
/// `length: UInt32, ~length: UInt32, crc32(payload): UInt32, payload`. A payload starts with its
/// kind: ``Kind/hubs`` (every hub and its partition count, written when the file is made and
/// whenever a configuration adds hubs or partitions) or ``Kind/events`` (one delivery: hub,
/// partition, first sequence number and offset, enqueued time, partition key, then each event's
/// encoded message). Integers are little-endian. A process killed mid-write leaves at most a torn
/// last record, which the next start drops; anything else that does not read back is an error.
///
/// Memory retention (``EmulatorConfiguration/retainedEventsPerPartition``) does not apply here:
/// the file keeps every event, and each start reads all of it.
///
/// Used under the emulator's state lock only.
final class EmulatorDataLog {
    enum Kind: UInt8 {
        case hubs = 1
        case events = 2
    }

    static let fileName = "events.log"
    static let magic = Array("HUBCASTE".utf8)
    static let version: UInt32 = 1
    static let headerSize = 12
    static let recordHeaderSize = 12

    let path: String
    private var fd: Int32
    /// The file's length: the end of its last whole record.
    private(set) var size: Int
    /// The record being written, kept between deliveries so that each costs no allocation.
    private var buffer: [UInt8] = []

    private init(path: String, fd: Int32, size: Int) {
        self.path = path
        self.fd = fd
        self.size = size
    }

    deinit { self.close() }

    /// Closes the file (and releases its lock); what comes after is refused.
    func close() {
        guard self.fd >= 0 else { return }
        _ = Glibc.close(self.fd)
        self.fd = -1
    }

    // MARK: - Opening and reading back

    /// Opens (or makes) the log in `directory`, creating the directory if missing, and reads its
    /// events into `store`. Drops a torn last record (truncating the file back to the last whole
    /// one). Throws ``EmulatorError`` when the log is damaged, in use by another emulator, or holds
    /// a hub that the configuration lacks or gives fewer partitions.
    static func open(directory: String, store: inout EmulatorStore, logger: Logger) throws -> EmulatorDataLog {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw EmulatorError(.dataIO, "cannot create the data directory \(directory): \(error.localizedDescription)")
        }
        let path = URL(fileURLWithPath: directory).appendingPathComponent(Self.fileName).path
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw EmulatorError(.dataIO, "cannot open \(path): \(Self.lastError())") }
        // The log holds the file from here; its deinit closes it if reading fails.
        let log = EmulatorDataLog(path: path, fd: fd, size: 0)
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            if errno == EWOULDBLOCK { throw EmulatorError(.dataInUse, "another emulator is using \(path)") }
            throw EmulatorError(.dataIO, "cannot lock \(path): \(Self.lastError())")
        }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw EmulatorError(.dataIO, "cannot read \(path): \(Self.lastError())") }
        let loaded = try Self.load(fd: fd, size: Int(status.st_size), path: path, store: &store)
        if loaded.end < Int(status.st_size) {
            guard ftruncate(fd, off_t(loaded.end)) == 0 else {
                throw EmulatorError(.dataIO, "cannot truncate \(path) to \(loaded.end) bytes: \(Self.lastError())")
            }
            logger.warning("dropped a torn last record of \(path) at offset \(loaded.end) (\(Int(status.st_size) - loaded.end) bytes)")
        }
        log.size = loaded.end
        if loaded.events > 0 { logger.info("read \(loaded.events) event\(loaded.events == 1 ? "" : "s") from \(path)") }
        let hubs = store.hubs.mapValues(\.count)
        if log.size == 0 {
            log.buffer = Self.magic
            log.buffer.appendLittleEndian(Self.version)
        }
        // Record the configuration's hubs when the log does not know all of them yet.
        if hubs.contains(where: { loaded.hubs[$0.key] ?? 0 < $0.value }) {
            log.appendHubs(hubs)
        }
        if !log.buffer.isEmpty { try log.writeBuffer() }
        return log
    }

    /// Reads the records of the file into `store`; returns where the last whole record ends, the
    /// hubs the log declared and how many events it held.
    private static func load(
        fd: Int32, size: Int, path: String, store: inout EmulatorStore
    ) throws -> (end: Int, hubs: [String: Int], events: Int) {
        guard size > 0 else { return (0, [:], 0) }
        guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), base != MAP_FAILED else {
            throw EmulatorError(.dataIO, "cannot map \(path): \(Self.lastError())")
        }
        defer { munmap(base, size) }
        let bytes = UnsafeRawBufferPointer(start: base, count: size)
        var header = Self.magic
        header.appendLittleEndian(Self.version)
        if size < Self.headerSize {
            // Killed while the header was written: a fresh log.
            guard bytes.elementsEqual(header.prefix(size)) else {
                throw EmulatorError(.dataDamaged, "\(path) is not a Hubcast emulator data log (offset 0)")
            }
            return (0, [:], 0)
        }
        guard bytes.prefix(Self.magic.count).elementsEqual(Self.magic) else {
            throw EmulatorError(.dataDamaged, "\(path) is not a Hubcast emulator data log (offset 0)")
        }
        let version = bytes.loadLittleEndian(UInt32.self, at: 8)
        guard version == Self.version else {
            throw EmulatorError(.dataDamaged, "\(path) has version \(version) at offset 8; this emulator reads version \(Self.version)")
        }
        var replay = Replay(path: path)
        var position = Self.headerSize
        while position < size {
            let remaining = size - position
            guard remaining >= Self.recordHeaderSize else { break }  // a torn record header
            let length = bytes.loadLittleEndian(UInt32.self, at: position)
            let check = bytes.loadLittleEndian(UInt32.self, at: position + 4)
            guard length == ~check else {
                throw EmulatorError(.dataDamaged, "\(path): the record at offset \(position) has a damaged length")
            }
            guard remaining - Self.recordHeaderSize >= Int(length) else { break }  // a torn record
            let start = position + Self.recordHeaderSize
            let payload = UnsafeRawBufferPointer(rebasing: bytes[start..<start + Int(length)])
            guard CRC32.checksum(payload) == bytes.loadLittleEndian(UInt32.self, at: position + 8) else {
                throw EmulatorError(.dataDamaged, "\(path): the record at offset \(position) fails its checksum")
            }
            try replay.apply(payload, at: position, store: &store)
            position = start + Int(length)
        }
        return (position, replay.hubs, replay.events)
    }

    /// Applies records to a store in file order.
    private struct Replay {
        let path: String
        /// The hubs the log declared so far, with their largest partition counts.
        var hubs: [String: Int] = [:]
        var events = 0

        mutating func apply(_ payload: UnsafeRawBufferPointer, at offset: Int, store: inout EmulatorStore) throws {
            var cursor = Cursor(bytes: payload)
            do {
                switch Kind(rawValue: try cursor.next(UInt8.self)) {
                case .hubs:
                    for _ in 0..<(try cursor.next(UInt32.self)) {
                        let hub = try cursor.string()
                        let partitions = Int(try cursor.next(UInt32.self))
                        let configured = store.hubs[hub]?.count ?? 0
                        guard configured >= partitions else {
                            throw EmulatorError(
                                .dataMismatch,
                                configured == 0
                                    ? "\(self.path) holds hub '\(hub)' (\(partitions) partitions), which the configuration does not have"
                                    : "\(self.path) holds hub '\(hub)' with \(partitions) partitions; the configuration gives it \(configured)")
                        }
                        self.hubs[hub] = max(self.hubs[hub] ?? 0, partitions)
                    }
                case .events:
                    let hub = try cursor.string()
                    let partition = Int(try cursor.next(UInt32.self))
                    guard partition < self.hubs[hub] ?? 0 else {
                        throw Malformed(reason: "events for \(hub) partition \(partition), which the log never declared")
                    }
                    let sequence = try cursor.next(Int64.self)
                    let eventOffset = try cursor.next(Int64.self)
                    let held = store.hubs[hub]![partition]
                    guard sequence == held.nextSequence, eventOffset == held.nextOffset else {
                        throw Malformed(
                            reason: "\(hub) partition \(partition) continues at sequence number \(sequence), offset \(eventOffset); "
                                + "expected \(held.nextSequence), \(held.nextOffset)")
                    }
                    let enqueuedTime = try cursor.next(Int64.self)
                    let keyLength = try cursor.next(UInt32.self)
                    let key = keyLength == UInt32.max ? nil : String(decoding: try cursor.bytes(Int(keyLength)), as: UTF8.self)
                    let count = try cursor.next(UInt32.self)
                    for _ in 0..<count {
                        let encoded = try cursor.bytes(Int(try cursor.next(UInt32.self)))
                        store.append(encoded, hub: hub, partition: partition, partitionKey: key, now: enqueuedTime)
                    }
                    self.events += Int(count)
                case nil:
                    throw Malformed(reason: "unknown record kind")
                }
                guard cursor.isAtEnd else { throw Malformed(reason: "bytes after the record's end") }
            } catch let malformed as Malformed {
                throw EmulatorError(.dataDamaged, "\(self.path): the record at offset \(offset) is damaged: \(malformed.reason)")
            }
        }
    }

    private struct Malformed: Error {
        var reason: String
    }

    /// Reads little-endian fields from a record's payload.
    private struct Cursor {
        let bytes: UnsafeRawBufferPointer
        var position = 0

        var isAtEnd: Bool { self.position == self.bytes.count }

        mutating func next<T: FixedWidthInteger>(_ type: T.Type) throws -> T {
            guard self.bytes.count - self.position >= MemoryLayout<T>.size else { throw Malformed(reason: "it ends early") }
            defer { self.position += MemoryLayout<T>.size }
            return self.bytes.loadLittleEndian(T.self, at: self.position)
        }

        mutating func bytes(_ count: Int) throws -> [UInt8] {
            guard count >= 0, self.bytes.count - self.position >= count else { throw Malformed(reason: "it ends early") }
            defer { self.position += count }
            return Array(self.bytes[self.position..<self.position + count])
        }

        mutating func string() throws -> String {
            String(decoding: try self.bytes(Int(try self.next(UInt32.self))), as: UTF8.self)
        }
    }

    // MARK: - Writing

    /// Appends one delivery's events as one record with one `write(2)`; returns once the kernel has
    /// it. On failure nothing of the record stays in the file.
    func append<Events: Collection<[UInt8]>>(
        hub: String, partition: Int, firstSequence: Int64, firstOffset: Int64, enqueuedTime: Int64, partitionKey: String?,
        events: Events
    ) throws {
        self.buffer.removeAll(keepingCapacity: true)
        let start = self.beginRecord(.events)
        self.buffer.appendString(hub)
        self.buffer.appendLittleEndian(UInt32(partition))
        self.buffer.appendLittleEndian(firstSequence)
        self.buffer.appendLittleEndian(firstOffset)
        self.buffer.appendLittleEndian(enqueuedTime)
        if let partitionKey {
            self.buffer.appendString(partitionKey)
        } else {
            self.buffer.appendLittleEndian(UInt32.max)
        }
        self.buffer.appendLittleEndian(UInt32(events.count))
        for event in events {
            self.buffer.appendLittleEndian(UInt32(event.count))
            self.buffer.append(contentsOf: event)
        }
        self.endRecord(start)
        try self.writeBuffer()
    }

    /// Adds a hubs record to the buffer.
    private func appendHubs(_ hubs: [String: Int]) {
        let start = self.beginRecord(.hubs)
        self.buffer.appendLittleEndian(UInt32(hubs.count))
        for (hub, partitions) in hubs.sorted(by: { $0.key < $1.key }) {
            self.buffer.appendString(hub)
            self.buffer.appendLittleEndian(UInt32(partitions))
        }
        self.endRecord(start)
    }

    /// Starts a record in the buffer (its header is filled in by ``endRecord(_:)``); returns where.
    private func beginRecord(_ kind: Kind) -> Int {
        let start = self.buffer.count
        self.buffer.append(contentsOf: repeatElement(0, count: Self.recordHeaderSize))
        self.buffer.append(kind.rawValue)
        return start
    }

    /// Fills in the header of the record that starts at `start`: length, its complement, checksum.
    private func endRecord(_ start: Int) {
        let payloadStart = start + Self.recordHeaderSize
        let length = UInt32(self.buffer.count - payloadStart)
        let checksum = self.buffer.withUnsafeBytes { CRC32.checksum(UnsafeRawBufferPointer(rebasing: $0[payloadStart...])) }
        self.buffer.withUnsafeMutableBytes { bytes in
            bytes.storeBytes(of: length.littleEndian, toByteOffset: start, as: UInt32.self)
            bytes.storeBytes(of: (~length).littleEndian, toByteOffset: start + 4, as: UInt32.self)
            bytes.storeBytes(of: checksum.littleEndian, toByteOffset: start + 8, as: UInt32.self)
        }
    }

    /// Writes the buffer at the file's end (one `write(2)` unless the kernel takes less). On an
    /// error it truncates the file back, so that no part of the record stays.
    private func writeBuffer() throws {
        guard self.fd >= 0 else { throw EmulatorError(.dataIO, "\(self.path) is closed") }
        let total = self.buffer.count
        var written = 0
        while written < total {
            let count = self.buffer.withUnsafeBytes { write(self.fd, $0.baseAddress! + written, total - written) }
            if count < 0 {
                if errno == EINTR { continue }
                let error = EmulatorError(.dataIO, "cannot write \(self.path) at offset \(self.size + written): \(Self.lastError())")
                _ = ftruncate(self.fd, off_t(self.size))
                throw error
            }
            written += count
        }
        self.size += total
        self.buffer.removeAll(keepingCapacity: true)
    }

    private static func lastError() -> String { String(cString: strerror(errno)) }
}

/// CRC-32 (IEEE 802.3, as zlib computes it), eight bytes at a step ("slicing by 8"): a byte at a
/// time waits on one table load per byte and was the data log's largest cost per event.
enum CRC32 {
    /// Eight tables of 256 entries, one after the other: table k gives the CRC of a byte followed
    /// by k zero bytes.
    private static let tables: [UInt32] = {
        var tables = [UInt32](repeating: 0, count: 8 * 256)
        for index in 0..<256 {
            var value = UInt32(index)
            for _ in 0..<8 { value = value & 1 != 0 ? 0xEDB8_8320 ^ (value >> 1) : value >> 1 }
            tables[index] = value
        }
        for table in 1..<8 {
            for index in 0..<256 {
                let previous = tables[(table - 1) * 256 + index]
                tables[table * 256 + index] = (previous >> 8) ^ tables[Int(previous & 0xFF)]
            }
        }
        return tables
    }()

    static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        Self.tables.withUnsafeBufferPointer { tables in
            var crc: UInt32 = 0xFFFF_FFFF
            var position = 0
            let count = bytes.count
            while count - position >= 8 {
                let low = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: UInt32.self)) ^ crc
                let high = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: position + 4, as: UInt32.self))
                crc =
                    tables[7 * 256 + Int(low & 0xFF)] ^ tables[6 * 256 + Int((low >> 8) & 0xFF)]
                    ^ tables[5 * 256 + Int((low >> 16) & 0xFF)] ^ tables[4 * 256 + Int(low >> 24)]
                    ^ tables[3 * 256 + Int(high & 0xFF)] ^ tables[2 * 256 + Int((high >> 8) & 0xFF)]
                    ^ tables[256 + Int((high >> 16) & 0xFF)] ^ tables[Int(high >> 24)]
                position += 8
            }
            while position < count {
                crc = tables[Int((crc ^ UInt32(bytes[position])) & 0xFF)] ^ (crc >> 8)
                position += 1
            }
            return ~crc
        }
    }
}

private extension [UInt8] {
    mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { self.append(contentsOf: $0) }
    }

    /// A UInt32 length and the UTF-8 bytes.
    mutating func appendString(_ text: String) {
        let utf8 = text.utf8
        self.appendLittleEndian(UInt32(utf8.count))
        self.append(contentsOf: utf8)
    }
}

private extension UnsafeRawBufferPointer {
    func loadLittleEndian<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T {
        T(littleEndian: self.loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}
