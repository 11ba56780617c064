// Hubcast — `hubcast send`: send test events to an event hub.

import AMQP
import ArgumentParser
import EventHubs
import Foundation
import HubcastEmulator

#if canImport(Glibc)
import Glibc
#endif

/// Where an Event Hubs command connects: a connection string, the environment, or the separate fields.
struct TargetOptions: ParsableArguments {
    @Option(help: "Event Hubs connection string (never printed).") var connectionString: String?
    @Option(help: "Namespace name or host name (with --event-hub, --sas-key-name, --sas-key).") var namespace: String?
    @Option(help: "Event hub name.") var eventHub: String?
    @Option(help: "Shared access rule name.") var sasKeyName: String?
    @Option(help: "Shared access key (never printed).") var sasKey: String?
    @Option(help: "CA file to trust for TLS.") var caFile: String?

    /// The target from the options or EVENTHUBS_CONNECTION_STRING, or nil when none is given.
    func target() throws -> EventHubsConnectionString? {
        if let text = self.connectionString ?? ProcessInfo.processInfo.environment["EVENTHUBS_CONNECTION_STRING"] {
            return try EventHubsConnectionString(parsing: text, eventHub: self.eventHub)
        }
        guard let namespace = self.namespace else { return nil }
        guard let hub = self.eventHub, let name = self.sasKeyName, let key = self.sasKey else {
            throw ValidationError("--namespace needs --event-hub, --sas-key-name and --sas-key")
        }
        return try EventHubsConnectionString(namespace: namespace, eventHub: hub, sasKeyName: name, sasKey: key)
    }

    /// Client options with this target's CA file and the logging flags.
    func clientOptions(_ logging: LoggingOptions) -> EventHubsProducerOptions {
        var options = EventHubsProducerOptions()
        options.trustedCAFile = self.caFile
        options.traceFrames = logging.traceFrames
        return options
    }

    static let missing = """
        no target: give --connection-string, set EVENTHUBS_CONNECTION_STRING, or give --namespace with \
        --event-hub, --sas-key-name and --sas-key
        """
}

struct Send: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send test events to an Event Hub and print what became of them.",
        discussion: """
            The target comes from --connection-string, else the EVENTHUBS_CONNECTION_STRING environment \
            variable, else --namespace/--event-hub/--sas-key-name/--sas-key, else --emulator (starts one \
            in-process). Bodies come from the arguments, or --input FILE (one body per line; - reads \
            stdin), or are generated (--count N --size BYTES, each body distinct). Exits non-zero when any \
            event was not accepted.
            """
    )

    @OptionGroup var target: TargetOptions
    @Flag(help: "Start an emulator in-process and send to it.") var emulator = false
    @Option(help: "Read bodies from FILE, one per line; - reads stdin.") var input: String?
    @Option(help: "Generate N events (when no bodies are given).") var count = 10
    @Option(help: "Size in bytes of generated bodies.") var size = 500
    @Option(help: "Partition key for every event.") var partitionKey: String?
    @Option(help: "Send to this partition id instead of the hub.") var partition: String?
    @Option(name: .customLong("property"), help: "Application property KEY=VALUE (repeatable).") var properties: [String] = []
    @Option(help: "Content type of the events.") var contentType = "application/json"
    @Argument(help: "Event bodies.") var bodies: [String] = []

    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        guard self.count > 0 else { throw ValidationError("--count must be at least 1") }
        guard self.size >= 0 else { throw ValidationError("--size must not be negative") }
        for property in self.properties where !property.contains("=") {
            throw ValidationError("--property \(property): expected KEY=VALUE")
        }
    }

    func run() async throws {
        var running: HubcastEmulator?
        let target: EventHubsConnectionString
        if let given = try self.target.target() {
            target = given
        } else if self.emulator {
            let started = try await HubcastEmulator.start(EmulatorConfiguration(), logger: makeLogger(self.logging))
            running = started
            target = try EventHubsConnectionString(parsing: started.connectionString(eventHub: self.target.eventHub ?? "hub"))
        } else {
            throw ValidationError(TargetOptions.missing + ", or use --emulator")
        }
        let options = self.target.clientOptions(self.logging)
        let producer = try EventHubsProducer(connectionString: target, options: options, logger: makeLogger(self.logging))
        let events = try self.events()
        print("sending \(events.count) events to \(producer.eventHub) at \(target.fullyQualifiedNamespace)")

        let started = ContinuousClock.now
        let tally = SendTally(count: events.count)
        for chunk in stride(from: 0, to: events.count, by: 1000) {
            let part = Array(events[chunk..<min(chunk + 1000, events.count)])
            let chunkStart = ContinuousClock.now
            _ = try await producer.send(contentsOf: part, partition: self.partition) { _, result, sends in
                tally.record(result, sends: sends, latency: ContinuousClock.now - chunkStart)
            }
            tally.progress(total: events.count)
        }
        let elapsed = ContinuousClock.now - started
        await producer.close()
        if let running { await running.stop() }
        let accepted = tally.print(total: events.count, elapsed: elapsed)
        if accepted != events.count { throw ExitCode.failure }
    }

    private func events() throws -> [EventHubsEvent] {
        let properties: [(String, AMQPValue)] = self.properties.map { pair in
            let equals = pair.firstIndex(of: "=")!
            return (String(pair[..<equals]), .string(String(pair[pair.index(after: equals)...])))
        }
        var bodies = self.bodies.map { Array($0.utf8) }
        if let input = self.input {
            let text: String
            if input == "-" {
                var lines: [String] = []
                while let line = readLine() { lines.append(line) }
                text = lines.joined(separator: "\n")
            } else {
                guard let data = FileManager.default.contents(atPath: input) else {
                    throw ValidationError("--input \(input): cannot read the file")
                }
                text = String(decoding: data, as: UTF8.self)
            }
            let lines = text.split(separator: "\n", omittingEmptySubsequences: true).map { Array($0.utf8) }
            guard !lines.isEmpty else { throw ValidationError("--input \(input): no events (one body per line)") }
            bodies += lines
        }
        if bodies.isEmpty {
            bodies = (0..<self.count).map { index in
                let head = Array("{\"event\":\(index),\"pad\":\"".utf8)
                let tail = Array("\"}".utf8)
                let pad = max(0, self.size - head.count - tail.count)
                return head + [UInt8](repeating: UInt8(ascii: "x"), count: pad) + tail
            }
        }
        return bodies.map {
            EventHubsEvent(body: $0, contentType: self.contentType, properties: properties, partitionKey: self.partitionKey)
        }
    }
}

