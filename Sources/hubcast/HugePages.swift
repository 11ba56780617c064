// Hubcast — the long-running commands keep their heap in transparent huge pages.

#if canImport(Glibc)
import Glibc
#endif

/// Profiles in a large in-memory store are read at random: with 4 KiB pages most of those reads also
/// miss the TLB, and on a virtual machine each miss walks two levels of page tables. glibc's malloc
/// puts its heap in 2 MiB transparent huge pages when the `glibc.malloc.hugetlb` tunable asks for it
/// (with a 64 MiB `top_pad`, so the heap grows in pieces large enough to hold huge pages); glibc reads
/// tunables only when a process starts, so the commands that hold large heaps start themselves again,
/// once, with `GLIBC_TUNABLES` set. The benchmarks (Benchmarks/) start with the same tunables;
/// BENCHMARKS.md has what they change.
///
/// Nothing happens when `GLIBC_TUNABLES` is already set (the user's own tuning, or the restarted
/// process), when `HUBCAST_HUGE_PAGES=0`, or when the kernel has transparent huge pages off.
enum HugePages {
    static let tunables = "glibc.malloc.hugetlb=1:glibc.malloc.top_pad=67108864"
    static let commands: Set<String> = ["run", "demo", "emulator"]

    static func restartIfUseful() {
        #if os(Linux)
        let arguments = CommandLine.arguments
        guard arguments.count > 1, commands.contains(arguments[1]), getenv("GLIBC_TUNABLES") == nil,
            environment("HUBCAST_HUGE_PAGES") != "0", kernelAllowsHugePages()
        else { return }
        setenv("GLIBC_TUNABLES", tunables, 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        unsetenv("GLIBC_TUNABLES")  // could not start again: carry on as we are
        #endif
    }

    private static func environment(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }

    /// Whether `/sys/kernel/mm/transparent_hugepage/enabled` selects `always` or `madvise`.
    private static func kernelAllowsHugePages() -> Bool {
        guard let file = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r") else { return false }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 128)
        guard fgets(&line, Int32(line.count), file) != nil else { return false }
        let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return text.contains("[always]") || text.contains("[madvise]")
    }
}
