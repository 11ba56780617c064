// Test support beside the fixture: waiting for a condition, a watchdog around a run, counting.

import Foundation
import HubcastConnector

/// Polls `condition` every few milliseconds until it holds. A guard, not a timed assertion: after
/// `seconds` (far beyond what the wait takes) it stops `connector` (so that a run awaited later
/// returns) and throws, so a broken feature fails the test instead of hanging the run.
func waitUntil(_ what: String, seconds: Int = 60, stopping connector: Connector? = nil, _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(seconds)
    while !condition() {
        guard ContinuousClock.now < deadline else {
            connector?.stop()
            throw WaitFailed(what: what)
        }
        try await Task.sleep(for: .milliseconds(2))
    }
}

struct WaitFailed: Error, CustomStringConvertible {
    var what: String
    var description: String { "gave up waiting until \(what)" }
}

/// Counts of each string.
func tally(_ values: [String]) -> [String: Int] {
    values.reduce(into: [:]) { $0[$1, default: 0] += 1 }
}

/// Polls `condition` (a few ms apart) until it holds; false when `limit` polls passed first.
func eventually(_ limit: Int = 2000, _ condition: () throws -> Bool) async rethrows -> Bool {
    for _ in 0..<limit {
        if try condition() { return true }
        try? await Task.sleep(for: .milliseconds(2))
    }
    return try condition()
}

/// Runs `connector` and, if it has not returned `seconds` after `afterStart` ran, stops it (a
/// watchdog: the run is expected to return long before). Returns whether the watchdog fired.
/// `onFire` runs when the watchdog fires, after stopping the connector (to unblock it).
func runWithWatchdog(
    _ connector: Connector, input: String?, seconds: Int,
    afterStart: @Sendable () async throws -> Void = {},
    onFire: @escaping @Sendable () -> Void = {}
) async throws -> (fired: Bool, report: ConnectorReport?) {
    let fired = Flag()
    async let report = connector.run(input: input)
    try await afterStart()
    let watchdog = Task {
        try? await Task.sleep(for: .seconds(seconds))
        if !Task.isCancelled {
            fired.set()
            connector.stop()
            onFire()
        }
    }
    let result = try? await report
    watchdog.cancel()
    return (fired.value, result)
}

/// A flag set once, read from anywhere.
final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var set_ = false
    func set() { lock.withLock { set_ = true } }
    var value: Bool { lock.withLock { set_ } }
}