/// What `send` counts: outcomes by condition, retries and latencies (from a batch's start to each
/// event's final outcome).
final class SendTally: @unchecked Sendable {
    // @unchecked: `record` runs on the producer's connection loop, one call at a time; the totals
    // are read after the sends returned.
    private var accepted = 0
    private var notAccepted: [String: Int] = [:]
    private var retried = 0
    private var latencies: [Double] = []
    private let terminal = isatty(1) != 0

    init(count: Int) { self.latencies.reserveCapacity(count) }

    func record(_ result: Result<AMQPOutcome, AMQPError>, sends: Int, latency: Duration) {
        switch result {
        case .success(.accepted): self.accepted += 1
        case .success(.rejected(let condition)): self.notAccepted[condition?.name ?? "rejected", default: 0] += 1
        case .success(let outcome): self.notAccepted["\(outcome)", default: 0] += 1
        case .failure(let error): self.notAccepted["\(error.code)", default: 0] += 1
        }
        if sends > 1 { self.retried += 1 }
        self.latencies.append(seconds(latency) * 1000)
    }

    /// A one-line progress bar, on a terminal only.
    func progress(total: Int) {
        guard self.terminal else { return }
        let done = self.latencies.count
        let width = 30
        let filled = total == 0 ? width : done * width / total
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        FileHandleStderr.write("\r[\(bar)] \(done)/\(total)")
        if done == total { FileHandleStderr.write("\n") }
    }

    /// Prints the summary; returns how many were accepted.
    func print(total: Int, elapsed: Duration) -> Int {
        let sorted = self.latencies.sorted()
        func percentile(_ p: Int) -> String {
            guard !sorted.isEmpty else { return "n/a" }
            return format2f(sorted[min(sorted.count - 1, sorted.count * p / 100)]) + " ms"
        }
        Swift.print("sent \(total), accepted \(self.accepted), retried \(self.retried) in \(format(elapsed)) (\(rate(total, elapsed)) events/s)")
        Swift.print("latency p50 \(percentile(50)), p95 \(percentile(95)), p99 \(percentile(99))")
        for (condition, count) in self.notAccepted.sorted(by: { $0.key < $1.key }) {
            Swift.print("  not accepted: \(count) × \(condition)")
        }
        return self.accepted
    }
}
