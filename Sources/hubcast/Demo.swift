// Hubcast — `hubcast demo`: the connector against the built-in emulator, on the sample data.

import AMQP
import EventHubs
import ArgumentParser
import Foundation
import HubcastConnector
import HubcastEmulator
import Logging
import ProfileExport

struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the connector on the sample data against the built-in Event Hubs emulator.",
        discussion: """
            Starts the emulator in-process on a free port (hubs `premium` and `marketing`, 4 partitions each), \
            loads the sample configuration (audiences, dataflows, the VIP upload), points its destinations at \
            the emulator, and runs the connector on the sample profile updates with a fresh store. Shows the \
            events arriving in each hub, a few of them, and the totals; checks that every acknowledged \
            export is in the emulator. Needs no network and no cloud account.
            """
    )

    @Option(help: "The sample configuration.") var config = "samples/hubcast.yaml"
    @Option(help: "The sample profile updates (JSON lines).") var input = "samples/updates.jsonl"
    @Option(help: "The store folder: a new one, or one an earlier demo made (emptied first).") var store = ".build/hubcast-demo"
    @Option(help: "How many of the events to print.") var show = 3
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        var configuration = try ExportConfiguration.load(file: config)
        var emulatorConfiguration = EmulatorConfiguration()
        emulatorConfiguration.hubs = [:]
        var hubs: [(destination: String, hub: String)] = []
        for destination in configuration.destinations {
            let hub: String
            switch destination.connection {
            case .connectionString(let text, let name): hub = name ?? (try? EventHubsConnectionString(parsing: text))?.eventHub ?? destination.id
            case .fields(_, _, _, let name): hub = name
            }
            emulatorConfiguration.hubs[hub] = 4
            hubs.append((destination.id, hub))
        }
        let logger = makeLogger(logging)
        var quiet = logger
        quiet.logLevel = .warning
        let emulator = try await HubcastEmulator.start(emulatorConfiguration, logger: quiet)
        for index in configuration.destinations.indices {
            configuration.destinations[index].connection = .connectionString(emulator.connectionString(eventHub: hubs[index].hub), eventHubName: nil)
        }
        try Self.empty(store)
        configuration.store = store
        print("hubcast demo: the connector against the built-in Event Hubs emulator")
        print("  emulator  127.0.0.1:\(emulator.port), hubs \(hubs.map(\.hub).joined(separator: ", ")) (4 partitions each)")
        print("  config    \(config): \(configuration.audiences.count) audiences, \(configuration.dataflows.count) dataflows")
        print("  input     \(input)")
        print("  store     \(store)")

        let started = ContinuousClock.now
        var options = ConnectorOptions()
        options.traceFrames = logging.traceFrames
        let connector = Connector(configuration: configuration, options: options, logger: logger)
        let targets = hubs
        let arrivals = Task {
            var last = -1
            while !Task.isCancelled {
                let counts = targets.map { emulator.events(hub: $0.hub).reduce(0) { $0 + $1.count } }
                let total = counts.reduce(0, +)
                if total != last {
                    print("  arriving: " + zip(targets, counts).map { "\($0.hub) \($1)" }.joined(separator: ", "))
                    last = total
                }
                try? await Task.sleep(for: .milliseconds(250))
            }
        }
        let report: ConnectorReport
        do {
            report = try await runConnector(connector, input: input, logger: logger, progress: false)
        } catch {
            arrivals.cancel()
            await emulator.stop()
            throw error
        }
        arrivals.cancel()
        let elapsed = ContinuousClock.now - started

        print("")
        for (destination, hub) in hubs {
            let partitions = emulator.events(hub: hub)
            print("  \(hub) (\(destination)): \(counted(partitions.map(\.count).reduce(0, +), "event")), per partition \(partitions.map(\.count))")
            for event in partitions.joined().prefix(show) {
                let body = String(decoding: event.message.bodyBytes ?? [], as: UTF8.self)
                print("    key \(event.partitionKey ?? "-"): \(body.count > 160 ? body.prefix(160) + "…" : Substring(body))")
            }
        }
        print("")
        printReport(report, configuration: configuration, rejects: store + "/rejects.jsonl") { print($0) }
        let stored = hubs.map { emulator.events(hub: $0.hub).reduce(0) { $0 + $1.count } }.reduce(0, +)
        let acknowledged = report.status.dataflows.values.reduce(0) { $0 + $1.counters.acknowledged }
        await emulator.stop()
        print("")
        print("  \(counted(acknowledged, "export")) acknowledged in \(format(elapsed)); the emulator holds \(counted(stored, "event"))")
        guard stored == acknowledged, report.outbox.values.reduce(0, +) == 0 else {
            throw CommandError(
                "the emulator holds \(counted(stored, "event")) but \(acknowledged) \(acknowledged == 1 ? "was" : "were") acknowledged")
        }
        print("  every acknowledged export arrived. Try: hubcast run --config \(config) --input \(input) --dry-run --memory")
    }

    /// Empties the demo's store folder, refusing one that holds anything but a Hubcast store.
    private static func empty(_ folder: String) throws {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return }
        let ours: (String) -> Bool = { $0.hasPrefix("profiles.sqlite") || $0 == "rejects.jsonl" || $0 == "connector.lock" }
        guard names.allSatisfy(ours) else {
            throw CommandError(
                "--store \(folder) holds other files than a Hubcast store; the demo empties its store first, so name a new or a demo folder")
        }
        try FileManager.default.removeItem(atPath: folder)
    }
}
