// Hubcast's benchmarks: `hubcast-bench amqp|rules|connector`. Not part of the product: built only
// with HUBCAST_BENCHMARKS=1 (see Package.swift and the scripts beside this folder).

import AMQP
import ArgumentParser
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

@main
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hubcast-bench",
        abstract: "Benchmarks (not tests): print a table comparing Hubcast with a baseline.",
        subcommands: [BenchAMQP.self, BenchRules.self, BenchConnector.self]
    )
}

struct BenchAMQP: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "amqp",
        abstract: "Send N messages to Hubcast's listener and to Proton's C example broker; compare with the C sender.",
        discussion: """
            Rows: Hubcast's stream sender (the loop pulls messages as credit allows) and its callback \
            sender (send(_:onOutcome:) from a task), each to `hubcast listen` (a child process) and to the \
            C broker; then the C sender to the C broker. Each row is the run with the median sender CPU \
            of --runs runs. Sender CPU is the sending process's \
            user+system time divided by the message count. Build the C programs with Benchmarks/bench-amqp, \
            which runs this command.
            """
    )

    @Option(help: "Messages per run.") var count = 200_000
    @Option(help: "Body size in bytes.") var size = 500
    @Option(help: "Runs per row; the median (by CPU per message) is shown.") var runs = 5
    @Option(help: "Deliveries the Hubcast sender keeps in flight.") var window = 5000
    @Option(help: "The C example broker, built with a credit window of at least 100.") var cBroker: String?
    @Option(help: "The C example sender, patched to send --size-byte bodies and settle locally.") var cSender: String?

    func validate() throws {
        guard self.count > 0, self.size >= 0, self.runs > 0, self.window >= 1000 else {
            throw ValidationError("--count, --runs must be positive, --window at least 1000")
        }
    }

    func run() async throws {
        var rows: [Row] = []
        rows.append(
            try await self.median("Hubcast stream sender -> Hubcast listener") {
                try await self.hubcastToListener(stream: true)
            })
        rows.append(
            try await self.median("Hubcast callback sender -> Hubcast listener") {
                try await self.hubcastToListener(stream: false)
            })
        if let broker = self.cBroker {
            rows.append(
                try await self.median("Hubcast stream sender -> C broker") {
                    try await self.withCBroker(broker) { port in try await self.hubcastStream(port: port) }
                })
            rows.append(
                try await self.median("Hubcast callback sender -> C broker") {
                    try await self.withCBroker(broker) { port in try await self.hubcastSend(port: port) }
                })
            if let sender = self.cSender {
                rows.append(
                    try await self.median("C sender -> C broker") {
                        try await self.withCBroker(broker) { port in try self.cSend(sender, port: port) }
                    })
            }
        }
        print("\n\(self.count) messages of \(self.size) bytes, loopback, median of \(self.runs) runs by sender CPU")
        print("| sender -> receiver | msg/s | sender CPU µs/msg | p50 ms | p99 ms | sender peak RSS MiB |")
        print("|---|---|---|---|---|---|")
        for row in rows { print(row.line) }
        if let hubcast = rows.first(where: { $0.name == "Hubcast stream sender -> C broker" }),
            let c = rows.first(where: { $0.name == "C sender -> C broker" })
        {
            let ratio = hubcast.cpuMicros / c.cpuMicros
            print("\nHubcast stream sender CPU per message: \(format1(ratio))x the C sender's (target: at most 1.2x)")
        }
    }

    struct Row {
        var name: String
        var rate: Double
        var cpuMicros: Double
        var p50: Double?
        var p99: Double?
        var rssMiB: Double

        var line: String {
            let latency = [self.p50, self.p99].map { $0.map { format2f($0) } ?? "n/a" }
            return "| \(self.name) | \(Int(self.rate)) | \(format2f(self.cpuMicros)) | \(latency[0]) | \(latency[1]) | \(Int(self.rssMiB)) |"
        }
    }

    private func median(_ name: String, _ body: () async throws -> Row) async throws -> Row {
        var results: [Row] = []
        for run in 1...self.runs {
            var row = try await body()
            row.name = name
            FileHandleStderr.write("\(name) run \(run): \(Int(row.rate)) msg/s, \(format2f(row.cpuMicros)) µs/msg\n")
            results.append(row)
        }
        return results.sorted { $0.cpuMicros < $1.cpuMicros }[results.count / 2]
    }

    private func hubcastToListener(stream: Bool) async throws -> Row {
        let child = try ChildProcess(hubcastPath(), ["listen", "--port", "0"])
        guard let line = child.readLine(), let port = line.split(separator: ":").last.flatMap({ Int($0) }) else {
            throw CommandError("hubcast listen did not report its port")
        }
        defer {
            child.closeInput()
            child.wait()
        }
        return stream ? try await self.hubcastStream(port: port) : try await self.hubcastSend(port: port)
    }

    /// Sends `count` messages on the pull path: the loop thread fills one reused message when
    /// credit and the window allow.
    private func hubcastStream(port: Int) async throws -> Row {
        try await self.measure(port: port) { sender in
            let source = StreamSource(count: self.count, size: self.size)
            try await sender.stream(window: self.window, fill: source.fill, onOutcome: source.outcome)
            return (source.failures, source.latencies)
        }
    }

    /// Connects to `port`, runs `send` and measures it: rate, this process's CPU per message,
    /// latency percentiles and peak RSS.
    private func measure(
        port: Int, _ send: (AMQPSender) async throws -> (failures: Int, latencies: [Double])
    )
        async throws -> Row
    {
        let connection = try await AMQPConnection.connect(.init(host: "127.0.0.1", port: port))
        let sender = try await connection.openSender(target: "examples")
        let before = selfUsage()
        let started = ContinuousClock.now
        let (failures, measured) = try await send(sender)
        let elapsed = ContinuousClock.now - started
        let after = selfUsage()
        await connection.close()
        guard failures == 0 else { throw CommandError("\(failures) messages were not accepted") }
        let latencies = measured.sorted()
        return Row(
            name: "", rate: Double(self.count) / seconds(elapsed),
            cpuMicros: (after.cpuSeconds - before.cpuSeconds) * 1e6 / Double(self.count),
            p50: latencies[latencies.count / 2] * 1000, p99: latencies[latencies.count * 99 / 100] * 1000,
            rssMiB: Double(after.maxRSSKiB) / 1024)
    }

    private func withCBroker(_ path: String, _ body: (Int) async throws -> Row) async throws -> Row {
        let port = freePort()
        let broker = try ChildProcess(path, ["127.0.0.1", String(port)])
        defer {
            broker.signal(SIGKILL)
            broker.wait()
        }
        // Wait until the broker listens.
        for attempt in 0..<200 {
            if (try? await AMQPConnection.connect(.init(host: "127.0.0.1", port: port)).close()) != nil { break }
            if attempt == 199 { throw CommandError("the C broker did not start listening on \(port)") }
            try await Task.sleep(for: .milliseconds(25))
        }
        return try await body(port)
    }

    /// Sends `count` messages on the callback path from this task, a new message each time,
    /// keeping `window` in flight.
    private func hubcastSend(port: Int) async throws -> Row {
        try await self.measure(port: port) { sender in
            let payload = [UInt8](repeating: 0x61, count: self.size)
            let flight = InFlight(count: self.count)
            let chunk = 500
            for index in 0..<self.count {
                if index % chunk == 0 { await flight.waitUntil(atMost: self.window - chunk) }
                var message = AMQPMessage(bytes: payload)
                message.properties.messageID = .ulong(UInt64(index))
                let sentAt = ContinuousClock.now
                flight.add()
                sender.send(message) { result in flight.done(index, sentAt: sentAt, ok: (try? result.get()) == .accepted) }
            }
            await flight.waitUntil(atMost: 0)
            return (flight.failures, flight.latencies)
        }
    }

    private func cSend(_ path: String, port: Int) throws -> Row {
        let started = ContinuousClock.now
        let child = try ChildProcess(path, ["127.0.0.1", String(port), "examples", String(self.count)])
        let result = child.wait()
        let elapsed = ContinuousClock.now - started
        guard result.status == 0 else { throw CommandError("the C sender failed with status \(result.status)") }
        return Row(
            name: "", rate: Double(self.count) / seconds(elapsed), cpuMicros: result.cpuSeconds * 1e6 / Double(self.count),
            p50: nil, p99: nil, rssMiB: Double(result.maxRSSKiB) / 1024)
    }
}

