// Hubcast — a SQLite VFS that hands the WAL's appends to the OS in large writes.

import Foundation
import GRDBSQLite

/// A VFS layered over SQLite's default one that gathers the writes of a WAL file into one buffer.
///
/// SQLite appends each changed page to the WAL with two `pwrite` calls (the 24-byte frame header,
/// then the page): a batch of 1,000 updates to random profiles makes ~2,000 system calls. This
/// layer keeps consecutive appends in a 64 KiB buffer and writes them in one call when:
/// - a **commit frame**'s header, then its page, were written (a frame header whose second field,
///   the database size after the commit, is not zero — SQLite's WAL format; at a commit that wrote
///   frames over, SQLite rewrites the frames' checksums after the commit frame, its header last).
///   So when a commit returns, its frames are in the file, as without the layer: a kill -9 loses nothing committed, and readers
///   (other connections, other processes), who learn of frames from the WAL index only after the
///   commit frame was written, read them from the file. A failed write fails the commit;
/// - a write does not follow the buffered bytes, or would not fit;
/// - anything else touches the file: read, size, truncate, sync, file control, unlock, close.
/// Every other file (the database, the journal) goes straight to the default VFS.
///
/// The store opens its file through this VFS with a `file:` URI (see ``uri(forPath:)``).
enum WALAppendBuffer {
    /// The VFS's registered name.
    static let name = "hubcast-wal-buffer"
    /// The buffer of each WAL file.
    static let capacity = 64 << 10  // the default VFS writes at most 128 KiB - 1 bytes per call

    /// The URI that opens `path` through this VFS, or `path` itself when the SQLite library does
    /// not read URIs (then nothing is buffered). Registers the VFS on first use.
    static func uri(forPath path: String) -> String {
        guard registered, sqlite3_compileoption_used("USE_URI") == 1 else { return path }
        // SQLite decodes %HH in a URI's path; `?` and `#` would end it.
        guard let escaped = path.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) else { return path }
        return "file:\(escaped)?vfs=\(name)"
    }

    /// Whether `connection`'s main database is opened through this VFS.
    static func isInUse(by connection: OpaquePointer) -> Bool {
        var vfs: UnsafeMutablePointer<sqlite3_vfs>?
        guard sqlite3_file_control(connection, "main", SQLITE_FCNTL_VFS_POINTER, &vfs) == SQLITE_OK, let vfs else { return false }
        return vfs == layer
    }

    // MARK: - Registration

    /// SQLite's default VFS, which does the work.
    nonisolated(unsafe) fileprivate static var base: UnsafeMutablePointer<sqlite3_vfs>?
    /// This VFS (kept for the life of the process, as SQLite requires).
    nonisolated(unsafe) private static var layer: UnsafeMutablePointer<sqlite3_vfs>?
    nonisolated(unsafe) fileprivate static var methods: UnsafeMutablePointer<sqlite3_io_methods>?

    /// Registered once, the first time it is read (Swift runs a static's initializer once, thread-safely).
    private static let registered: Bool = {
        guard let found = sqlite3_vfs_find(nil) else { return false }
        base = found
        let vfs = UnsafeMutablePointer<sqlite3_vfs>.allocate(capacity: 1)
        vfs.initialize(to: found.pointee)
        vfs.pointee.pNext = nil
        vfs.pointee.zName = UnsafePointer(strdup(name))
        vfs.pointee.szOsFile = Int32(MemoryLayout<Int>.size * 2) + found.pointee.szOsFile
        vfs.pointee.xOpen = open
        let table = UnsafeMutablePointer<sqlite3_io_methods>.allocate(capacity: 1)
        table.initialize(to: forwardingMethods())
        methods = table
        layer = vfs
        return sqlite3_vfs_register(vfs, 0) == SQLITE_OK
    }()
}

// MARK: - Files

/// What follows SQLite's `sqlite3_file` (one pointer) in the memory of each file of the VFS: the
/// buffer (WAL files only), then the default VFS's own file.
private struct PendingAppends {
    var bytes: UnsafeMutableRawPointer
    var count = 0
    /// Where in the file the buffered bytes go.
    var start: Int64 = 0
    /// The last write was the header of a commit frame: if its page comes next, it is written at once.
    var commitPageNext = false
}

