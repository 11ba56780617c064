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
    func clientOptions(_ logging: LoggingOptions) -> EventHubsClientOptions {
        var options = EventHubsClientOptions()
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
    @Option(help: "Seconds without an event accepted (hub unreachable, throttling) before giving up with the last error.")
    var timeout: Double = 30
    @Argument(help: "Event bodies.") var bodies: [String] = []

    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        guard self.count > 0 else { throw ValidationError("--count must be at least 1") }
        guard self.size >= 0 else { throw ValidationError("--size must not be negative") }
        guard self.timeout.isFinite, self.timeout > 0, self.timeout <= 86_400 else {
            throw ValidationError("--timeout must be above 0 and at most 86400 seconds")
        }
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
        var options = EventHubsProducerOptions()
        options.client = self.target.clientOptions(self.logging)
        options.client.retry.deadline = .milliseconds(Int(self.timeout * 1000))
        let producer = try EventHubsProducer(connectionString: target, options: options, logger: makeLogger(self.logging))
        let source = try self.source()
        print("sending \(counted(source.count, "event")) to \(producer.eventHub) at \(target.fullyQualifiedNamespace)")

        // The stream path: the connection's loop pulls events as credit allows; retries and
        // recovery as with batches.
        let tally = SendTally(count: source.count)
        let started = ContinuousClock.now
        var gaveUp: (any Error)?
        do {
            try await producer.send(from: { source.next(tally) }, partition: self.partition) { index, result, sends in
                tally.record(index, result, sends: sends)
            }
        } catch {
            // The hub could not be used (unreachable past --timeout, refused credentials, no such
            // hub): what got through is still reported, then the error.
            gaveUp = error
        }
        let elapsed = ContinuousClock.now - started
        await producer.close()
        if let running { await running.stop() }
        let accepted = tally.print(total: source.count, elapsed: elapsed)
        if let gaveUp { throw gaveUp }
        if accepted != source.count { throw ExitCode.failure }
    }

    /// The events to send: the given bodies, or generated ones made as they are pulled.
    private func source() throws -> EventSource {
        let properties: [(String, AMQPValue)] = self.properties.map { pair in
            let equals = pair.firstIndex(of: "=")!
            return (String(pair[..<equals]), .string(String(pair[pair.index(after: equals)...])))
        }
        let template = EventHubsEvent(body: [], contentType: self.contentType, properties: properties, partitionKey: self.partitionKey)
        let bodies = try self.givenBodies()
        return EventSource(template: template, bodies: bodies, count: bodies?.count ?? self.count, size: self.size)
    }

    /// Bodies from the arguments and --input, or nil to generate them.
    private func givenBodies() throws -> [[UInt8]]? {
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
        return bodies.isEmpty ? nil : bodies
    }
}

/// The events `send` sends, made when the producer pulls them: given bodies, or generated ones
/// (`{"event":N ,"pad":"xx…"}` of the requested size, each distinct: a template copied with the
/// number written into room left for it, which JSON allows as whitespace).
final class EventSource: @unchecked Sendable {
    // @unchecked: `next` is called by one thread at a time (the connection's loop, or the producer).
    let count: Int
    private let template: EventHubsEvent
    private let bodies: [[UInt8]]?
    private let generated: [UInt8]
    private static let digitsAt = 9  // after {"event":
    private static let room = 20
    private var produced = 0

    init(template: EventHubsEvent, bodies: [[UInt8]]?, count: Int, size: Int) {
        self.template = template
        self.bodies = bodies
        self.count = count
        let head = Array("{\"event\":".utf8) + [UInt8](repeating: UInt8(ascii: " "), count: Self.room) + Array(",\"pad\":\"".utf8)
        self.generated = head + [UInt8](repeating: UInt8(ascii: "x"), count: max(0, size - head.count - 2)) + Array("\"}".utf8)
    }

    func next(_ tally: SendTally) -> EventHubsEvent? {
        guard self.produced < self.count else { return nil }
        let index = self.produced
        self.produced += 1
        var event = self.template
        if let bodies = self.bodies {
            event.body = bodies[index]
        } else {
            var body = self.generated
            var number = index
            var digits = 1
            while number >= 10 {
                number /= 10
                digits += 1
            }
            number = index
            for position in stride(from: Self.digitsAt + digits - 1, through: Self.digitsAt, by: -1) {
                body[position] = UInt8(ascii: "0") + UInt8(number % 10)
                number /= 10
            }
            event.body = body
        }
        tally.sent(index)
        return event
    }
}

/// What `send` counts: outcomes by condition, retries and latencies (from an event's first send to
/// its final outcome, sampled on every 8th event: reading the clock twice per event costs more than
/// the percentiles need).
final class SendTally: @unchecked Sendable {
    // @unchecked: `sent` and `record` run one call at a time (on the producer's connection loop or
    // in the producer); the totals are read after the send returned.
    private var accepted = 0
    private var notAccepted: [String: Int] = [:]
    private var retried = 0
    private var settled = 0
    private var sentAt: [ContinuousClock.Instant]
    private var latencies: [Double] = []
    private let terminal = isatty(1) != 0
    private let count: Int

    init(count: Int) {
        self.count = count
        self.sentAt = Array(repeating: ContinuousClock.now, count: count / 8 + 1)
        self.latencies.reserveCapacity(count)
    }

    func sent(_ index: Int) {
        if index & 7 == 0 { self.sentAt[index >> 3] = ContinuousClock.now }
    }

    func record(_ index: Int, _ result: EventHubsSendResult, sends: Int) {
        switch result {
        case .success(.accepted): self.accepted += 1
        case .success(.rejected(let condition, _)): self.notAccepted[condition ?? "rejected", default: 0] += 1
        case .success(let outcome): self.notAccepted["\(outcome)", default: 0] += 1
        case .failure(let error): self.notAccepted["\(error.code)", default: 0] += 1
        }
        if sends > 1 { self.retried += 1 }
        if index & 7 == 0 { self.latencies.append(seconds(ContinuousClock.now - self.sentAt[index >> 3]) * 1000) }
        self.settled += 1
        if self.settled % 4096 == 0 || self.settled == self.count { self.progress(total: self.count) }
    }

    /// A one-line progress bar, on a terminal only.
    func progress(total: Int) {
        guard self.terminal else { return }
        let done = self.settled
        let width = 30
        let filled = total == 0 ? width : done * width / total
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        StandardError.write("\r[\(bar)] \(done)/\(total)")
        if done == total { StandardError.write("\n") }
    }

    /// Prints the summary; returns how many were accepted.
    func print(total: Int, elapsed: Duration) -> Int {
        let sorted = self.latencies.sorted()
        func percentile(_ p: Int) -> String {
            guard !sorted.isEmpty else { return "n/a" }
            return String(format: "%.2f", sorted[min(sorted.count - 1, sorted.count * p / 100)]) + " ms"
        }
        Swift.print("sent \(total), accepted \(self.accepted), retried \(self.retried) in \(format(elapsed)) (\(rate(total, elapsed)) events/s)")
        Swift.print("latency p50 \(percentile(50)), p95 \(percentile(95)), p99 \(percentile(99))")
        for (condition, count) in self.notAccepted.sorted(by: { $0.key < $1.key }) {
            Swift.print("  not accepted: \(count) × \(condition)")
        }
        return self.accepted
    }
}
