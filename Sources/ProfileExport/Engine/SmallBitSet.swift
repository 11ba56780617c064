// Hubcast — a set of small integers that allocates nothing below 64.

/// A set of non-negative integers (indexes of rules or mapped paths) in one word; only members of
/// 64 and above take an array. Iterates in ascending order.
struct SmallBitSet: Sequence {
    private var low: UInt64 = 0
    private var high: [UInt64] = []

    var isEmpty: Bool { low == 0 && high.allSatisfy { $0 == 0 } }

    func contains(_ member: Int) -> Bool {
        if member < 64 { return low & (1 << UInt64(member)) != 0 }
        let word = member / 64 - 1
        return word < high.count && high[word] & (1 << UInt64(member % 64)) != 0
    }

    mutating func insert(_ member: Int) {
        if member < 64 {
            low |= 1 << UInt64(member)
            return
        }
        let word = member / 64 - 1
        if word >= high.count { high += [UInt64](repeating: 0, count: word - high.count + 1) }
        high[word] |= 1 << UInt64(member % 64)
    }

    func makeIterator() -> Iterator { Iterator(bits: low, high: high) }

    struct Iterator: IteratorProtocol {
        var bits: UInt64
        let high: [UInt64]
        var word = 0

        mutating func next() -> Int? {
            while bits == 0 {
                guard word < high.count else { return nil }
                bits = high[word]
                word += 1
            }
            let member = word * 64 + bits.trailingZeroBitCount
            bits &= bits - 1
            return member
        }
    }
}