private func pending(_ file: UnsafeMutablePointer<sqlite3_file>?) -> UnsafeMutablePointer<UnsafeMutablePointer<PendingAppends>?> {
    UnsafeMutableRawPointer(file!).advanced(by: MemoryLayout<Int>.size).assumingMemoryBound(to: UnsafeMutablePointer<PendingAppends>?.self)
}

/// The default VFS's file inside one of this VFS.
private func innerFile(_ file: UnsafeMutablePointer<sqlite3_file>?) -> UnsafeMutablePointer<sqlite3_file> {
    UnsafeMutableRawPointer(file!).advanced(by: MemoryLayout<Int>.size * 2).assumingMemoryBound(to: sqlite3_file.self)
}

/// The default VFS's file inside one of this VFS, and its methods (where they are, not a copy).
private func inner(_ file: UnsafeMutablePointer<sqlite3_file>?) -> (UnsafeMutablePointer<sqlite3_file>, UnsafePointer<sqlite3_io_methods>) {
    let base = innerFile(file)
    return (base, base.pointee.pMethods)
}

/// Writes the buffered bytes, if any.
private func flush(_ file: UnsafeMutablePointer<sqlite3_file>?) -> Int32 {
    guard let buffer = pending(file).pointee, buffer.pointee.count > 0 else { return SQLITE_OK }
    let count = buffer.pointee.count
    buffer.pointee.count = 0
    buffer.pointee.commitPageNext = false
    let (base, methods) = inner(file)
    return methods.pointee.xWrite!(base, buffer.pointee.bytes, Int32(count), buffer.pointee.start)
}

/// Flushes, then runs `call` when that worked.
private func flushed(_ file: UnsafeMutablePointer<sqlite3_file>?, then call: () -> Int32) -> Int32 {
    let code = flush(file)
    return code == SQLITE_OK ? call() : code
}

extension WALAppendBuffer {
    static let open:
        @convention(c) (
            UnsafeMutablePointer<sqlite3_vfs>?, UnsafePointer<CChar>?, UnsafeMutablePointer<sqlite3_file>?,
            Int32, UnsafeMutablePointer<Int32>?
        ) -> Int32 = { _, name, file, flags, outFlags in
            guard let file, let base = WALAppendBuffer.base else { return SQLITE_CANTOPEN }
            file.pointee.pMethods = nil
            pending(file).pointee = nil
            let baseFile = innerFile(file)
            baseFile.pointee.pMethods = nil
            let code = base.pointee.xOpen!(base, name, baseFile, flags, outFlags)
            guard code == SQLITE_OK, baseFile.pointee.pMethods != nil else {
                if let methods = baseFile.pointee.pMethods { _ = methods.pointee.xClose!(baseFile) }
                return code == SQLITE_OK ? SQLITE_CANTOPEN : code
            }
            if flags & SQLITE_OPEN_WAL != 0 {
                let buffer = UnsafeMutablePointer<PendingAppends>.allocate(capacity: 1)
                buffer.initialize(to: PendingAppends(bytes: .allocate(byteCount: WALAppendBuffer.capacity, alignment: 16)))
                pending(file).pointee = buffer
            }
            file.pointee.pMethods = UnsafePointer(WALAppendBuffer.methods!)
            return SQLITE_OK
        }

