// Hubcast — latency percentiles in constant memory.

import Foundation

/// Latencies in log-spaced buckets (8 per doubling, so a percentile is within 9 % of the truth),
/// from 1 µs to about 3 days, in 300 counters.
public struct LatencyHistogram: Sendable, Hashable {
    private var counts = [Int](repeating: 0, count: 300)
    /// How many latencies were recorded.
    public private(set) var count = 0

    public init() {}

    /// Records one latency in seconds.
    public mutating func record(seconds: Double) {
        let micros = max(1, seconds * 1_000_000)
        let index = min(counts.count - 1, Int((log2(micros) * 8).rounded(.down)))
        counts[index] += 1
        count += 1
    }

    /// The latency in seconds below which `fraction` (0...1) of the recorded ones lie (the upper
    /// edge of its bucket); nil when none was recorded.
    public func percentile(_ fraction: Double) -> Double? {
        guard count > 0 else { return nil }
        let rank = max(1, Int((Double(count) * fraction).rounded(.up)))
        var seen = 0
        for (index, bucketCount) in counts.enumerated() {
            seen += bucketCount
            if seen >= rank { return exp2(Double(index + 1) / 8) / 1_000_000 }
        }
        return nil
    }
}
