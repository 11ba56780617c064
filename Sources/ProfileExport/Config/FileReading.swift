// Hubcast — reading the configuration's own files (the YAML file, uploads) with the system's
// reason when that fails.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads whole files through the system calls, so that a failure says why: "No such file or
/// directory", "Permission denied", "Is a directory". (Foundation's `contents(atPath:)` only says
/// that it failed.)
public enum FileReading {
    /// Why a file cannot be read: the system's words for its error.
    public struct Failure: Error {
        public var reason: String

        init(errno code: Int32) { self.reason = String(cString: strerror(code)) }
        init(_ reason: String) { self.reason = reason }
    }

    /// The bytes of the file at `path`.
    static func contents(of path: String) throws(Failure) -> [UInt8] {
        let fd = try open(path)
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count == 0 { return bytes }
            if count < 0 {
                if errno == EINTR { continue }
                throw Failure(errno: errno)
            }
            bytes += chunk[0..<count]
        }
    }

    /// Throws unless the file at `path` can be opened for reading (and is not a directory).
    public static func checkReadable(_ path: String) throws(Failure) {
        close(try open(path))
    }

    private static func open(_ path: String) throws(Failure) -> Int32 {
        #if canImport(Glibc)
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        #else
        let fd = Darwin.open(path, O_RDONLY | O_CLOEXEC)
        #endif
        guard fd >= 0 else { throw Failure(errno: errno) }
        var info = stat()
        if fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR {
            close(fd)
            throw Failure(errno: EISDIR)
        }
        return fd
    }
}
