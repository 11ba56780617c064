// Hubcast tests — a broker with failure paths, over the in-memory broker.

import AMQP
import Synchronization

/// An ``AMQPMemoryBroker`` with special addresses that drive failure paths:
/// - `reject`: every message is rejected with `test:rejected`;
/// - `release`: every message is released;
/// - `detach-after-1`: the link is detached with `amqp:link:detach-forced` after one message;
/// - `close-after-1`: the connection is closed with `amqp:connection:forced` after one message;
/// - `refuse`: the attach is refused with `amqp:not-found`;
/// - `small`: max-message-size 100;
/// - `hold`: messages are never settled.
final class TestBroker: AMQPServerHandler {
    let memory = AMQPMemoryBroker()
    let connections = Mutex<[AMQPServerConnection]>([])

    func connectionOpened(_ connection: AMQPServerConnection) {
        self.connections.withLock { $0.append(connection) }
    }

    func linkOpened(_ link: AMQPServerLink) -> AMQPCondition? {
        if link.address == "refuse" { return AMQPCondition(name: AMQPCondition.notFound, description: "no such node") }
        if link.address == "small" { link.maxMessageSize = 100 }
        return self.memory.linkOpened(link)
    }

    func linkClosed(_ link: AMQPServerLink, condition: AMQPCondition?) {
        self.memory.linkClosed(link, condition: condition)
    }

    func creditAvailable(_ link: AMQPServerLink) { self.memory.creditAvailable(link) }

    func messageReceived(_ delivery: AMQPServerDelivery) {
        switch delivery.link.address ?? "" {
        case "reject":
            delivery.settle(.rejected(AMQPCondition(name: "test:rejected", description: "rejected on purpose")))
        case "release":
            delivery.settle(.released)
        case "hold":
            break
        case "detach-after-1":
            delivery.settle(.accepted)
            delivery.link.close(condition: AMQPCondition(name: AMQPCondition.detachForced, description: "test detach"))
        case "close-after-1":
            delivery.settle(.accepted)
            delivery.link.connection.close(
                condition: AMQPCondition(name: AMQPCondition.connectionForced, description: "test close"))
        default:
            self.memory.messageReceived(delivery)
        }
    }
}

/// Where the test certificates are (made by `scripts/gen-certs`).
enum TestCerts {
    static let folder: String = {
        var path = #filePath
        for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }
        return path + "/certs"
    }()
    static var ca: String { self.folder + "/ca.pem" }
    static var otherCA: String { self.folder + "/other-ca.pem" }
    static var serverTLS: AMQPServerTLS {
        AMQPServerTLS(certificateFile: self.folder + "/server.pem", keyFile: self.folder + "/server-key.pem")
    }
}

/// A listener with a ``TestBroker``, closed after `body`.
func withBroker<T>(
    _ configuration: AMQPListenerConfiguration = .init(),
    _ body: (AMQPListener, TestBroker) async throws -> T
) async throws -> T {
    let broker = TestBroker()
    let listener = try await AMQPListener.listen(configuration, handler: broker)
    do {
        let result = try await body(listener, broker)
        await listener.close()
        return result
    } catch {
        await listener.close()
        throw error
    }
}

/// Connects to a listener on loopback.
func connect(
    _ listener: AMQPListener, _ change: (inout AMQPConnectionConfiguration) -> Void = { _ in }
)
    async throws -> AMQPConnection
{
    var configuration = AMQPConnectionConfiguration(host: "127.0.0.1", port: listener.port)
    change(&configuration)
    return try await AMQPConnection.connect(configuration)
}

/// Runs `body` and returns the AMQPError it throws, or nil.
func amqpError(_ body: () async throws -> Void) async -> AMQPError? {
    do {
        try await body()
        return nil
    } catch let error as AMQPError {
        return error
    } catch {
        return AMQPError(.protocolViolation, "unexpected error type: \(error)")
    }
}
