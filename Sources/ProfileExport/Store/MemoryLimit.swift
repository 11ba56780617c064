// Hubcast — how much memory this process may use, for sizing the durable store's page cache.

import Foundation

/// The memory this process may use: the machine's, or its control group's limit when that is lower
/// (a container's memory limit). Read once, when first asked.
enum MemoryLimit {
    static let bytes: UInt64? = {
        let machine = UInt64(max(0, sysconf(Int32(_SC_PHYS_PAGES)))) &* UInt64(max(0, sysconf(Int32(_SC_PAGESIZE))))
        let group = ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"].lazy
            .compactMap { try? String(contentsOfFile: $0, encoding: .utf8) }.first.flatMap(groupLimit)
        return [machine > 0 ? machine : nil, group].compactMap { $0 }.min()
    }()

    /// A control group's limit file read: a number of bytes, or `max` (cgroup v2) for none. cgroup v1
    /// writes a huge number for none, which the machine's size then undercuts.
    static func groupLimit(_ text: String) -> UInt64? {
        UInt64(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
