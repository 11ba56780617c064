// Hubcast — running the connector from the command line: options, signals, progress, summary.

import ArgumentParser
import Foundation
import HubcastConnector
import Logging
import ProfileExport
import UnixSignals

/// The options of `hubcast run` (and `hubcast demo`) that tune the connector.
struct ConnectorFlags: ParsableArguments {
    @Option(help: "The most events awaiting their outcome per destination (a hub that throttles gets a lower send rate instead).")
    var window = 2000

    @Option(help: "Intake pauses while this many exports wait in the outbox.")
    var outboxLimit = 20_000

    @Option(help: "Backfill exports per second (docs/exports.md#backfill), beside live traffic.")
    var backfillRate: Double = 1000

    @Option(help: "Seconds in-flight sends may take to settle on SIGINT/SIGTERM; the rest stays in the outbox.")
    var drainTimeout: Double = 10

    @Option(
        help:
            "With --input FILE (not --follow): seconds a destination may stay unreachable before the run gives up (its exports stay in the outbox); 0 never gives up."
    )
    var giveUpAfter: Double = 300

    @Flag(help: "While a profile's export is in flight, send only the latest of its waiting exports per dataflow.")
    var coalesce = false

    @Option(help: "A CA file to trust for TLS (for example the emulator's test CA, certs/ca.pem).")
    var caFile: String?

    /// The connector's own ranges (``ConnectorOptions/validate()``), checked before anything runs.
    func validate() throws {
        // Converting a huge or infinite value to a Duration would trap: bound it first.
        guard drainTimeout.isFinite, (0...86_400).contains(drainTimeout) else { throw ValidationError("--drain-timeout must be 0...86400 seconds") }
        guard giveUpAfter.isFinite, (0...86_400).contains(giveUpAfter) else { throw ValidationError("--give-up-after must be 0...86400 seconds") }
        var options = ConnectorOptions()
        apply(to: &options)
        do {
            try options.validate()
        } catch {
            throw ValidationError(error.message)
        }
    }

    func apply(to options: inout ConnectorOptions) {
        options.window = window
        options.waveSize = min(options.waveSize, window)
        options.outboxLimit = outboxLimit
        options.backfillRate = backfillRate
        options.drainTimeout = .milliseconds(Int(drainTimeout * 1000))
        options.coalesce = coalesce
        options.trustedCAFile = caFile
        // A finite run gives up on an unreachable hub; a service (no input, or --follow) keeps trying.
        options.giveUpAfter = giveUpAfter > 0 ? .milliseconds(Int(giveUpAfter * 1000)) : nil
    }
}

/// Runs `connector` until it is done, or until SIGINT/SIGTERM stops it gracefully (a second signal
/// exits at once; everything committed is in the store either way). Shows progress on stderr when
/// it is a terminal; log lines clear it first (``StandardError``).
func runConnector(_ connector: Connector, input: String?, logger: Logger, progress: Bool = true) async throws -> ConnectorReport {
    let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
    let watcher = Task {
        var count = 0
        for await signal in signals {
            count += 1
            if count > 1 { exit(130) }
            logger.notice("\(signal): stopping intake and letting in-flight sends settle (again to quit at once)")
            connector.stop()
        }
    }
    let display =
        progress && isatty(2) != 0
        ? Task {
            while !Task.isCancelled {
                StandardError.showProgress(progressLine(connector.status))
                try? await Task.sleep(for: .milliseconds(500))
            }
        } : nil
    defer {
        watcher.cancel()
        display?.cancel()
        StandardError.clearProgress()
    }
    return try await connector.run(input: input)
}

/// How `hubcast run` ends: its exit status, so that a script or systemd can tell a run that
/// delivered everything from one that did not. The numbers follow BSD's sysexits.h where one fits.
struct RunExit: Equatable, CustomStringConvertible {
    let code: Int32
    let meaning: String

