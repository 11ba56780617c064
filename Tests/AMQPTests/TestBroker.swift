// Hubcast tests — a small broker on the AMQP module's server side.

import AMQP
import Synchronization

/// Stores what clients send and serves it to clients that attach receivers to the same address.
/// Special addresses drive failure paths:
/// - `reject`: every message is rejected with `test:rejected`;
/// - `release`: every message is released;
/// - `detach-after-1`: the link is detached with `amqp:link:detach-forced` after one message;
/// - `close-after-1`: the connection is closed with `amqp:connection:forced` after one message;
/// - `refuse`: the attach is refused with `amqp:not-found`;
/// - `small`: max-message-size 100.
final class TestBroker: AMQPServerHandler {
    struct State {
        var queues: [String: [AMQPMessage]] = [:]
        var receivers: [String: [AMQPServerLink]] = [:]
        var connections: [AMQPServerConnection] = []
        var received = 0
    }

    let state = Mutex(State())

    func connectionOpened(_ connection: AMQPServerConnection) {
        self.state.withLock { $0.connections.append(connection) }
    }

    func linkOpened(_ link: AMQPServerLink) -> AMQPCondition? {
        if link.address == "refuse" { return AMQPCondition(name: AMQPCondition.notFound, description: "no such node") }
        if link.address == "small" { link.maxMessageSize = 100 }
        if link.isSender, let address = link.address {
            self.state.withLock { $0.receivers[address, default: []].append(link) }
            self.pump(address)
        }
        return nil
    }

    func linkClosed(_ link: AMQPServerLink, condition: AMQPCondition?) {
        guard let address = link.address else { return }
        self.state.withLock { $0.receivers[address]?.removeAll { $0 === link } }
    }

    func messageReceived(_ delivery: AMQPServerDelivery) {
        let address = delivery.link.address ?? ""
        switch address {
        case "reject":
            delivery.settle(.rejected(AMQPCondition(name: "test:rejected", description: "rejected on purpose")))
        case "release":
            delivery.settle(.released)
        case "detach-after-1":
            delivery.settle(.accepted)
            delivery.link.close(condition: AMQPCondition(name: AMQPCondition.detachForced, description: "test detach"))
        case "close-after-1":
            delivery.settle(.accepted)
            delivery.link.connection.close(
                condition: AMQPCondition(name: AMQPCondition.connectionForced, description: "test close"))
        default:
            self.state.withLock {
                $0.queues[address, default: []].append(delivery.message)
                $0.received += 1
            }
            delivery.settle(.accepted)
            self.pump(address)
        }
    }

    func creditAvailable(_ link: AMQPServerLink) {
        if let address = link.address { self.pump(address) }
    }

    /// Sends stored messages to receivers with credit (called on the loop thread).
    private func pump(_ address: String) {
        while true {
            let next = self.state.withLock { state -> (AMQPServerLink, AMQPMessage)? in
                guard let link = state.receivers[address]?.first(where: { $0.credit > 0 }),
                    var queue = state.queues[address], !queue.isEmpty
                else { return nil }
                let message = queue.removeFirst()
                state.queues[address] = queue
                return (link, message)
            }
            guard let (link, message) = next else { return }
            // Credit is consumed only once the send runs; send on the loop thread so it runs now.
            link.send(message) { _ in }
        }
    }

    var receivedCount: Int { self.state.withLock { $0.received } }

    func stored(_ address: String) -> [AMQPMessage] { self.state.withLock { $0.queues[address] ?? [] } }

    func preload(_ address: String, _ messages: [AMQPMessage]) {
        self.state.withLock { $0.queues[address, default: []] += messages }
    }
}
