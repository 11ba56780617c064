// Hubcast — `hubcast emulator`: the local Event Hubs emulator in the foreground.

import AMQP
import ArgumentParser
import Foundation
import HubcastEmulator

struct Emulator: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "emulator",
        abstract: "Run the local Event Hubs emulator until stdin closes; print its connection string.",
        discussion: """
            A namespace with event hubs, partitions and the rule RootManageSharedAccessKey (key \
            SAS_KEY_VALUE, all rights), served over plain AMQP on loopback (TLS with --tls-cert and \
            --tls-key). Clients authenticate with SAS tokens on $cbs as with the real service, or with \
            SASL PLAIN (user name = rule name, password = key). The --fault-* options inject faults for \
            testing clients. Use the printed connection string with \
            `hubcast send` or any Event Hubs client that supports UseDevelopmentEmulator=true.
            """
    )

    @Option(help: "Port to bind; 0 picks a free one.") var port = 5672
    @Option(help: "Address to bind.") var host = "127.0.0.1"
    @Option(name: .customLong("hub"), help: "An event hub as NAME or NAME:PARTITIONS (repeatable).")
    var hubs: [String] = ["hub:4"]
    @Option(help: "Serve TLS with this certificate (PEM), for example certs/server.pem (TEST ONLY).") var tlsCert: String?
    @Option(help: "The TLS certificate's key (PEM), for example certs/server-key.pem.") var tlsKey: String?
    @Option(help: "Events each partition keeps at least.") var retain = 100_000
    @Option(help: "Credit kept available on each producer link.") var creditWindow: UInt32 = 1000
    @Option(help: "Fault: reject this fraction (0...1) of events with com.microsoft:server-busy.") var faultServerBusy = 0.0
    @Option(help: "Fault: drop the connection after every N-th event.") var faultDropConnectionEvery: Int?
    @Option(help: "Fault: detach the link (detach-forced) after every N-th event.") var faultDetachLinkEvery: Int?
    @Option(help: "Fault: hold each event's disposition this many milliseconds.") var faultSettlementDelayMs: Int?
    @Option(help: "Fault: treat every put token as expiring this many seconds after it was put.") var faultTokenLifetime: Int?
    @Option(help: "Fault: stop granting credit after every N-th event (see --fault-credit-stall-ms).") var faultCreditStallEvery: Int?
    @Option(help: "Fault: how long a credit stall lasts, in milliseconds.") var faultCreditStallMs = 500

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        var configuration = EmulatorConfiguration()
        configuration.port = self.port
        configuration.host = self.host
        configuration.hubs = [:]
        configuration.retainedEventsPerPartition = self.retain
        configuration.creditWindow = self.creditWindow
        guard (0...1).contains(self.faultServerBusy) else { throw ValidationError("--fault-server-busy must be between 0 and 1") }
        for (name, value) in [("--fault-drop-connection-every", self.faultDropConnectionEvery), ("--fault-detach-link-every", self.faultDetachLinkEvery),
            ("--fault-credit-stall-every", self.faultCreditStallEvery), ("--fault-token-lifetime", self.faultTokenLifetime),
            ("--fault-settlement-delay-ms", self.faultSettlementDelayMs), ("--fault-credit-stall-ms", self.faultCreditStallMs)]
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
        let emulator = try await HubcastEmulator.start(configuration, logger: makeLogger(self.logging))
        print("emulator listening on \(self.host):\(emulator.port)")
        for (hub, partitions) in configuration.hubs.sorted(by: { $0.key < $1.key }) {
            var string = emulator.connectionString(eventHub: hub)
            // With TLS the string must not say UseDevelopmentEmulator (that means plain AMQP).
            if configuration.tls != nil { string = string.replacingOccurrences(of: ";UseDevelopmentEmulator=true", with: "") }
            print("  hub \(hub), \(partitions) partitions: \(string)")
        }
        if configuration.tls != nil { print("  TLS on: clients must trust the CA that signed \(self.tlsCert ?? "")") }
        fflushStdout()
        while readLine() != nil {}
        await emulator.stop()
    }
}