/// Makes the benchmark's messages on demand and records each one's send-to-outcome time.
final class StreamSource: @unchecked Sendable {
    // @unchecked: `next` and `outcome` run on the connection's loop thread only; the results are read
    // after `stream` returned.
    private let count: Int
    private let payload: [UInt8]
    private var produced = 0
    private var sentAt: [ContinuousClock.Instant]
    private var sampled: [Double]
    private(set) var failures = 0
    /// Latency is measured on every 8th message: enough samples for p99, little clock overhead.
    static let sampling = 8

    init(count: Int, size: Int) {
        self.count = count
        self.payload = [UInt8](repeating: 0x61, count: size)
        self.sentAt = [ContinuousClock.Instant](repeating: .now, count: count / Self.sampling + 1)
        self.sampled = [Double](repeating: 0, count: count / Self.sampling + 1)
    }

    var latencies: [Double] { self.sampled }

    /// Writes the next message into the stream's reused message (as the C sender reuses its
    /// `pn_message_t`): the same body, a new message id.
    func fill(_ message: inout AMQPMessage) -> Bool {
        guard self.produced < self.count else { return false }
        if self.produced == 0 { message.body = .bytes(self.payload) }
        message.properties.messageID = .ulong(UInt64(self.produced))
        if self.produced % Self.sampling == 0 { self.sentAt[self.produced / Self.sampling] = .now }
        self.produced += 1
        return true
    }

