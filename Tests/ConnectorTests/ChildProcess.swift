// Child processes for tests that run the `hubcast` executable: `runChild` and `HubcastCLI` to
// completion, `HubcastProcess` in the background. Neither holds a thread of Swift's cooperative pool
// while the child runs: the pool has one thread per core, and a test blocked in read(2) or
// waitpid(2) there stalls every other test's tasks (connectors, emulators, watchdogs).

import Foundation
import Testing

/// How a child process ended and what it printed.
struct ChildOutcome: Sendable {
    var status: Int32
    var reason: Process.TerminationReason
    var output: String
    var errors: String
}

/// Runs `executable` with `arguments` (`environment` replaces the inherited one if given; `input`
/// is written to its stdin, else stdin is empty) and returns once it exited and both of its
/// outputs are read to the end; after `timeout` it is sent SIGTERM. The reading and waiting happen
/// on Dispatch threads.
func runChild(
    _ executable: String, _ arguments: [String], environment: [String: String]? = nil,
    input: Data? = nil, timeout: Duration = .seconds(120)
) async throws -> ChildOutcome {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let environment { process.environment = environment }
    let output = Pipe(), errors = Pipe(), stdin = Pipe()
    process.standardOutput = output
    process.standardError = errors
    process.standardInput = input == nil ? FileHandle.nullDevice : stdin
    let collected = Collected()
    let done = DispatchGroup()
    done.enter()
    process.terminationHandler = { _ in done.leave() }
    do {
        try process.run()
    } catch {
        done.leave()
        throw error
    }
    DispatchQueue.global().async(group: done) { collected.output = output.fileHandleForReading.readDataToEndOfFile() }
    DispatchQueue.global().async(group: done) { collected.errors = errors.fileHandleForReading.readDataToEndOfFile() }
    if let input {
        DispatchQueue.global().async(group: done) {
            try? stdin.fileHandleForWriting.write(contentsOf: input)
            try? stdin.fileHandleForWriting.close()
        }
    }
    let watchdog = DispatchWorkItem { if process.isRunning { process.terminate() } }
    let (seconds, attoseconds) = timeout.components
    DispatchQueue.global().asyncAfter(deadline: .now() + Double(seconds) + Double(attoseconds) * 1e-18, execute: watchdog)
    await withCheckedContinuation { continuation in done.notify(queue: .global()) { continuation.resume() } }
    watchdog.cancel()
    return ChildOutcome(
        status: process.terminationStatus, reason: process.terminationReason,
        output: String(decoding: collected.output, as: UTF8.self),
        errors: String(decoding: collected.errors, as: UTF8.self))
}

/// Runs the `hubcast` executable the package built.
enum HubcastCLI {
    struct Result {
        var status: Int32
        var reason: Process.TerminationReason
        var output: String
        var errors: String
        var all: String { output + errors }
    }

    /// Runs `hubcast arguments` with `environment` added to this process's, less
    /// `EVENTHUBS_CONNECTION_STRING` (a nil value removes a variable); `asNobody` runs it as user
    /// `nobody` (through setpriv), who may read the test's files but write none of them. Sent
    /// SIGTERM after `timeout`.
    static func run(
        _ arguments: [String], environment: [String: String?] = [:], asNobody: Bool = false,
        timeout: Duration = .seconds(120)
    ) async throws -> Result {
        let binary = try #require(CrashTests.hubcast, "build the package first: the test runs the hubcast executable")
        var variables = ProcessInfo.processInfo.environment
        variables["EVENTHUBS_CONNECTION_STRING"] = nil
        for (name, value) in environment { variables[name] = value }
        let outcome =
            asNobody
            ? try await runChild(
                "/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "--", binary] + arguments,
                environment: variables, timeout: timeout)
            : try await runChild(binary, arguments, environment: variables, timeout: timeout)
        return Result(status: outcome.status, reason: outcome.reason, output: outcome.output, errors: outcome.errors)
    }
}

/// What the reading threads collected; each field is written by one thread before it leaves the
/// group and read only after the group is done.
private final class Collected: @unchecked Sendable {
    var output = Data()
    var errors = Data()
}

/// Runs the `hubcast` executable in the background, its output collected in files.
final class HubcastProcess {
    let process = Process()
    private let folder: String

    /// Starts `hubcast arguments` (or another `executable`); stdout and stderr go to the handles
    /// given, else to files read by ``output`` and ``errors``.
    init(
        _ arguments: [String], stdout: FileHandle? = nil, stderr: FileHandle? = nil, environment: [String: String] = [:],
        executable: String? = nil
    ) throws {
        let binary = try executable ?? #require(CrashTests.hubcast, "build the package first: the test runs the hubcast executable")
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("hubcast-process-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: folder + "/stdout", contents: nil)
        _ = FileManager.default.createFile(atPath: folder + "/stderr", contents: nil)
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = stdout ?? FileHandle(forWritingAtPath: folder + "/stdout")
        process.standardError = stderr ?? FileHandle(forWritingAtPath: folder + "/stderr")
        try process.run()
    }

    deinit {
        if process.isRunning { process.terminate() }
        try? FileManager.default.removeItem(atPath: folder)
    }

    func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    /// Waits for the process to end (at most `seconds`, then kills it and fails).
    func wait(seconds: Double = 120) async throws {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while process.isRunning {
            guard ContinuousClock.now < deadline else {
                process.terminate()
                throw WaitFailed(what: "hubcast \(process.arguments?.first ?? "") ends")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        process.waitUntilExit()
    }

    /// Runs `hubcast arguments` with its stdout (`closing: .stdout`) or stderr a pipe whose reader
    /// is gone before it starts writing, until it ends.
    static func runWithClosedPipe(_ arguments: [String], closing: ClosedPipe) async throws -> HubcastProcess {
        let pipe = Pipe()
        let run = try HubcastProcess(
            arguments, stdout: closing == .stdout ? pipe.fileHandleForWriting : nil,
            stderr: closing == .stderr ? pipe.fileHandleForWriting : nil)
        try pipe.fileHandleForWriting.close()
        try pipe.fileHandleForReading.close()
        try await run.wait()
        return run
    }

    enum ClosedPipe { case stdout, stderr }

    var status: Int32 { process.terminationStatus }
    var output: String { (try? String(contentsOfFile: folder + "/stdout", encoding: .utf8)) ?? "" }
    var errors: String { (try? String(contentsOfFile: folder + "/stderr", encoding: .utf8)) ?? "" }
}
