// Hubcast — a fixed table from names (audience ids, attribute names) to values, for the engine's hot lookups.

/// A read-only map from names to values, built once from the configuration and looked up on every
/// update. Names are hashed with FNV-1a over their UTF-8 bytes (a few nanoseconds for the short
/// names configurations use), not with `Hasher` (SipHash, whose setup alone costs more): the keys
/// are the configuration's own, so there is nothing for an attacker to collide. Open addressing,
/// linear probing, at most half full.
///
/// Names match as Swift strings do (canonically equivalent Unicode is equal): bytes decide for
/// ASCII names; when the name looked up or any name in the table is not ASCII, a name not found by
/// its bytes is compared with every entry.
struct NameTable<Value: Sendable>: Sendable {
    private struct Entry: Sendable {
        var hash: UInt64
        var name: String
        var value: Value
    }

    private var entries: [Entry?]
    private let mask: Int
    let count: Int
    /// Whether some name in the table is not ASCII.
    private let hasNonASCII: Bool

    /// A table of `pairs`; the first value given for a name wins.
    init(_ pairs: some Sequence<(String, Value)>) {
        let pairs = Array(pairs)
        var capacity = 4
        while capacity < 2 * pairs.count { capacity *= 2 }
        entries = [Entry?](repeating: nil, count: capacity)
        mask = capacity - 1
        var stored = 0
        var nonASCII = false
        for (name, value) in pairs {
            let (hash, ascii) = Self.hash(name)
            if !ascii { nonASCII = true }
            var index = Int(truncatingIfNeeded: hash) & mask
            var present = false
            while let entry = entries[index] {
                if entry.hash == hash && entry.name == name {
                    present = true
                    break
                }
                index = (index + 1) & mask
            }
            if !present {
                entries[index] = Entry(hash: hash, name: name, value: value)
                stored += 1
            }
        }
        count = stored
        hasNonASCII = nonASCII
    }

    subscript(name: String) -> Value? {
        let (hash, ascii) = Self.hash(name)
        var index = Int(truncatingIfNeeded: hash) & mask
        while let entry = entries[index] {
            if entry.hash == hash && entry.name == name { return entry.value }
            index = (index + 1) & mask
        }
        guard !ascii || hasNonASCII else { return nil }
        for case let entry? in entries where entry.name == name { return entry.value }
        return nil
    }

    /// FNV-1a, 64 bits, over the name's UTF-8 bytes; and whether they are all ASCII.
    static func hash(_ name: String) -> (UInt64, ascii: Bool) {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        var high: UInt8 = 0
        for byte in name.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
            high |= byte
        }
        return (hash, high < 0x80)
    }
}
