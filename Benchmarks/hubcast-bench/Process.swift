// Hubcast — starting child processes and reading their resource use (for benchmarks).

#if canImport(Glibc)
import Glibc
#endif

func fflushStdout() { fflush(nil) }

/// A child process started with `posix_spawn`, with its stdin and stdout as pipes.
final class ChildProcess {
    let pid: pid_t
    private let stdinFD: Int32
    private let stdoutFD: Int32
    private var reaped = false

    /// Starts `path` with `arguments`; stderr is inherited.
    init(_ path: String, _ arguments: [String]) throws {
        var input: [Int32] = [0, 0]
        var output: [Int32] = [0, 0]
        guard pipe(&input) == 0, pipe(&output) == 0 else { throw CommandError("cannot create pipes") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, input[0], 0)
        posix_spawn_file_actions_adddup2(&actions, output[1], 1)
        posix_spawn_file_actions_addclose(&actions, input[1])
        posix_spawn_file_actions_addclose(&actions, output[0])
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, path, &actions, nil, argv, environ)
        close(input[0])
        close(output[1])
        guard status == 0 else {
            close(input[1])
            close(output[0])
            throw CommandError("cannot start \(path): \(String(cString: strerror(status)))")
        }
        self.pid = pid
        self.stdinFD = input[1]
        self.stdoutFD = output[0]
    }

    /// Reads one line of the child's stdout (blocking), or nil at its end.
    func readLine() -> String? {
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while read(self.stdoutFD, &byte, 1) == 1 {
            if byte == UInt8(ascii: "\n") { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(byte)
        }
        return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self)
    }

    /// Closes the child's stdin (children that run until stdin ends then exit).
    func closeInput() { close(self.stdinFD) }

    /// Sends a signal.
    func signal(_ number: Int32) { kill(self.pid, number) }

    /// Waits for the child; returns its exit status and the CPU seconds and peak RSS (KiB) it used.
    @discardableResult
    func wait() -> (status: Int32, cpuSeconds: Double, maxRSSKiB: Int) {
        var status: Int32 = 0
        var usage = rusage()
        wait4(self.pid, &status, 0, &usage)
        self.reaped = true
        close(self.stdoutFD)
        return (status, cpuSeconds(usage), Int(usage.ru_maxrss))
    }

    deinit {
        if !self.reaped {
            kill(self.pid, SIGKILL)
            var status: Int32 = 0
            waitpid(self.pid, &status, 0)
        }
    }
}

func cpuSeconds(_ usage: rusage) -> Double {
    Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec)
        + Double(usage.ru_stime.tv_usec) / 1e6
}

/// CPU seconds and peak RSS (KiB) of this process so far.
func selfUsage() -> (cpuSeconds: Double, maxRSSKiB: Int) {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return (cpuSeconds(usage), Int(usage.ru_maxrss))
}

/// A free TCP port on 127.0.0.1 (bound and released; another process could take it meanwhile).
func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    return withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw -> Int in
            _ = bind(fd, raw, length)
            getsockname(fd, raw, &length)
            return Int(UInt16(bigEndian: pointer.pointee.sin_port))
        }
    }
}

/// The `hubcast` executable built beside this one (`swift build --product hubcast` with the same
/// configuration), which the benchmarks run as the product runs.
func hubcastPath() -> String {
    let path = executablePath()
    return String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)]) + "/hubcast"
}

/// The path of this executable.
func executablePath() -> String {
    var buffer = [CChar](repeating: 0, count: 4096)
    let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    guard count > 0 else { return CommandLine.arguments[0] }
    return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// A command failure, printed as `Error: <description>` without the usage text.
struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
