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
            running connector, or the next `hubcast run`, sends them again.
            """,
        subcommands: [List.self, Show.self, Redrive.self, Purge.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List failed exports, oldest first.")
        @Option(help: "The configuration file (YAML).") var config: String
        @Option(help: "Only this dataflow's.") var dataflow: String?
        @Option(help: "At most this many.") var limit = 100

        func validate() throws {
            guard limit >= 1 else { throw ValidationError("--limit must be at least 1") }
        }

        func run() async throws {
            let configuration = try ExportConfiguration.load(file: config)
            try checkDataflow(dataflow, in: configuration)
            let delivery = try openDeliveryStore(configuration)
            let failed = try delivery.failedExports(dataflow: dataflow, limit: limit)
            guard !failed.isEmpty else {
                print("no failed exports")
                return
            }
            print("id\tdataflow\tpartition key\tattempts\tcondition\tfailed at")
            for export in failed {
                print("\(export.id)\t\(export.dataflow)\t\(export.partitionKey)\t\(export.attempts)\t\(export.condition)\t\(timestamp(export.failedAt))")
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one failed export with its payload.")
        @Option(help: "The configuration file (YAML).") var config: String
        @Argument(help: "The failed export's id (see `hubcast failed list`).") var id: Int64

        func run() async throws {
            let delivery = try openDeliveryStore(ExportConfiguration.load(file: config))
            guard let export = try delivery.failedExport(id: id) else {
                throw CommandError("no failed export has id \(id) (see `hubcast failed list`)")
            }
            print("""
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
        @Option(help: "The configuration file (YAML).") var config: String
        @Argument(help: "The ids to redrive.") var ids: [Int64] = []
        @Flag(help: "Redrive every failed export (of --dataflow, if given).") var all = false
        @Option(help: "With --all: only this dataflow's.") var dataflow: String?

        func validate() throws { try checkSelection(ids: ids, all: all, dataflow: dataflow) }

        func run() async throws {
            let configuration = try ExportConfiguration.load(file: config)
            try checkDataflow(dataflow, in: configuration)
            let delivery = try openDeliveryStore(configuration)
            let moved = try delivery.redrive(ids: all ? nil : ids, dataflow: dataflow)
            print("moved \(moved) failed exports back into the outbox; the running connector or the next `hubcast run --config \(config)` sends them")
        }
    }

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete failed exports for good.")
        @Option(help: "The configuration file (YAML).") var config: String
        @Argument(help: "The ids to delete.") var ids: [Int64] = []
        @Flag(help: "Delete every failed export (of --dataflow, if given).") var all = false
        @Option(help: "With --all: only this dataflow's.") var dataflow: String?

        func validate() throws { try checkSelection(ids: ids, all: all, dataflow: dataflow) }

        func run() async throws {
            let configuration = try ExportConfiguration.load(file: config)
            try checkDataflow(dataflow, in: configuration)
            let delivery = try openDeliveryStore(configuration)
            print("deleted \(try delivery.purge(ids: all ? nil : ids, dataflow: dataflow)) failed exports")
        }
    }
}

private func checkSelection(ids: [Int64], all: Bool, dataflow: String?) throws {
    if all == !ids.isEmpty { throw ValidationError("name the ids, or pass --all") }
    if dataflow != nil && !all { throw ValidationError("--dataflow goes with --all") }
}

/// A `--dataflow` must name a dataflow of the configuration.
private func checkDataflow(_ dataflow: String?, in configuration: ExportConfiguration) throws {
    guard let dataflow, !configuration.dataflows.contains(where: { $0.id == dataflow }) else { return }
    throw CommandError("no dataflow '\(dataflow)' in the configuration (dataflows: \(configuration.dataflows.map(\.id).joined(separator: ", ")))")
}

private func timestamp(_ seconds: Double) -> String {
    ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: seconds))
}
