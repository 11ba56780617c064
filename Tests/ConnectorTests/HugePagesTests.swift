// The long-running commands start again once with glibc's huge-page malloc, unless told not to.

import Foundation
import Testing

@Suite struct HugePagesTests {
    /// Whether this kernel hands out transparent huge pages on request (otherwise nothing restarts).
    static var kernelAllowsHugePages: Bool {
        let setting = (try? String(contentsOfFile: "/sys/kernel/mm/transparent_hugepage/enabled", encoding: .utf8)) ?? ""
        return setting.contains("[always]") || setting.contains("[madvise]")
    }

    /// Starts `hubcast emulator` with `environment` added, waits for its first line (so it
    /// is past any restart), and returns its `GLIBC_TUNABLES` as the running process has it.
    func tunablesOfRunningEmulator(_ environment: [String: String]) throws -> String? {
        let binary = try #require(CrashTests.hubcast, "build the package first: the test runs the hubcast executable")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["emulator", "--port", "0", "--hub", "one"]
        var inherited = ProcessInfo.processInfo.environment
        inherited["GLIBC_TUNABLES"] = nil
        inherited["HUBCAST_HUGE_PAGES"] = nil
        process.environment = inherited.merging(environment) { $1 }
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer {
            // The emulator runs until SIGINT or SIGTERM.
            process.terminate()
            try? input.fileHandleForWriting.close()
            process.waitUntilExit()
        }
        var printed = Data()
        while !printed.contains(0x0A) {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            printed += chunk
        }
        #expect(String(decoding: printed, as: UTF8.self).hasPrefix("emulator listening"), "the emulator did not start")
        let environ = try Data(contentsOf: URL(fileURLWithPath: "/proc/\(process.processIdentifier)/environ"))
        let variables = environ.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        return variables.first { $0.hasPrefix("GLIBC_TUNABLES=") }.map { String($0.dropFirst("GLIBC_TUNABLES=".count)) }
    }

    @Test func aLongRunningCommandAsksForHugePages() throws {
        let tunables = try tunablesOfRunningEmulator([:])
        if Self.kernelAllowsHugePages {
            #expect(tunables?.contains("glibc.malloc.hugetlb=1") == true, "GLIBC_TUNABLES is \(tunables ?? "unset")")
        } else {
            #expect(tunables == nil, "restarted although the kernel has transparent huge pages off")
        }
    }

    @Test func hugePagesZeroLeavesTheProcessAsItIs() throws {
        #expect(try tunablesOfRunningEmulator(["HUBCAST_HUGE_PAGES": "0"]) == nil)
    }

    @Test func theUsersOwnTunablesAreKept() throws {
        let tunables = try tunablesOfRunningEmulator(["GLIBC_TUNABLES": "glibc.malloc.check=0"])
        #expect(!(tunables ?? "").contains("hugetlb"), "GLIBC_TUNABLES is \(tunables ?? "unset")")
    }
}
