// Hubcast — `hubcast demo`: an AMQP 1.0 loopback demo.

import AMQP
import ArgumentParser
import Logging

struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send and receive messages over loopback AMQP 1.0 and print what happened.",
        discussion: """
            Starts an in-process AMQP listener with an in-memory broker on a free port, sends --count \
            messages to it on the pipelined path, reads them back on a receiver, checks that every one \
            arrived in order, and prints the totals. Needs no network and no cloud account.
            """
    )

    @Option(help: "How many messages to send.")
    var count = 5000

    @Option(help: "Body size of each message in bytes.")
    var size = 200

    @Flag(help: "Run over TLS with the test certificates in certs/ (TEST ONLY).")
    var tls = false

    @Option(help: "Folder with the test certificates (made by scripts/gen-certs).")
    var certs = "certs"

    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        guard self.count > 0 else { throw ValidationError("--count must be at least 1") }
        guard (0...1_000_000).contains(self.size) else { throw ValidationError("--size must be 0...1000000") }
    }

    func run() async throws {
        let logger = makeLogger(self.logging)
        var listenerConfiguration = AMQPListenerConfiguration()
        var clientTLS: AMQPTLSConfiguration?
        if self.tls {
            listenerConfiguration.tls = AMQPServerTLS(
                certificateFile: "\(self.certs)/server.pem", keyFile: "\(self.certs)/server-key.pem")
            clientTLS = AMQPTLSConfiguration(trustedCAFile: "\(self.certs)/ca.pem")
        }
        let broker = AMQPMemoryBroker()
        let listener = try await AMQPListener.listen(listenerConfiguration, handler: broker, logger: logger)
        print("hubcast demo: AMQP 1.0 over loopback\(self.tls ? " with TLS (test certificates)" : "")")
        print("  listener  \(listener.host):\(listener.port), in-process memory broker")

        var configuration = AMQPConnectionConfiguration(host: self.tls ? "localhost" : "127.0.0.1", port: listener.port)
        configuration.tls = clientTLS
        configuration.traceFrames = self.logging.traceFrames
        let connection = try await AMQPConnection.connect(configuration, logger: logger)
        print("  connected container \(connection.peer.containerID)")

        let sender = try await connection.openSender(target: "demo")
        let payload = [UInt8](repeating: UInt8(ascii: "h"), count: self.size)
        let started = ContinuousClock.now
        let messages = (0..<self.count).map { index -> AMQPMessage in
            var message = AMQPMessage(bytes: payload)
            message.properties.messageID = .ulong(UInt64(index))
            message.properties.contentType = "application/octet-stream"
            return message
        }
        let results = try await sender.send(contentsOf: messages)
        let sendTime = ContinuousClock.now - started
        let accepted = results.filter { if case .success(.accepted) = $0 { true } else { false } }.count
        print("  sent      \(self.count) messages of \(self.size) bytes: \(accepted) accepted in \(format(sendTime)) (\(rate(self.count, sendTime)) msg/s)")

        let receiveStarted = ContinuousClock.now
        let receiver = try await connection.openReceiver(source: "demo", options: .init(creditWindow: 1000))
        var inOrder = 0
        for index in 0..<self.count {
            guard let delivery = try await receiver.next() else { break }
            delivery.accept()
            if delivery.message.properties.messageID == .ulong(UInt64(index)) && delivery.message.bodyBytes == payload {
                inOrder += 1
            }
        }
        let receiveTime = ContinuousClock.now - receiveStarted
        print("  received  \(inOrder) of \(self.count) back, intact and in order, in \(format(receiveTime)) (\(rate(inOrder, receiveTime)) msg/s)")
        await receiver.close()
        await connection.close()
        await listener.close()
        guard accepted == self.count && inOrder == self.count else {
            print("hubcast demo: FAILED (\(self.count - accepted) not accepted, \(self.count - inOrder) missing or out of order)")
            throw ExitCode.failure
        }
        print("hubcast demo: OK")
    }
}

func makeLogger(_ options: LoggingOptions) -> Logger {
    var logger = Logger(label: "hubcast")
    logger.logLevel = options.verbose || options.traceFrames ? .debug : .info
    return logger
}

func format(_ duration: Duration) -> String {
    let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    return seconds < 1 ? "\(Int((seconds * 1000).rounded())) ms" : String(Int(seconds * 100) / 100) + "." + String(format2(Int(seconds * 100) % 100)) + " s"
}

private func format2(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }

func rate(_ count: Int, _ duration: Duration) -> Int {
    let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    return seconds > 0 ? Int(Double(count) / seconds) : 0
}
