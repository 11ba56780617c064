// Hubcast — one connector per store.

import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// An exclusive lock on a store folder (`connector.lock`, with the holder's pid): a second connector
/// on the same store would apply the same input again and send the same outbox rows twice. Released
/// when closed or when the process ends (kill -9 included).
final class StoreLock {
    private var descriptor: Int32

    /// How long a held lock is waited for before it is reported as in use: a lock just released can
    /// stay held for a moment by a child process the holder was starting (it shares the file
    /// description between fork and exec), as when the same process runs connectors one after another.
    static let wait = Duration.seconds(1)

    /// Takes the lock, or throws ``ConnectorError/Code/storeInUse`` naming the process that holds it.
    init(folder: String) throws(ConnectorError) {
        let path = URL(fileURLWithPath: folder).appendingPathComponent("connector.lock").path
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw ConnectorError(.store, "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        let deadline = ContinuousClock.now + Self.wait
        var locked = flock(descriptor, LOCK_EX | LOCK_NB) == 0
        while !locked, ContinuousClock.now < deadline {
            usleep(5_000)
            locked = flock(descriptor, LOCK_EX | LOCK_NB) == 0
        }
        guard locked else {
            var bytes = [UInt8](repeating: 0, count: 32)
            let count = read(descriptor, &bytes, bytes.count)
            let holder = String(decoding: bytes.prefix(max(0, count)), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            Glibc.close(descriptor)
            throw ConnectorError(
                .storeInUse,
                "another connector runs on the store \(folder)\(holder.isEmpty ? "" : " (pid \(holder))"); "
                    + "one store serves one connector at a time")
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(descriptor, 0)
        _ = pwrite(descriptor, pid, pid.count, 0)
    }

    /// Releases the lock.
    func close() {
        guard descriptor >= 0 else { return }
        Glibc.close(descriptor)
        descriptor = -1
    }

    deinit { close() }
}
