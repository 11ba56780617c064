// Hubcast — `hubcast status`: what the connector of a configuration is doing or did.

import ArgumentParser
import Foundation
import HubcastConnector
import ProfileExport

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the connector's state: intake, backfill, destinations and per-dataflow counters.",
        discussion: """
            Reads the store of --config, read-only (it may be in use by a running `hubcast run`, or be a \
            store this user may not write; ${NAME}s of the destinations' connection settings need not be \
            set): the status the \
            connector writes every second (connection state, in-flight window, latency percentiles \
            from the commit of the update that made an export to its acknowledgement, backfill progress), and the counters kept over every run \
            (exported, acknowledged, retried, failed, skipped) with the exports waiting in the outbox.
            """
    )

    @Option(help: "The configuration file (YAML).") var config: String
    @Flag(help: "Print the raw status snapshot (JSON) instead.") var json = false

    func run() async throws {
        let configuration = try ExportConfiguration.load(file: config, mode: .inspection)
        let delivery = try openDeliveryStore(configuration, readOnly: true)
        let snapshot = try delivery.statusSnapshot()
        if json {
            print(snapshot ?? "{}")
            return
        }
        let status = snapshot.flatMap { try? JSONDecoder().decode(ConnectorStatus.self, from: Data($0.utf8)) }
        let counters = try delivery.counters()
        let outbox = try delivery.outboxDepth()
        if let status {
            let age = Date().timeIntervalSince1970 - status.updatedAt
            let alive = status.state != .stopped && kill(status.pid, 0) == 0 && age < 30
            let when = timestamp(status.updatedAt)
            print(
                alive
                    ? "connector: \(status.state) (pid \(status.pid), updated \(String(format: "%.1f", age)) s ago)"
                    : "connector: not running (last status \(when), \(status.state))")
            print(
                "intake: updates read \(status.updatesRead), applied \(status.updatesApplied), rejected \(status.updatesRejected); "
                    + "paused \(status.intakePauses) times for a full outbox (peak \(status.outboxPeak)); alerts \(status.alerts)")
            for (dataflow, backfill) in status.backfill.sorted(by: { $0.key < $1.key }) {
                print("backfill \(dataflow): \(backfill.done) of \(backfill.total) profiles")
            }
            for (destination, state) in status.destinations.sorted(by: { $0.key < $1.key }) {
                print(
                    "destination \(destination): \(alive ? state.connection.description : "not connected (last: \(state.connection))"), window \(state.window), "
                        + "in flight \(state.inFlight), outages \(state.outages)")
                print("  " + throttlingLine(state, alive: alive))
            }
        } else {
            print("connector: has not run on this store yet")
        }
        print("")
        print("counters over every run; latency (update committed → acknowledged) of the last run:")
        let rows = configuration.dataflows.map { dataflow in
            (dataflow.id, counters[dataflow.id] ?? DeliveryCounters(), outbox[dataflow.id] ?? 0, status?.dataflows[dataflow.id])
        }
        print(dataflowTable(rows))
    }
}

/// The connector's tables in the configuration's store; an error when no connector or dry run has
/// made the store yet. `readOnly` (the commands that only look) opens the file read-only: it works
/// on a store this user may not write and never changes it.
func openDeliveryStore(_ configuration: ExportConfiguration, readOnly: Bool) throws -> DeliveryStore {
    try DeliveryStore(store: openProfileStore(configuration, readOnly: readOnly))
}

/// The configuration's profile store; an error, and nothing created, when there is none yet.
func openProfileStore(_ configuration: ExportConfiguration, readOnly: Bool) throws -> SQLiteProfileStore {
    let file = URL(fileURLWithPath: configuration.store).appendingPathComponent("profiles.sqlite").path
    guard FileManager.default.fileExists(atPath: file) else {
        throw CommandError("no store at \(file): `hubcast run --config …` makes it")
    }
    return try SQLiteProfileStore(folder: configuration.store, cacheMiB: configuration.storeCacheMiB, readOnly: readOnly)
}

/// A destination's sending and throttling, for `hubcast status`: "throttling: yes, send rate
/// 1950/s (limit 2010/s), 312 held, server-busy 820 in the last minute, 4210 in all".
func throttlingLine(_ state: ConnectorStatus.Destination, alive: Bool) -> String {
    let rate = alive ? (state.sendRate.map { "send rate \(Int($0.rounded()))/s" } ?? "send rate unknown") : "send rate 0/s"
    let limit = alive ? state.sendRateLimit.map { " (limit \(Int($0.rounded()))/s)" } ?? " (no limit)" : ""
    let held = alive ? state.held.map { ", \($0) held" } ?? "" : ""
    let minute = state.rejectionsLastMinute.map { "\($0) in the last minute, " } ?? ""
    return "throttling: \(alive && state.throttling == true ? "yes" : "no"), \(rate)\(limit)\(held), "
        + "server-busy \(minute)\(state.throttled) in all"
}