    /// Every export of the run was acknowledged (and the input consumed).
    static let success = RunExit(code: 0, meaning: "every export acknowledged (and the input consumed)")
    /// Anything else that stopped the run: the store, the input, a write error (the message says).
    static let failure = RunExit(code: 1, meaning: "an error stopped the run (store, input, full disk: see the message)")
    /// A bad command line or configuration file (ArgumentParser's own exit status for bad usage).
    static let usage = RunExit(code: 64, meaning: "bad command line, configuration or upload file (EX_USAGE)")
    /// Some exports were refused for good and moved to the failed-exports store.
    static let exportsFailed = RunExit(code: 65, meaning: "some exports failed: see `hubcast failed list` (EX_DATAERR)")
    /// A destination cannot be used: refused credentials, an unknown hub, unreachable past the deadline.
    static let destinationUnavailable = RunExit(
        code: 69, meaning: "a destination is unusable: credentials refused, unknown hub, unreachable")
    /// Stopped (a signal) before everything was delivered: the outbox still holds exports.
    static let workLeft = RunExit(code: 75, meaning: "stopped with exports left in the outbox (EX_TEMPFAIL)")

    static let all: [RunExit] = [.success, .failure, .usage, .exportsFailed, .destinationUnavailable, .workLeft]

    var description: String { "\(code)" }

    /// The status of a run that returned `report`: failed exports first (they need a person; a
    /// later run does not count them again), then exports left in the outbox.
    static func of(_ report: ConnectorReport) -> RunExit {
        if report.status.dataflows.values.contains(where: { $0.counters.failed > 0 }) { return .exportsFailed }
        if report.outbox.values.contains(where: { $0 > 0 }) { return .workLeft }
        return .success
    }

    /// The status of a run that threw `error`.
    static func of(_ error: any Error) -> RunExit {
        switch error {
        case let error as ProfileExportError where error.code == .invalidConfiguration || error.code == .invalidUpload: return .usage
        case let error as ConnectorError where error.code == .invalidOptions: return .usage
        case let error as ConnectorError where error.code == .destination: return .destinationUnavailable
        default: return .failure
        }
    }

    /// The table for `hubcast run --help` and the README.
    static var help: String {
        all.map { "  \($0.code)\(String(repeating: " ", count: 4 - "\($0.code)".count))\($0.meaning)" }.joined(separator: "\n")
    }
}

/// One line of progress: intake, deliveries, outbox, backfill.
func progressLine(_ status: ConnectorStatus) -> String {
    let totals = status.dataflows.values.reduce(into: DeliveryCounters()) { sum, dataflow in
        sum.acknowledged += dataflow.counters.acknowledged
        sum.failed += dataflow.counters.failed
    }
    var line = "updates \(status.updatesRead) · acknowledged \(totals.acknowledged) · failed \(totals.failed) · outbox \(status.outboxDepth)"
    for (dataflow, backfill) in status.backfill.sorted(by: { $0.key < $1.key }) where backfill.done < backfill.total {
        let percent = backfill.total > 0 ? backfill.done * 100 / backfill.total : 100
        let filled = percent / 5
        line += " · backfill \(dataflow) [" + String(repeating: "#", count: filled) + String(repeating: ".", count: 20 - filled) + "] \(percent)%"
    }
    return line
}

/// The per-dataflow table of a status: counters, outbox, latency percentiles.
func dataflowTable(_ rows: [(dataflow: String, counters: DeliveryCounters, outbox: Int, status: ConnectorStatus.Dataflow?)]) -> String {
    let header = ["dataflow", "exported", "acknowledged", "retried", "failed", "skipped", "outbox", "p50 ms", "p95 ms", "p99 ms"]
    var table = [header]
    func milliseconds(_ value: Double?) -> String { value.map { $0 < 10 ? String(format: "%.2f", $0) : String(Int($0.rounded())) } ?? "-" }
    for row in rows {
        let c = row.counters
        table.append([
            row.dataflow, "\(c.exported)", "\(c.acknowledged)", "\(c.retried)", "\(c.failed)", "\(c.skipped)", "\(row.outbox)",
            milliseconds(row.status?.latencyP50), milliseconds(row.status?.latencyP95), milliseconds(row.status?.latencyP99),
        ])
    }
    let widths = header.indices.map { column in table.map { $0[column].count }.max() ?? 0 }
    return table.map { cells in
        cells.enumerated().map { column, cell in
            column == 0
                ? cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
                : String(repeating: " ", count: widths[column] - cell.count) + cell
        }.joined(separator: "  ")
    }.joined(separator: "\n")
}
