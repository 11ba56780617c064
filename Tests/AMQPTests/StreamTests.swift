import AMQP
import Synchronization
import Testing

/// Produces numbered messages on demand and records outcomes by index.
final class NumberedSource: Sendable {
    let count: Int
    let produced = Mutex(0)
    let outcomes = Mutex<[UInt64: Result<AMQPOutcome, AMQPError>]>([:])

    init(count: Int) { self.count = count }

    func next() -> AMQPMessage? {
        self.produced.withLock { produced -> AMQPMessage? in
            guard produced < self.count else { return nil }
            defer { produced += 1 }
            var message = AMQPMessage(bytes: [UInt8(produced & 0xff)])
            message.properties.messageID = .ulong(UInt64(produced))
            return message
        }
    }

    func record(_ index: UInt64, _ result: Result<AMQPOutcome, AMQPError>) {
        self.outcomes.withLock { $0[index] = result }
    }
}

@Suite struct StreamTests {
    @Test func streamSendsEverythingInOrderWithinTheWindow() async throws {
        try await withBroker { listener, broker in
            let connection = try await connect(listener)
            let sender = try await connection.openSender(target: "stream")
            let source = NumberedSource(count: 20_000)
            try await sender.stream(window: 300, next: source.next, onOutcome: source.record)
            let outcomes = source.outcomes.withLock { $0 }
            #expect(outcomes.count == 20_000)
            #expect(outcomes.values.allSatisfy { (try? $0.get()) == .accepted })
            #expect(broker.memory.acceptedCount == 20_000)
            let receiver = try await connection.openReceiver(source: "stream")
            for index in 0..<20_000 {
                let delivery = try #require(try await receiver.next())
                #expect(delivery.message.properties.messageID == .ulong(UInt64(index)))
                if delivery.message.properties.messageID != .ulong(UInt64(index)) { break }
            }
            await connection.close()
        }
    }

    @Test func streamReportsRejectionsPerMessage() async throws {
        try await withBroker { listener, _ in
            let connection = try await connect(listener)
            let sender = try await connection.openSender(target: "reject")
            let source = NumberedSource(count: 50)
            try await sender.stream(next: source.next, onOutcome: source.record)
            let outcomes = source.outcomes.withLock { $0 }
            #expect(outcomes.count == 50)
            #expect(outcomes[7].flatMap { try? $0.get() } == .rejected(AMQPCondition(name: "test:rejected", description: "rejected on purpose")))
            await connection.close()
        }
    }

    @Test func streamFailsUnsettledMessagesWhenTheLinkIsDetached() async throws {
        try await withBroker { listener, _ in
            let connection = try await connect(listener)
            let sender = try await connection.openSender(target: "detach-after-1")
            let source = NumberedSource(count: 1000)
            let error = await amqpError { try await sender.stream(window: 10, next: source.next, onOutcome: source.record) }
            #expect(error?.code == .linkClosed)
            #expect(error?.remoteCondition?.name == AMQPCondition.detachForced)
            // Every message that was pulled has exactly one outcome: none is silently lost.
            let produced = source.produced.withLock { $0 }
            let outcomes = source.outcomes.withLock { $0 }
            #expect(outcomes.count == produced)
            #expect(produced < 1000)
            await connection.close()
        }
    }

    @Test func cancellingAStreamStopsPulling() async throws {
        try await withBroker { listener, _ in
            let connection = try await connect(listener)
            let sender = try await connection.openSender(target: "hold")
            let source = NumberedSource(count: 1_000_000)
            let task = Task { try await sender.stream(window: 5, next: source.next, onOutcome: source.record) }
            task.cancel()
            let error = await amqpError { try await task.value }
            #expect(error?.code == .cancelled)
            // A round trip later the source was pulled at most a window's worth.
            let other = try await connection.openSender(target: "q")
            _ = try await other.send(AMQPMessage(text: "sync"))
            #expect(source.produced.withLock { $0 } <= 5)
            await connection.close()
        }
    }

    @Test func streamOnAPresettledLinkCompletesAndMixesWithSends() async throws {
        try await withBroker { listener, broker in
            let connection = try await connect(listener)
            let sender = try await connection.openSender(target: "fire", options: .init(settleMode: .settled))
            let source = NumberedSource(count: 500)
            try await sender.stream(next: source.next, onOutcome: source.record)
            #expect(source.outcomes.withLock { $0.count } == 500)
            #expect(try await sender.send(AMQPMessage(text: "after")) == .accepted)
            let barrier = try await connection.openSender(target: "barrier")
            _ = try await barrier.send(AMQPMessage(text: "sync"))
            #expect(broker.memory.depth("fire") == 501)
            await connection.close()
        }
    }
}
