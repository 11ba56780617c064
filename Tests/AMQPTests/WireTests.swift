import AMQP
import Synchronization
import Testing

@Suite struct WireTests {
    static let bodies: [AMQPMessage.Body] =
        [
            .empty, .bytes([]), .bytes(Array(repeating: 0x5a, count: 200_000)), .data([[1], [2, 3], [4, 5, 6]]),
            .sequence([[.int(1), .string("a")], [.null]]),
        ] + everyValue.map { .value($0) }

    /// Every body kind and every section crosses a real socket both ways unchanged.
    @Test func everyBodyAndSectionRoundTripsOverTheWire() async throws {
        try await withBroker { listener, _ in
            let connection = try await connect(listener)
            let sender = try await connection.openSender(target: "bodies")
            let messages = Self.bodies.map(fullMessage(body:)) + Self.bodies.map { AMQPMessage(body: $0) }
            for message in messages { #expect(try await sender.send(message) == .accepted) }
            let receiver = try await connection.openReceiver(source: "bodies")
            for expected in messages {
                let delivery = try #require(try await receiver.next())
                delivery.accept()
                #expect(delivery.message == expected)
            }
            await connection.close()
        }
    }

    /// 100,000 messages on the pipelined path arrive complete and in order.
    @Test func hundredThousandPipelinedMessagesArriveInOrder() async throws {
        try await withBroker { listener, broker in
            let connection = try await connect(listener)
            let sender = try await connection.openSender(target: "bulk")
            let count = 100_000
            let accepted = Mutex(0)
            try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, any Error>) in
                for index in 0..<count {
                    var message = AMQPMessage(bytes: Array(repeating: UInt8(index & 0xff), count: 64))
                    message.properties.messageID = .ulong(UInt64(index))
                    sender.send(message) { result in
                        let finished = accepted.withLock { value -> Bool in
                            if case .success(.accepted) = result { value += 1 }
                            return index == count - 1
                        }
                        if finished { done.resume() }
                    }
                }
            }
            #expect(accepted.withLock { $0 } == count)
            #expect(broker.memory.acceptedCount == count)
            let receiver = try await connection.openReceiver(source: "bulk", options: .init(creditWindow: 1000))
            for index in 0..<count {
                let delivery = try #require(try await receiver.next())
                delivery.accept()
                #expect(delivery.message.properties.messageID == .ulong(UInt64(index)))
                if delivery.message.properties.messageID != .ulong(UInt64(index)) { break }
            }
            await connection.close()
        }
    }

    @Test func batchSendReturnsOutcomesInOrder() async throws {
        try await withBroker { listener, _ in
            let connection = try await connect(listener)
            let good = try await connection.openSender(target: "q")
            let results = try await good.send(contentsOf: (0..<500).map { AMQPMessage(text: "\($0)") })
            #expect(results.count == 500)
            #expect(results.allSatisfy { if case .success(.accepted) = $0 { true } else { false } })
            await connection.close()
        }
    }

    /// The receiver holds at most its credit window of untaken deliveries: a slow consumer slows the sender.
    @Test func receiverCreditFollowsConsumption() async throws {
        try await withBroker { listener, broker in
            let connection = try await connect(listener)
            for index in 0..<100 { broker.memory.store(AMQPMessage(text: "\(index)").encoded(), at: "slow") }
            let receiver = try await connection.openReceiver(source: "slow", options: .init(creditWindow: 10))
            let barrier = try await connection.openSender(target: "barrier")
            _ = try #require(try await receiver.next())
            // A round trip on the same connection: the broker has acted on every earlier frame.
            _ = try await barrier.send(AMQPMessage(text: "sync"))
            #expect(broker.memory.depth("slow") == 90)
            for _ in 0..<4 { _ = try await receiver.next() }
            _ = try await barrier.send(AMQPMessage(text: "sync"))
            #expect(broker.memory.depth("slow") == 85)
            await connection.close()
        }
    }

    @Test func presettledSendsCompleteAtOnce() async throws {
        try await withBroker { listener, broker in
            let connection = try await connect(listener)
            let sender = try await connection.openSender(target: "fire", options: .init(settleMode: .settled))
            for _ in 0..<10 { #expect(try await sender.send(AMQPMessage(text: "f")) == .accepted) }
            let barrier = try await connection.openSender(target: "barrier")
            _ = try await barrier.send(AMQPMessage(text: "sync"))
            #expect(broker.memory.depth("fire") == 10)
            await connection.close()
        }
    }

    @Test func linkPropertiesAndFiltersReachThePeer() async throws {
        final class Recorder: AMQPServerHandler {
            let links = Mutex<[(String?, [(AMQPSymbol, AMQPValue)], [(AMQPSymbol, AMQPValue)])]>([])
            func linkOpened(_ link: AMQPServerLink) -> AMQPCondition? {
                self.links.withLock { $0.append((link.address, link.properties, link.filter)) }
                return nil
            }
        }
        let recorder = Recorder()
        let listener = try await AMQPListener.listen(.init(), handler: recorder)
        let connection = try await connect(listener)
        var options = AMQPReceiverOptions()
        options.properties = [("com.microsoft:epoch", .long(3))]
        let selector = AMQPValue.described(descriptor: .symbol("apache.org:selector-filter:string"), value: .string("x > 1"))
        options.filter = [("apache.org:selector-filter:string", selector)]
        _ = try await connection.openReceiver(source: "hub/ConsumerGroups/$default/Partitions/0", options: options)
        let recorded = try #require(recorder.links.withLock { $0.first })
        #expect(recorded.0 == "hub/ConsumerGroups/$default/Partitions/0")
        #expect(recorded.1.first?.1 == .long(3))
        #expect(recorded.2.first?.1 == selector)
        await connection.close()
        await listener.close()
    }

    /// The byte-stream hook sees every byte both ways, on client and server, and may rewrite them.
    @Test func byteStreamHookSeesAndRewritesTheStream() async throws {
        final class Counter: AMQPByteStreamHook, @unchecked Sendable {
            let totals = Mutex((out: 0, in: 0))
            func outgoing(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
                self.totals.withLock { $0.out += bytes.count }
                return bytes.map { $0 ^ 0x5a }  // a reversible rewrite, undone by the peer's hook
            }
            func incoming(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
                self.totals.withLock { $0.in += bytes.count }
                return bytes.map { $0 ^ 0x5a }
            }
        }
        let client = Counter()
        let server = Counter()
        var configuration = AMQPListenerConfiguration()
        configuration.byteStreamHook = { server }
        try await withBroker(configuration) { listener, _ in
            let connection = try await connect(listener) { $0.byteStreamHook = { client } }
            let sender = try await connection.openSender(target: "q")
            #expect(try await sender.send(AMQPMessage(bytes: Array(repeating: 1, count: 100_000))) == .accepted)
            await connection.close()
        }
        let (clientOut, clientIn) = client.totals.withLock { ($0.out, $0.in) }
        #expect(clientOut > 100_000)
        #expect(clientIn > 0)
        #expect(server.totals.withLock { $0.in } == clientOut)
    }

    @Test func frameTraceCanBeSwitchedOn() async throws {
        try await withBroker { listener, _ in
            let connection = try await connect(listener) { $0.traceFrames = true }
            let sender = try await connection.openSender(target: "q")
            #expect(try await sender.send(AMQPMessage(text: "traced")) == .accepted)
            await connection.close()
        }
    }

    @Test func explicitSessionCarriesLinks() async throws {
        try await withBroker { listener, _ in
            let connection = try await connect(listener)
            let session = try await connection.openSession()
            let sender = try await session.openSender(target: "s")
            #expect(try await sender.send(AMQPMessage(text: "x")) == .accepted)
            let receiver = try await session.openReceiver(source: "s")
            #expect(try await receiver.next()?.message.body == .value("x"))
            await connection.close()
        }
    }

    /// Links opened and closed again and again on one connection (freed on both sides each time).
    @Test func linkChurnOnOneConnection() async throws {
        try await withBroker { listener, broker in
            let connection = try await connect(listener)
            for round in 0..<300 {
                let sender = try await connection.openSender(target: "churn")
                #expect(try await sender.send(AMQPMessage(text: "\(round)")) == .accepted)
                await sender.close()
            }
            let session = try await connection.openSession()
            let receiver = try await session.openReceiver(source: "churn")
            for round in 0..<300 {
                let delivery = try #require(try await receiver.next())
                #expect(delivery.message.body == .value(.string("\(round)")))
                delivery.accept()
            }
            await receiver.close()
            #expect(broker.memory.depth("churn") == 0)
            await connection.close()
        }
    }

    /// A message forwarded from one connection to a receiver on another goes out at once (the
    /// listener has no idle timer here, so nothing else would wake the receiver's connection).
    @Test(.timeLimit(.minutes(1))) func forwardingAcrossConnectionsIsFlushed() async throws {
        var configuration = AMQPListenerConfiguration()
        configuration.idleTimeout = .zero
        try await withBroker(configuration) { listener, _ in
            let reading = try await connect(listener) { $0.idleTimeout = .zero }
            let receiver = try await reading.openReceiver(source: "relay")
            let writing = try await connect(listener) { $0.idleTimeout = .zero }
            let sender = try await writing.openSender(target: "relay")
            #expect(try await sender.send(AMQPMessage(text: "across")) == .accepted)
            #expect(try await receiver.next()?.message.body == .value("across"))
            await writing.close()
            await reading.close()
        }
    }
}
