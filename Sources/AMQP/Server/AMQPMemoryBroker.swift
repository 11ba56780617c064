// Hubcast — an in-memory queue broker on the server side, for demos and tests.

import Synchronization

/// A minimal broker: messages sent to an address are queued in memory and handed, in order, to
/// receivers attached to the same address as their credit allows. Use it for loopback demos and
/// tests; it keeps everything in memory and never expires anything.
public final class AMQPMemoryBroker: AMQPServerHandler {
    private struct State {
        var queues: [String: FIFO<[UInt8]>] = [:]
        var receivers: [String: [AMQPServerLink]] = [:]
        var accepted = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// Messages accepted so far.
    public var acceptedCount: Int { self.state.withLock { $0.accepted } }

    /// Messages waiting at `address`.
    public func depth(_ address: String) -> Int { self.state.withLock { $0.queues[address]?.count ?? 0 } }

    public func linkOpened(_ link: AMQPServerLink) -> AMQPCondition? {
        if link.isSender, let address = link.address {
            self.state.withLock { $0.receivers[address, default: []].append(link) }
            self.pump(address)
        }
        return nil
    }

    public func linkClosed(_ link: AMQPServerLink, condition: AMQPCondition?) {
        guard let address = link.address else { return }
        self.state.withLock { $0.receivers[address]?.removeAll { $0 === link } }
    }

    public func messageReceived(_ delivery: AMQPServerDelivery) {
        self.store(delivery.encoded, at: delivery.link.address ?? "")
        delivery.settle(.accepted)
    }

    /// Queues an encoded message at `address`, as if a client had sent it. Safe from any thread.
    public func store(_ encoded: [UInt8], at address: String) {
        let loops = self.state.withLock { state -> [ProtonLoop] in
            state.queues[address, default: FIFO()].append(encoded)
            state.accepted += 1
            return (state.receivers[address] ?? []).map(\.connection.loop)
        }
        // Credit is read and taken on the listener's loop thread only.
        if let loop = loops.first { loop.run { [self] in self.pump(address) } }
    }

    public func creditAvailable(_ link: AMQPServerLink) {
        if let address = link.address { self.pump(address) }
    }

    /// Sends queued messages to receivers with credit. Runs on the loop thread, where a send takes
    /// its credit at once. A message the receiver does not accept, or that was in flight when its
    /// link went away, is queued again: the broker loses nothing it accepted.
    private func pump(_ address: String) {
        while true {
            let next = self.state.withLock { state -> (AMQPServerLink, [UInt8])? in
                guard let link = state.receivers[address]?.first(where: { $0.credit > 0 }),
                    let message = state.queues[address]?.popFirst()
                else { return nil }
                return (link, message)
            }
            guard let (link, message) = next else { return }
            link.send(encoded: message) { [self] result in
                if case .success(.accepted) = result { return }
                if case .success(.rejected) = result { return }
                self.state.withLock { $0.queues[address, default: FIFO()].append(message) }
            }
        }
    }
}
