// Hubcast — `hubcast-bench connector`: end-to-end exports/s and latency against the emulator.

import AMQP
import ArgumentParser
import EventHubs
import Foundation
import HubcastConnector
import Logging
import ProfileExport

#if canImport(Glibc)
import Glibc
#endif

struct BenchConnector: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "connector",
        abstract: "End-to-end exports/s and latency (update committed → acknowledged) of the connector against the emulator.",
        discussion: """
            Runs the emulator as its own process, then, each in a child process with a fresh durable store \
            (SQLite, outbox included): the connector fed through a pipe at each offered load of --loads for \
            --seconds seconds ('max' reads --updates updates from a file as fast as it can), and a raw \
            `hubcast send` (the producer's stream path) of the same payloads. Every update of --profiles \
            profiles writes a mapped attribute of a member, so each makes one export (~230-byte JSON). \
            Prints one table: exports acknowledged per second, latency percentiles (from the commit of \
            the update's batch to the hub's acknowledgement), peak RSS and CPU per export.
            """
    )

    @Option(help: "Offered loads in updates/s, comma-separated; 'max' = as fast as possible from a file.") var loads = "1000,10000,max"
    @Option(help: "Seconds each offered load runs.") var seconds = 10
    @Option(help: "Updates of the 'max' run and of the raw send.") var updates = 200_000
    @Option(help: "Distinct profiles the updates go to.") var profiles = 100_000
    @Option(help: "Updates applied per store batch (one commit for the updates and their outbox rows).") var batch = 512
    @Option(help: .hidden) var load: String?
    @Option(help: .hidden) var port: Int?

    func validate() throws {
        guard seconds > 0, updates > 0, profiles > 0 else { throw ValidationError("--seconds, --updates and --profiles must be positive") }
        for load in loads.split(separator: ",") where load != "max" && Int(load).map({ $0 <= 0 }) ?? true {
            throw ValidationError("--loads: '\(load)' is neither a positive rate nor 'max'")
        }
    }

    func run() async throws {
        if let load, let port {
            print(try await measure(load: load, port: port))
            return
        }
        let port = freePort()
        let emulator = try ChildProcess(hubcastPath(), ["emulator", "--port", "\(port)", "--hub", "bench:4", "--retain", "5000"])
        defer {
            emulator.signal(SIGTERM)
            emulator.wait()
        }
        guard emulator.readLine()?.contains("listening") == true else { throw CommandError("the emulator did not start") }
        print("| run | updates | exports acknowledged | exports/s | p50 ms | p95 ms | p99 ms | peak RSS MiB | CPU µs/export |")
        print("|---|---|---|---|---|---|---|---|---|")
        fflushStdout()
        for load in loads.split(separator: ",").map(String.init) + ["raw"] {
            let child = try ChildProcess(
                executablePath(),
                [
                    "connector", "--load", load, "--port", "\(port)", "--seconds", "\(seconds)",
                    "--updates", "\(updates)", "--profiles", "\(profiles)", "--batch", "\(batch)",
                ])
            child.closeInput()
            var row: String?
            while let line = child.readLine() { if line.hasPrefix("|") { row = line } }
            let result = child.wait()
            guard result.status == 0, let row else {
                throw CommandError("hubcast-bench connector --load \(load) failed with status \(result.status)")
            }
            print(row)
            fflushStdout()
        }
    }

    /// One row, in this (child) process.
    private func measure(load: String, port: Int) async throws -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("hubcast-bench-connector-\(getpid())").path
        try? FileManager.default.removeItem(atPath: folder)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let connectionString =
            "Endpoint=sb://localhost:\(port)/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;EntityPath=bench"
        let yaml = """
            store: \(folder)/store
            destinations:
              - {id: bench, connectionString: "\(connectionString)", includeSegmentNames: true}
            audiences:
              - {id: active, name: Active customers, rule: 'score >= 0'}
            dataflows:
              - {id: bench-flow, destination: bench, audiences: [active], attributes: [name, score, tier], partitionKey: email}
            """
        let configuration = try ExportConfiguration.parse(yaml: yaml)
        let rate = Int(load)
        let count = rate.map { $0 * seconds } ?? updates
        var logger = Logger(label: "hubcast.bench")
        logger.logLevel = .warning

        if load == "raw" {
            // The same payloads, made by the rules engine beforehand, sent on the producer's stream path.
            let engine = ProfileEngine(configuration: configuration, store: MemoryProfileStore())
            var events: [EventHubsEvent] = []
            events.reserveCapacity(count)
            for index in 0..<count {
                for item in try engine.apply(ProfileUpdate(jsonLine: Self.line(index, profiles: profiles)), receivedAt: .now()) {
                    events.append(EventHubsEvent(body: item.payload, contentType: "application/json", partitionKey: item.partitionKey))
                }
            }
            let producer = try EventHubsProducer(connectionString: EventHubsConnectionString(parsing: connectionString), logger: logger)
            let source = PreparedEvents(events)
            let accepted = AcceptedCounter()
            let before = selfUsage().cpuSeconds
            let start = ContinuousClock.now
            try await producer.send(from: { source.next() }) { _, result, _ in if case .success(.accepted) = result { accepted.add() } }
            let elapsed = ContinuousClock.now - start
            await producer.close()
            let cpu = selfUsage().cpuSeconds - before
            return
                "| raw `hubcast send` (stream path), same payloads | – | \(accepted.value) | \(Int(Double(accepted.value) / (elapsed / .seconds(1)))) | – | – | – "
                + "| \(selfUsage().maxRSSKiB / 1024) | \(format2f(cpu * 1e6 / Double(max(1, accepted.value)))) |"
        }

        var options = ConnectorOptions()
        options.statusInterval = .seconds(1)
        options.batchSize = batch
        let connector = Connector(configuration: configuration, options: options, logger: logger)
        let input: String
        var feeder: Thread?
        if let rate {
            // Offered load: a thread writes the lines into a pipe at the rate, in 1 ms slices.
            var fds: [Int32] = [0, 0]
            guard pipe(&fds) == 0 else { throw CommandError("cannot create a pipe") }
            input = "/dev/fd/\(fds[0])"
            let (writeFD, total, profiles) = (fds[1], count, self.profiles)
            feeder = Thread {
                let start = ContinuousClock.now
                var written = 0
                while written < total {
                    let due = min(total, Int((ContinuousClock.now - start) / .seconds(1) * Double(rate)) + 1)
                    if due > written {
                        var bytes: [UInt8] = []
                        for index in written..<due { bytes += Array((Self.line(index, profiles: profiles) + "\n").utf8) }
                        var offset = 0
                        while offset < bytes.count {
                            let sent = bytes[offset...].withUnsafeBytes { Glibc.write(writeFD, $0.baseAddress, $0.count) }
                            if sent <= 0 { break }
                            offset += sent
                        }
                        written = due
                    }
                    usleep(1000)
                }
                close(writeFD)
            }
        } else {
            input = folder + "/updates.jsonl"
            var text = ""
            text.reserveCapacity(count * 120)
            for index in 0..<count { text += Self.line(index, profiles: profiles) + "\n" }
            try text.write(toFile: input, atomically: false, encoding: .utf8)
        }
        let before = selfUsage().cpuSeconds
        let start = ContinuousClock.now
        feeder?.start()
        let report = try await connector.run(input: input)
        let elapsed = ContinuousClock.now - start
        let cpu = selfUsage().cpuSeconds - before
        let flow = report.status.dataflows["bench-flow"]
        let acknowledged = flow?.counters.acknowledged ?? 0
        func ms(_ value: Double?) -> String { value.map { $0 < 10 ? format2f($0) : "\(Int($0.rounded()))" } ?? "–" }
        let name = rate.map { "connector, offered \($0) updates/s for \(seconds) s" } ?? "connector, as fast as possible (file)"
        return "| \(name) | \(report.intake.updatesApplied) | \(acknowledged) | \(Int(Double(acknowledged) / (elapsed / .seconds(1)))) | "
            + "\(ms(flow?.latencyP50)) | \(ms(flow?.latencyP95)) | \(ms(flow?.latencyP99)) | \(selfUsage().maxRSSKiB / 1024) | "
            + "\(format2f(cpu * 1e6 / Double(max(1, acknowledged)))) |"
    }

    /// Update `index`: profile `index % profiles`, a new score (a mapped attribute of a member: one export).
    static func line(_ index: Int, profiles: Int) -> String {
        let profile = index % profiles
        return #"{"profileId":"p\#(profile)","timestamp":"2026-11-22T10:00:00Z","identities":{"email":["e\#(profile)@example.org"]},"#
            + #""attributes":{"name":"Customer \#(profile)","score":\#(index),"tier":"\#(["gold", "silver", "bronze"][index % 3])"}}"#
    }

}

/// Hands out prepared events one at a time (from the connection's loop thread).
private final class PreparedEvents: @unchecked Sendable {
    // @unchecked: `next()` is called by one thread at a time (the stream's loop).
    private let events: [EventHubsEvent]
    private var index = 0

    init(_ events: [EventHubsEvent]) { self.events = events }

    func next() -> EventHubsEvent? {
        guard index < events.count else { return nil }
        defer { index += 1 }
        return events[index]
    }
}

private final class AcceptedCounter: @unchecked Sendable {
    // @unchecked: guarded by the lock.
    private let lock = NSLock()
    private var count = 0
    func add() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}
