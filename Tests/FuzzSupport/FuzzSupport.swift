// Seeded randomness, case counts and byte mutations for the fuzz suites of every test target
// (ProfileExportTests: updates, rules, configurations; EventHubsTests: connection strings, redaction).

import Foundation

/// How many cases each fuzz test runs and from which seed: `HUBCAST_FUZZ_CASES` (default 3,000,
/// a few seconds; `scripts/fuzz` asks for many more), and each test's own fixed seed mixed with
/// `HUBCAST_FUZZ_SEED` when that is set (other cases), so a run is repeatable; a failure names the
/// seed and the case.
public enum Fuzz {
    public static var cases: Int {
        ProcessInfo.processInfo.environment["HUBCAST_FUZZ_CASES"].flatMap { Int($0) }.map { max(1, $0) } ?? 3000
    }

    /// The seed of the test whose own seed is `base`.
    public static func seed(_ base: UInt64) -> UInt64 {
        base ^ (ProcessInfo.processInfo.environment["HUBCAST_FUZZ_SEED"].flatMap { UInt64($0) } ?? 0)
    }
}

/// SplitMix64: small, fast and the same on every platform, so a seed names one sequence of cases.
public struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Byte-level mutations of a valid input, as fuzzers make them: each keeps most of the input so
/// that the parser gets past its first checks.
public enum Mutation {
    public static func mutate(_ input: [UInt8], dictionary: [[UInt8]], using rng: inout SeededGenerator) -> [UInt8] {
        var bytes = input
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            let position = bytes.isEmpty ? 0 : Int.random(in: 0..<bytes.count, using: &rng)
            switch Int.random(in: 0..<9, using: &rng) {
            case 0 where !bytes.isEmpty:  // flip a bit
                bytes[position] ^= 1 << UInt8.random(in: 0..<8, using: &rng)
            case 1 where !bytes.isEmpty:  // replace a byte with any byte
                bytes[position] = UInt8.random(in: 0...255, using: &rng)
            case 2 where !bytes.isEmpty:  // delete a run
                bytes.removeSubrange(position..<min(bytes.count, position + Int.random(in: 1...8, using: &rng)))
            case 3:  // insert a token of the format
                bytes.insert(contentsOf: dictionary.randomElement(using: &rng)!, at: position)
            case 4:  // truncate
                bytes = Array(bytes.prefix(position))
            case 5 where !bytes.isEmpty:  // duplicate a slice somewhere else
                let end = min(bytes.count, position + Int.random(in: 1...32, using: &rng))
                let slice = Array(bytes[position..<end])
                bytes.insert(contentsOf: slice, at: Int.random(in: 0...bytes.count, using: &rng))
            case 6:  // insert bytes that are not valid UTF-8, or control characters
                let odd: [[UInt8]] = [[0xFF], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0x00], [0x0D], [0x09], [0xE2, 0x82]]
                bytes.insert(contentsOf: odd.randomElement(using: &rng)!, at: position)
            case 7 where !bytes.isEmpty:  // swap two bytes
                bytes.swapAt(position, Int.random(in: 0..<bytes.count, using: &rng))
            default:  // replace a byte with a token of the format
                if !bytes.isEmpty { bytes.remove(at: position) }
                bytes.insert(contentsOf: dictionary.randomElement(using: &rng)!, at: min(position, bytes.count))
            }
        }
        return bytes
    }

    public static func randomBytes(using rng: inout SeededGenerator) -> [UInt8] {
        (0..<Int.random(in: 0...200, using: &rng)).map { _ in
            // Mostly printable ASCII and JSON punctuation, so that some of it looks like JSON.
            Bool.random(using: &rng)
                ? Array("{}[]\":,0123456789.-eE tfnul\\".utf8).randomElement(using: &rng)! : UInt8.random(in: 0...255, using: &rng)
        }
    }
}
