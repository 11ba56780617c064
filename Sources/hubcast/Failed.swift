// Hubcast — `hubcast failed`: the exports that were not accepted after their retries.

import ArgumentParser
import Foundation
import HubcastConnector
import ProfileExport

struct Failed: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, show, redrive or purge the failed exports.",
        discussion: """
            An export goes to the failed-exports store when Event Hubs refused it for good (for example \
            amqp:link:message-size-exceeded or amqp:unauthorized-access) or kept failing after its retries \
            (`retry.retries` in the configuration, default 2). Each keeps its payload, the last condition, \
            the reason and how many times it was sent. `redrive` moves exports back into the outbox: the \
            running connector, or the next `hubcast run`, sends them again. `list` and `show` open the store \
            read-only; no command here needs the destinations' connection settings (their ${NAME}s may be \
            unset).
            """,
        subcommands: [List.self, Show.self, Redrive.self, Purge.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List failed exports, oldest first.",
            discussion: """
                Shows the first --limit (100); when there are more, says how many on stderr. --all shows \
                every one.
                """)
        @Option(help: "The configuration file (YAML).") var config: String
        @Option(help: "Only this dataflow's.") var dataflow: String?
        @Option(help: "At most this many.") var limit = 100
        @Flag(help: "All of them, however many.") var all = false

        func validate() throws {
            guard limit >= 1 else { throw ValidationError("--limit must be at least 1") }
        }

        func run() async throws {
            let configuration = try ExportConfiguration.load(file: config, mode: .inspection)
            try checkDataflow(dataflow, in: configuration)
            let delivery = try openDeliveryStore(configuration, readOnly: true)
            // One more than shown tells whether there are more; only then are they all counted.
            let shown = all ? Int.max : limit
            var failed = try delivery.failedExports(dataflow: dataflow, limit: shown == .max ? .max : shown + 1)
            var total = failed.count
            if failed.count > shown {
                total = try delivery.failedCount(dataflow: dataflow)
                failed.removeLast(failed.count - shown)
            }
            guard !failed.isEmpty else {
                print("no failed exports")
                return
            }
            print("id\tdataflow\tpartition key\tattempts\tcondition\tfailed at")
            for export in failed {
                print(
                    "\(export.id)\t\(export.dataflow)\t\(export.partitionKey)\t\(export.attempts)\t\(export.condition)\t\(timestamp(export.failedAt))"
                )
            }
            if total > failed.count {
                // On stderr: the list on stdout stays one line per export for scripts.
                printError("\(total - failed.count) more failed exports (\(total) in all): --limit \(total) or --all lists them")
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one failed export with its payload.")
        @Option(help: "The configuration file (YAML).") var config: String
        @Argument(help: "The failed export's id (see `hubcast failed list`).") var id: Int64

        func run() async throws {
            let delivery = try openDeliveryStore(ExportConfiguration.load(file: config, mode: .inspection), readOnly: true)
            guard let export = try delivery.failedExport(id: id) else {
                throw CommandError("no failed export has id \(id) (see `hubcast failed list`)")
            }
            print(
                """
                id:            \(export.id)
                dataflow:      \(export.dataflow)
                destination:   \(export.destination)
                partition key: \(export.partitionKey)
                triggers:      \(export.triggers)
                attempts:      \(export.attempts)
                condition:     \(export.condition)
                reason:        \(export.reason)
                committed at:  \(timestamp(export.enqueuedAt))
                failed at:     \(timestamp(export.failedAt))
                payload:       \(String(decoding: export.payload, as: UTF8.self))
                """)
        }
    }

    struct Redrive: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Move failed exports back into the outbox to be sent again.")
        @OptionGroup var selection: FailedSelection

        func run() async throws {
            let moved = try selection.store().redrive(ids: selection.ids, dataflow: selection.dataflow)
            print(
                "moved \(moved) failed exports back into the outbox; the running connector or the next "
                    + "`hubcast run --config \(selection.config)` sends them")
        }
    }

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete failed exports for good.")
        @OptionGroup var selection: FailedSelection

        func run() async throws {
            print("deleted \(try selection.store().purge(ids: selection.ids, dataflow: selection.dataflow)) failed exports")
        }
    }
}

/// Which failed exports `redrive` and `purge` act on: named ids, or all (of one dataflow).
struct FailedSelection: ParsableArguments {
    @Option(help: "The configuration file (YAML).") var config: String
    @Argument(help: ArgumentHelp("The failed exports' ids (see `hubcast failed list`).", valueName: "id")) var named: [Int64] = []
    @Flag(help: "Every failed export (of --dataflow, if given).") var all = false
    @Option(help: "With --all: only this dataflow's.") var dataflow: String?

    func validate() throws {
        if all == !named.isEmpty { throw ValidationError("name the ids, or pass --all") }
        if dataflow != nil && !all { throw ValidationError("--dataflow goes with --all") }
    }

    /// The ids, or nil for all.
    var ids: [Int64]? { all ? nil : named }

    /// The store of the configuration, after checking `--dataflow` against it.
    func store() throws -> DeliveryStore {
        let configuration = try ExportConfiguration.load(file: config, mode: .inspection)
        try checkDataflow(dataflow, in: configuration)
        return try openDeliveryStore(configuration, readOnly: false)
    }
}

/// A `--dataflow` must name a dataflow of the configuration.
private func checkDataflow(_ dataflow: String?, in configuration: ExportConfiguration) throws {
    guard let dataflow, !configuration.dataflows.contains(where: { $0.id == dataflow }) else { return }
    throw CommandError("no dataflow '\(dataflow)' in the configuration (dataflows: \(configuration.dataflows.map(\.id).joined(separator: ", ")))")
}

/// A time in seconds since 1970, as ISO 8601.
func timestamp(_ seconds: Double) -> String {
    ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: seconds))
}
