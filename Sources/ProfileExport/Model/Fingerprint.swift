// Hubcast — a stable 64-bit fingerprint of bytes (FNV-1a), to tell whether something changed.

/// FNV-1a over bytes: the same input gives the same value in every run and on every machine.
struct Fingerprint {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func add(_ bytes: some Sequence<UInt8>) {
        for byte in bytes { value = (value ^ UInt64(byte)) &* 0x100_0000_01b3 }
    }
}
