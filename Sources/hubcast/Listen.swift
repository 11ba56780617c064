// Hubcast — `hubcast listen`: an AMQP listener with an in-memory broker.

import AMQP
import ArgumentParser

struct Listen: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run an AMQP 1.0 listener with an in-memory broker until stdin closes.",
        discussion: """
            Prints `listening on HOST:PORT` once bound. Messages sent to an address are queued and \
            handed to receivers of the same address. Handy for trying AMQP clients locally; \
            the AMQP benchmark (Benchmarks/) uses it as the receiving peer.
            """
    )

    @Option(help: "Address to bind.")
    var host = "127.0.0.1"

    @Option(help: "Port to bind; 0 picks a free one.")
    var port = 0

    @Option(help: "Credit granted to each sending client, topped up as messages arrive.")
    var creditWindow: UInt32 = 1000

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        var configuration = AMQPListenerConfiguration(host: self.host, port: self.port)
        configuration.creditWindow = self.creditWindow
        configuration.traceFrames = self.logging.traceFrames
        let listener = try await AMQPListener.listen(configuration, handler: AMQPMemoryBroker(), logger: makeLogger(self.logging))
        print("listening on \(listener.host):\(listener.port)")
        flushStandardOutput()
        // Run until stdin reaches its end (the parent closed it or the user pressed Ctrl-D).
        while readLine() != nil {}
        await listener.close()
    }
}
