// Hubcast — the stores' in-memory index of profile ids: one probe in one array per lookup.

/// Profile id → slot, for the memory store (its slots) and the SQLite store (keys − 1). A
/// `Dictionary<String, Int64>` reads three places per lookup (its occupancy bits, the key, the
/// value), each a cache miss among millions of ids; this table keeps, per entry, 32 bits of the id's
/// hash and the slot in one word (8 bytes, at most half full: 16–32 bytes per id), and the store
/// checks the id itself where it keeps it beside the profile (read next anyway). Ids are hashed with
/// Swift's seeded `Hasher`, as a dictionary does: ids come from input, so collisions cannot be
/// forced. Open addressing, linear probing, at most half full, deletion by shifting back.
struct IdIndex {
    /// 0: empty; otherwise the id's hash (low 32 bits) above, slot + 1 below. The hash bits
    /// decide where the entry's probe starts (tables up to 2^32 entries).
    private var entries = [UInt64](repeating: 0, count: 16)
    private(set) var count = 0

    static func hash(_ id: String) -> UInt64 { UInt64(UInt32(truncatingIfNeeded: id.hashValue)) }
    private func home(_ entry: UInt64) -> Int { Int(entry >> 32) & (entries.count - 1) }
    private static func slot(_ entry: UInt64) -> Int { Int(entry & 0xFFFF_FFFF) - 1 }

    /// Whether the index can hold `slot` (0 up to 2^32 − 2).
    static func canHold(slot: Int) -> Bool { slot >= 0 && slot < 0xFFFF_FFFF }

    /// The slot of `id`, given the id each slot holds.
    func slot(of id: String, idAt: (Int) -> String?) -> Int? {
        slot(of: id, where: { idAt($0) == id })
    }

    /// The entry where the probe for an id of hash `hash` starts (read ahead of a lookup).
    func firstEntry(hash: UInt64) -> UInt64 { entries[Int(hash) & (entries.count - 1)] }

    /// The first slot entered for `id` that `holds` confirms (it is called only for slots entered
    /// with the same hash bits, usually once).
    func slot<Failure: Error>(of id: String, where holds: (Int) throws(Failure) -> Bool) throws(Failure) -> Int? {
        try slot(hash: Self.hash(id), where: holds)
    }

    /// ``slot(of:where:)`` for an id whose ``hash(_:)`` is `hash`.
    func slot<Failure: Error>(hash: UInt64, where holds: (Int) throws(Failure) -> Bool) throws(Failure) -> Int? {
        let mask = entries.count - 1
        var index = Int(hash) & mask
        while entries[index] != 0 {
            let entry = entries[index]
            if entry >> 32 == hash, try holds(Self.slot(entry)) { return Self.slot(entry) }
            index = (index + 1) & mask
        }
        return nil
    }

    /// Adds `id` at `slot`, unless it is there already.
    mutating func insert(_ id: String, slot: Int) {
        precondition(Self.canHold(slot: slot), "the index holds fewer than 2^32 slots")
        if 2 * (count + 1) > entries.count { grow() }
        if place(Self.hash(id) << 32 | UInt64(slot + 1)) { count += 1 }
    }

    /// Removes `id`, which is at `slot`.
    mutating func remove(_ id: String, slot: Int) {
        let wanted = Self.hash(id) << 32 | UInt64(slot + 1)
        let mask = entries.count - 1
        var hole = home(wanted)
        while entries[hole] != wanted {
            guard entries[hole] != 0 else { return }
            hole = (hole + 1) & mask
        }
        // Later entries of the run move back into the hole when their probe starts at or before it.
        var next = (hole + 1) & mask
        while entries[next] != 0 {
            let start = home(entries[next])
            let reachable = hole <= next ? (start <= hole || start > next) : (start <= hole && start > next)
            if reachable {
                entries[hole] = entries[next]
                hole = next
            }
            next = (next + 1) & mask
        }
        entries[hole] = 0
        count -= 1
    }

    /// Puts `entry` in the first free place of its run; `false` when the run has it already.
    @discardableResult
    private mutating func place(_ entry: UInt64) -> Bool {
        let mask = entries.count - 1
        var index = home(entry)
        while entries[index] != 0 {
            if entries[index] == entry { return false }
            index = (index + 1) & mask
        }
        entries[index] = entry
        return true
    }

    private mutating func grow() {
        let old = entries
        entries = [UInt64](repeating: 0, count: old.count * 2)
        for entry in old where entry != 0 { place(entry) }
    }
}