    /// The methods of every file: the buffer's work, then the default VFS's file's own method.
    /// Version 3 (memory maps); a default file with an older table gets none of the newer calls.
    static func forwardingMethods() -> sqlite3_io_methods {
        var table = sqlite3_io_methods()
        table.iVersion = 3
        table.xClose = { file in
            let code = flush(file)
            if let buffer = pending(file).pointee {
                buffer.pointee.bytes.deallocate()
                buffer.deallocate()
                pending(file).pointee = nil
            }
            let (base, methods) = inner(file)
            let closed = methods.pointee.xClose!(base)
            return code != SQLITE_OK ? code : closed
        }
        table.xRead = { file, data, amount, offset in
            flushed(file) {
                let (base, methods) = inner(file); return methods.pointee.xRead!(base, data, amount, offset)
            }
        }
        table.xWrite = { file, data, amount, offset in
            let (base, methods) = inner(file)
            guard let buffer = pending(file).pointee, let data else { return methods.pointee.xWrite!(base, data, amount, offset) }
            let count = Int(amount)
            if buffer.pointee.count > 0,
                offset != buffer.pointee.start + Int64(buffer.pointee.count) || buffer.pointee.count + count > WALAppendBuffer.capacity
            {
                let code = flush(file)
                guard code == SQLITE_OK else { return code }
            }
            if count > WALAppendBuffer.capacity { return methods.pointee.xWrite!(base, data, amount, offset) }
            if buffer.pointee.count == 0 { buffer.pointee.start = offset }
            (buffer.pointee.bytes + buffer.pointee.count).copyMemory(from: data, byteCount: count)
            buffer.pointee.count += count
            if count == 24, data.loadUnaligned(fromByteOffset: 4, as: UInt32.self) != 0 {
                // The header of a commit frame (page number, then the database size after the
                // commit; 0 in other frames). Written now: it may be the commit's last write (SQLite
                // rewrites the checksums of frames it wrote over, the commit frame's last, after
                // the page). When the page follows, it is written next.
                let code = flush(file)
                buffer.pointee.commitPageNext = true
                return code
            }
            return buffer.pointee.commitPageNext ? flush(file) : SQLITE_OK
        }
        table.xTruncate = { file, size in
            flushed(file) {
                let (base, methods) = inner(file); return methods.pointee.xTruncate!(base, size)
            }
        }
        table.xSync = { file, flags in
            flushed(file) {
                let (base, methods) = inner(file); return methods.pointee.xSync!(base, flags)
            }
        }
        table.xFileSize = { file, size in
            flushed(file) {
                let (base, methods) = inner(file); return methods.pointee.xFileSize!(base, size)
            }
        }
        table.xLock = { file, level in
            let (base, methods) = inner(file); return methods.pointee.xLock!(base, level)
        }
        table.xUnlock = { file, level in
            flushed(file) {
                let (base, methods) = inner(file); return methods.pointee.xUnlock!(base, level)
            }
        }
        table.xCheckReservedLock = { file, result in
            let (base, methods) = inner(file); return methods.pointee.xCheckReservedLock!(base, result)
        }
        table.xFileControl = { file, operation, argument in
            flushed(file) {
                let (base, methods) = inner(file); return methods.pointee.xFileControl!(base, operation, argument)
            }
        }
        table.xSectorSize = { file in
            let (base, methods) = inner(file); return methods.pointee.xSectorSize!(base)
        }
        table.xDeviceCharacteristics = { file in
            let (base, methods) = inner(file); return methods.pointee.xDeviceCharacteristics!(base)
        }
        table.xShmMap = { file, page, size, extend, address in
            let (base, methods) = inner(file)
            return methods.pointee.xShmMap?(base, page, size, extend, address) ?? SQLITE_IOERR
        }
        table.xShmLock = { file, offset, count, flags in
            let (base, methods) = inner(file); return methods.pointee.xShmLock?(base, offset, count, flags) ?? SQLITE_IOERR
        }
        table.xShmBarrier = { file in
            let (base, methods) = inner(file); methods.pointee.xShmBarrier?(base)
        }
        table.xShmUnmap = { file, delete in
            let (base, methods) = inner(file); return methods.pointee.xShmUnmap?(base, delete) ?? SQLITE_OK
        }
        table.xFetch = { file, offset, amount, address in
            let (base, methods) = inner(file)
            guard methods.pointee.iVersion >= 3, let fetch = methods.pointee.xFetch else {
                address?.pointee = nil  // no memory map: SQLite reads instead
                return SQLITE_OK
            }
            return fetch(base, offset, amount, address)
        }
        table.xUnfetch = { file, offset, address in
            let (base, methods) = inner(file)
            guard methods.pointee.iVersion >= 3, let unfetch = methods.pointee.xUnfetch else { return SQLITE_OK }
            return unfetch(base, offset, address)
        }
        return table
    }
}