    func outcome(_ index: UInt64, _ result: Result<AMQPOutcome, AMQPError>) {
        let position = Int(index)
        if position % Self.sampling == 0 {
            self.sampled[position / Self.sampling] = seconds(ContinuousClock.now - self.sentAt[position / Self.sampling])
        }
        guard case .success(.accepted) = result else {
            self.failures += 1
            return
        }
    }
}

/// Counts deliveries in flight and records each one's send-to-outcome time.
final class InFlight: @unchecked Sendable {
    // @unchecked: `latencies` slots are written once each, by the loop thread, before `waitUntil(atMost: 0)`
    // returns; everything else is behind the mutex.
    private struct State {
        var inFlight = 0
        var failures = 0
        var waiter: (limit: Int, continuation: CheckedContinuation<Void, Never>)?
    }

    private let state = Mutex(State())
    private(set) var latencies: [Double]

    init(count: Int) { self.latencies = [Double](repeating: 0, count: count) }

    var failures: Int { self.state.withLock { $0.failures } }

    func add() { self.state.withLock { $0.inFlight += 1 } }

    func done(_ index: Int, sentAt: ContinuousClock.Instant, ok: Bool) {
        self.latencies[index] = seconds(ContinuousClock.now - sentAt)
        let continuation = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.inFlight -= 1
            if !ok { state.failures += 1 }
            guard let waiter = state.waiter, state.inFlight <= waiter.limit else { return nil }
            state.waiter = nil
            return waiter.continuation
        }
        continuation?.resume()
    }

    func waitUntil(atMost limit: Int) async {
        await withCheckedContinuation { continuation in
            let ready = self.state.withLock { state -> Bool in
                if state.inFlight <= limit { return true }
                state.waiter = (limit, continuation)
                return false
            }
            if ready { continuation.resume() }
        }
    }
}

func seconds(_ duration: Duration) -> Double { duration / .seconds(1) }

func format2f(_ value: Double) -> String {
    let hundredths = Int((value * 100).rounded())
    let fraction = hundredths % 100
    return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
}

func format1(_ value: Double) -> String {
    let tenths = Int((value * 100).rounded())
    return "\(tenths / 100).\(tenths % 100 < 10 ? "0" : "")\(tenths % 100)"
}

enum FileHandleStderr {
    static func write(_ text: String) {
        var bytes = Array(text.utf8)
        _ = Glibc.write(2, &bytes, bytes.count)
    }
}
