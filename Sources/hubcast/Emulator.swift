// Hubcast — `hubcast emulator`: the local Event Hubs emulator in the foreground.

import AMQP
import ArgumentParser
import Foundation
import HubcastEmulator
import Logging
import UnixSignals

struct Emulator: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "emulator",
        abstract: "Run the local Event Hubs emulator until SIGINT or SIGTERM; print its connection string.",
        discussion: """
            A namespace with event hubs, partitions and the rule RootManageSharedAccessKey (key \
            SAS_KEY_VALUE, all rights), served over plain AMQP on loopback (TLS with --tls-cert and \
            --tls-key). Clients authenticate with SAS tokens on $cbs as with the real service, or with \
            SASL PLAIN (user name = rule name, password = key). The --fault-* options inject faults for \
            testing clients. Use the printed connection string with \
            `hubcast send` or any Event Hubs client that supports UseDevelopmentEmulator=true.

            It runs until SIGINT (Ctrl-C) or SIGTERM, then stops cleanly; it does not read stdin, so it \
            can run in the background (&, nohup). --throughput-units N throttles ingress as the \
            service does: N x 1,000 events/s and N MiB/s for the whole namespace, with one second of \
            burst; deliveries over it are rejected with com.microsoft:server-busy. While it runs, \
            SIGUSR1 applies that quota (1 throughput unit if --throughput-units was not given) and \
            SIGUSR2 lifts it; each logs the new quota. --data DIR keeps every accepted event in \
            DIR/events.log (written before the event is accepted, so kill -9 loses none) and serves \
            them again, with the same sequence numbers, when started on DIR again; --retain limits \
            only what is held in memory, the file keeps everything.
            """
    )

    @Option(help: "Port to bind; 0 picks a free one.") var port = 5672
    @Option(help: "Address to bind.") var host = "127.0.0.1"
    @Option(name: .customLong("hub"), help: "An event hub as NAME or NAME:PARTITIONS (repeatable).")
    var hubs: [String] = ["hub:4"]
    @Option(help: "Serve TLS with this certificate (PEM), for example certs/server.pem (TEST ONLY).") var tlsCert: String?
    @Option(help: "The TLS certificate's key (PEM), for example certs/server-key.pem.") var tlsKey: String?
    @Option(help: "Events each partition keeps in memory at least (with --data the file keeps all).") var retain = 100_000
    @Option(help: "Credit kept available on each producer link.") var creditWindow: UInt32 = 1000
    @Option(help: "Fault: reject this fraction (0...1) of events with com.microsoft:server-busy.") var faultServerBusy = 0.0
    @Option(help: "Fault: drop the connection after every N-th event.") var faultDropConnectionEvery: Int?
    @Option(help: "Fault: detach the link (detach-forced) after every N-th event.") var faultDetachLinkEvery: Int?
    @Option(help: "Fault: hold each event's disposition this many milliseconds.") var faultSettlementDelayMs: Int?
    @Option(help: "Fault: treat every put token as expiring this many seconds after it was put.") var faultTokenLifetime: Int?
    @Option(help: "Fault: stop granting credit after every N-th event (see --fault-credit-stall-ms).") var faultCreditStallEvery: Int?
    @Option(help: "Fault: how long a credit stall lasts, in milliseconds.") var faultCreditStallMs = 500
    @Option(
        help: ArgumentHelp(
            "Ingress quota in throughput units, 1...40 as the Standard tier: N x 1,000 events/s and N MiB/s for the namespace; "
                + "over it, deliveries get com.microsoft:server-busy. SIGUSR1 applies it (1 if not given), SIGUSR2 lifts it.",
            valueName: "N"))
    var throughputUnits: Int?
    @Option(
        name: .customLong("data"),
        help: ArgumentHelp(
            "Keep accepted events in DIR/events.log (created if missing) and serve them again after a restart, even after kill -9.",
            valueName: "DIR"))
    var dataDirectory: String?

    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        if let units = self.throughputUnits, !(1...40).contains(units) {
            throw ValidationError("--throughput-units must be 1...40 (the Standard tier's range)")
        }
    }

    func run() async throws {
        var configuration = EmulatorConfiguration()
        configuration.port = self.port
        configuration.host = self.host
        configuration.hubs = [:]
        configuration.retainedEventsPerPartition = self.retain
        configuration.creditWindow = self.creditWindow
        guard (0...1).contains(self.faultServerBusy) else { throw ValidationError("--fault-server-busy must be between 0 and 1") }
        for (name, value) in [
            ("--fault-drop-connection-every", self.faultDropConnectionEvery), ("--fault-detach-link-every", self.faultDetachLinkEvery),
            ("--fault-credit-stall-every", self.faultCreditStallEvery), ("--fault-token-lifetime", self.faultTokenLifetime),
            ("--fault-settlement-delay-ms", self.faultSettlementDelayMs), ("--fault-credit-stall-ms", self.faultCreditStallMs),
        ]
        where (value ?? 1) < 1 {
            throw ValidationError("\(name) must be at least 1")
        }
        configuration.faults.serverBusyFraction = self.faultServerBusy
        configuration.faults.dropConnectionEvery = self.faultDropConnectionEvery
        configuration.faults.detachLinkEvery = self.faultDetachLinkEvery
        configuration.faults.settlementDelay = self.faultSettlementDelayMs.map { .milliseconds($0) }
        configuration.faults.tokenLifetimeLimit = self.faultTokenLifetime.map { .seconds($0) }
        configuration.faults.creditStallEvery = self.faultCreditStallEvery
        configuration.faults.creditStallDuration = .milliseconds(self.faultCreditStallMs)
        configuration.throughputUnits = self.throughputUnits
        configuration.dataDirectory = self.dataDirectory
        switch (self.tlsCert, self.tlsKey) {
        case (let certificate?, let key?): configuration.tls = AMQPServerTLS(certificateFile: certificate, keyFile: key)
        case (nil, nil): break
        default: throw ValidationError("--tls-cert and --tls-key go together")
        }
        for spec in self.hubs {
            let parts = spec.split(separator: ":")
            guard let name = parts.first, !name.isEmpty, parts.count <= 2,
                let count = parts.count == 2 ? Int(parts[1]) : 4, (1...1024).contains(count)
            else { throw ValidationError("--hub \(spec): expected NAME or NAME:PARTITIONS (1...1024)") }
            configuration.hubs[String(name)] = count
        }
        // Trapped before the emulator starts, so that no signal meets the default action meanwhile.
        let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm, .sigusr1, .sigusr2)
        let logger = makeLogger(self.logging)
        let emulator = try await HubcastEmulator.start(configuration, logger: logger)
        print("emulator listening on \(self.host):\(emulator.port)")
        for (hub, partitions) in configuration.hubs.sorted(by: { $0.key < $1.key }) {
            var string = emulator.connectionString(eventHub: hub)
            // With TLS the string must not say UseDevelopmentEmulator (that means plain AMQP).
            if configuration.tls != nil { string = string.replacingOccurrences(of: ";UseDevelopmentEmulator=true", with: "") }
            print("  hub \(hub), \(partitions) partitions: \(string)")
        }
        if configuration.tls != nil { print("  TLS on: clients must trust the CA that signed \(self.tlsCert ?? "")") }
        if let units = configuration.throughputUnits { print("  ingress quota: \(Self.quota(units))") }
        if let directory = configuration.dataDirectory { print("  data: \(directory)/events.log") }
        flushStandardOutput()
        for await signal in signals {
            if signal == .sigusr1 {
                let units = self.throughputUnits ?? 1
                emulator.throughputUnits = units
                logger.notice("SIGUSR1: ingress quota \(Self.quota(units))")
            } else if signal == .sigusr2 {
                emulator.throughputUnits = nil
                logger.notice("SIGUSR2: ingress quota lifted (no limit)")
            } else {
                logger.info("\(signal): stopping")
                break
            }
        }
        await emulator.stop()
    }

    /// A quota in words: "2 throughput units (2000 events/s and 2 MiB/s)".
    static func quota(_ units: Int) -> String {
        "\(units) throughput unit\(units == 1 ? "" : "s") (\(units * 1000) events/s and \(units) MiB/s)"
    }
}
