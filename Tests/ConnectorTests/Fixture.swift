// Test support: an emulator, a configuration pointing at it, generated updates, and the dry run.

import AMQP
import EventHubs
import Foundation
import HubcastConnector
import HubcastEmulator
import Logging
import ProfileExport
import Testing

/// A temporary folder with a configuration whose two destinations (hubs `alpha` and `beta`) are on
/// a running emulator, and whose store is in the folder.
struct Fixture {
    let folder: String
    let emulator: HubcastEmulator
    let configurationFile: String

    static var repository: String {
        var path = #filePath
        for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }
        return path
    }

    /// Starts an emulator (`adjust` changes its settings) and writes the configuration. The caller
    /// finishes the fixture; ``with(tls:retries:goldOnly:fixedPort:_:_:)`` does it for a scope.
    static func make(
        tls: Bool = false, retries: Int = 2, goldOnly: Bool = false, fixedPort: Bool = false,
        _ adjust: (inout EmulatorConfiguration) -> Void = { _ in }
    ) async throws -> Fixture {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("hubcast-connector-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var settings = EmulatorConfiguration()
        settings.hubs = ["alpha": 2, "beta": 4]
        if tls {
            settings.tls = AMQPServerTLS(certificateFile: repository + "/certs/server.pem", keyFile: repository + "/certs/server-key.pem")
        }
        adjust(&settings)
        var quiet = Logger(label: "test.emulator")
        quiet.logLevel = .critical
        let emulator = try await startEmulator(settings, fixedPort: fixedPort, logger: quiet)
        let fixture = Fixture(folder: folder, emulator: emulator, configurationFile: folder + "/hubcast.yaml")
        try fixture.writeConfiguration(tls: tls, retries: retries, goldOnly: goldOnly)
        return fixture
    }

    /// Runs `body` on a fixture made as ``make(tls:retries:goldOnly:fixedPort:_:)`` makes it, and
    /// finishes the fixture (stops its emulator, removes its folder) once `body` returned or threw,
    /// before this returns: no emulator outlives the test.
    @discardableResult
    static func with<T>(
        tls: Bool = false, retries: Int = 2, goldOnly: Bool = false, fixedPort: Bool = false,
        _ adjust: (inout EmulatorConfiguration) -> Void = { _ in },
        _ body: (Fixture) async throws -> T
    ) async throws -> T {
        let fixture = try await make(tls: tls, retries: retries, goldOnly: goldOnly, fixedPort: fixedPort, adjust)
        let result: T
        do {
            result = try await body(fixture)
        } catch {
            await fixture.finish()
            throw error
        }
        await fixture.finish()
        return result
    }

    /// Starts an emulator. With `settings.port` 0 and `fixedPort`, on a free port below the
    /// ephemeral range (32768 and up): a test that stops it and starts another on the same port
    /// must not find that port taken meanwhile by some client's socket, nor see a client connect
    /// to itself on it (TCP simultaneous open to a port in the ephemeral range).
    static func startEmulator(_ settings: EmulatorConfiguration, fixedPort: Bool = false, logger: Logger) async throws -> HubcastEmulator {
        guard fixedPort, settings.port == 0 else { return try await HubcastEmulator.start(settings, logger: logger) }
        var lastError: (any Error)?
        for _ in 0..<50 {
            var chosen = settings
            chosen.port = Int.random(in: 20_000..<32_000)
            do {
                return try await HubcastEmulator.start(chosen, logger: logger)
            } catch {
                lastError = error
            }
        }
        throw lastError!
    }

    /// Writes the configuration: `gold-flow` (audience `gold`, or `gold` and `silver` unless
    /// `goldOnly`) to `alpha`, `active-flow` (audience `active`) to `beta`.
    func writeConfiguration(tls: Bool = false, retries: Int = 2, goldOnly: Bool = false, key: String = "SAS_KEY_VALUE") throws {
        func connection(_ hub: String) -> String {
            "Endpoint=sb://localhost:\(emulator.port)/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=\(key);"
                + (tls ? "" : "UseDevelopmentEmulator=true;") + "EntityPath=\(hub)"
        }
        let yaml = """
            store: \(folder)/store
            destinations:
              - id: hub-a
                connectionString: "\(connection("alpha"))"
                includeSegmentNames: true
              - id: hub-b
                connectionString: "\(connection("beta"))"
            audiences:
              - id: gold
                name: Gold
                mergePolicy: default
                rule: 'tier = "gold"'
              - id: silver
                name: Silver
                mergePolicy: default
                rule: 'tier = "silver"'
              - id: active
                name: Active
                mergePolicy: default
                rule: 'score >= 0'
            dataflows:
              - id: gold-flow
                destination: hub-a
                audiences: [\(goldOnly ? "gold" : "gold, silver")]
                attributes: [tier, score, name]
                partitionKey: email
              - id: active-flow
                destination: hub-b
                audiences: [active]
                attributes: [score]
                partitionKey: email
            retry: {retries: \(retries)}
            """
        try yaml.write(toFile: configurationFile, atomically: true, encoding: .utf8)
    }

    var configuration: ExportConfiguration {
        get throws { try ExportConfiguration.load(file: configurationFile) }
    }

    /// Writes `count` updates for `profiles` profiles (round robin): each sets `score` to its line
    /// index (so every update of a member is an export) and a tier that cycles through gold, silver
    /// and bronze every few updates of a profile. With `first` and `appending`, continues a file
    /// written before (its last line was `first - 1`).
    @discardableResult
    func writeUpdates(
        _ count: Int, profiles: Int, from first: Int = 0, name: String = "updates.jsonl",
        appending: Bool = false
    ) throws -> String {
        var text = ""
        for index in first..<(first + count) {
            let profile = index % profiles
            let round = index / profiles
            let tier = ["gold", "silver", "bronze"][(round / 3) % 3]
            let second = index % 60, minute = (index / 60) % 60, hour = index / 3600
            let time = "2026-11-20T\(hour < 10 ? "0" : "")\(hour):\(minute < 10 ? "0" : "")\(minute):\(second < 10 ? "0" : "")\(second)Z"
            text +=
                #"{"profileId":"p-\#(profile)","timestamp":"\#(time)","identities":{"email":["e\#(profile)@example.org"]},"#
                + #""attributes":{"tier":"\#(tier)","score":\#(index),"name":"n\#(profile)"}}"# + "\n"
        }
        let path = folder + "/" + name
        if appending, let file = FileHandle(forWritingAtPath: path) {
            defer { try? file.close() }
            try file.seekToEnd()
            try file.write(contentsOf: Data(text.utf8))
        } else {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        }
        return path
    }

    /// A store where audience `silver` is about to be newly mapped: runs 120 updates of 30 profiles
    /// with `gold-flow` mapping `gold` only (rounds 0-2 are gold, round 3 makes every profile silver),
    /// then maps `silver` too. Returns the input and how many events hub `alpha` holds.
    func prepareSilverBackfill() async throws -> (input: String, before: Int) {
        try writeConfiguration(goldOnly: true)
        let input = try writeUpdates(120, profiles: 30)
        _ = try await connector().run(input: input)
        let before = received(hub: "alpha").joined().count
        try writeConfiguration(goldOnly: false)
        return (input, before)
    }

    /// Runs a connector on `input` against a hub that settles slowly (an emulator made with a
    /// settlement delay) and stops it once the first event arrived, so exports are left in the
    /// outbox; returns its report.
    func runAndStopEarly(_ input: String) async throws -> ConnectorReport {
        let connector = try connector {
            $0.drainTimeout = .milliseconds(100)
            $0.window = 50
        }
        async let report = connector.run(input: input)
        try await waitUntil("the first event arrives", stopping: connector) { !emulator.events(hub: "beta").joined().isEmpty }
        connector.stop()
        return try await report
    }

    /// What `hubcast run --dry-run --memory` exports for `input` (the backfill, then the updates).
    func dryRun(_ input: String) throws -> [ExportItem] {
        let engine = ProfileEngine(configuration: try configuration, store: MemoryProfileStore())
        var items = try engine.backfill()
        let stream = ExportStream(engine: engine, reader: try LineReader(path: input))
        while let item = try stream.nextItem() { items.append(item) }
        return items
    }

    /// The events a hub holds: partition key and body, partition by partition, in arrival order.
    func received(hub: String) -> [[(key: String?, body: [UInt8])]] {
        emulator.events(hub: hub).map { events in events.map { ($0.partitionKey, $0.message.bodyBytes ?? []) } }
    }

    /// Every event of both hubs as "hub|key|body" strings.
    func receivedEvents() -> [String] {
        ["alpha", "beta"].flatMap { hub in
            received(hub: hub).joined().map { "\(hub)|\($0.key ?? "")|" + String(decoding: $0.body, as: UTF8.self) }
        }
    }

    /// The dry run's exports as "hub|key|body" strings.
    static func expected(_ items: [ExportItem]) -> [String] {
        items.map { "\($0.destination == "hub-a" ? "alpha" : "beta")|\($0.partitionKey)|\($0.payloadText)" }
    }

    func connector(_ adjust: (inout ConnectorOptions) -> Void = { _ in }) throws -> Connector {
        var options = ConnectorOptions()
        options.statusInterval = .milliseconds(50)
        options.retry.initialDelay = .milliseconds(20)
        options.retry.serverBusyDelay = .milliseconds(20)
        options.trustedCAFile = Self.repository + "/certs/ca.pem"
        adjust(&options)
        var logger = Logger(label: "test.connector")
        logger.logLevel = .critical
        return Connector(configuration: try configuration, options: options, logger: logger)
    }

    /// The connector's tables in the store.
    func delivery() throws -> DeliveryStore {
        try DeliveryStore(store: SQLiteProfileStore(folder: try configuration.store))
    }

    func finish() async {
        await emulator.stop()
        try? FileManager.default.removeItem(atPath: folder)
    }
}
