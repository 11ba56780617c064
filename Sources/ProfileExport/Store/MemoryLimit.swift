// Hubcast — how much memory this process may use, for sizing the durable store's page cache.

import Foundation

/// The memory this process may use: the machine's, or the lowest memory limit of its control group
/// and the groups above it when that is lower (a container's limit, a systemd service's
/// `MemoryMax`). Read once, when first asked.
enum MemoryLimit {
    static let bytes: UInt64? = {
        let machine = UInt64(max(0, sysconf(Int32(_SC_PHYS_PAGES)))) &* UInt64(max(0, sysconf(Int32(_SC_PAGESIZE))))
        let read = { (path: String) in try? String(contentsOfFile: path, encoding: .utf8) }
        let group = read("/proc/self/cgroup").flatMap { groupLimit(membership: $0, read: read) }
        return [machine > 0 ? machine : nil, group].compactMap { $0 }.min()
    }()

    /// The lowest limit on the way from the process's groups up to the root, given the text of
    /// `/proc/self/cgroup` and a way to read a file: cgroup v2 (the `0::/path` line; `memory.max`
    /// under `root`) and v1 (the line whose controllers name `memory`; `memory.limit_in_bytes` under
    /// `root/memory`). `nil` when no group sets one.
    static func groupLimit(membership: String, root: String = "/sys/fs/cgroup", read: (String) -> String?) -> UInt64? {
        var lowest: UInt64?
        for line in membership.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3, fields[2].hasPrefix("/") else { continue }
            let base: String, file: String
            if fields[0] == "0", fields[1].isEmpty {
                (base, file) = (root, "memory.max")
            } else if fields[1].split(separator: ",").contains("memory") {
                (base, file) = (root + "/memory", "memory.limit_in_bytes")
            } else {
                continue
            }
            var path = Substring(fields[2])
            while true {
                let folder = path == "/" ? base : base + path
                if let text = read(folder + "/" + file), let limit = UInt64(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                    lowest = min(lowest ?? limit, limit)
                }
                guard path != "/", let slash = path.lastIndex(of: "/") else { break }
                path = slash == path.startIndex ? "/" : path[..<slash]
            }
        }
        return lowest
    }
}
