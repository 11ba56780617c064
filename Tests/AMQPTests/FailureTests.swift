@_spi(FaultInjection) import AMQP
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite struct FailureTests {
    @Test func rejectedOutcomeCarriesTheCondition() async throws {
        try await withBroker { listener, _ in
            let connection = try await connect(listener)
            let sender = try await connection.openSender(target: "reject")
            let outcome = try await sender.send(AMQPMessage(text: "x"))
            #expect(outcome == .rejected(AMQPCondition(name: "test:rejected", description: "rejected on purpose")))
            await connection.close()
        }
    }

    @Test func releasedOutcome() async throws {
        try await withBroker { listener, _ in
            let connection = try await connect(listener)
            let sender = try await connection.openSender(target: "release")
            #expect(try await sender.send(AMQPMessage(text: "x")) == .released)
            await connection.close()
        }
    }

    @Test func refusedLinkThrowsWithTheCondition() async throws {
        try await withBroker { listener, _ in
            let connection = try await connect(listener)
            let error = await amqpError { _ = try await connection.openSender(target: "refuse") }
            #expect(error?.code == .linkClosed)
            #expect(error?.remoteCondition?.name == AMQPCondition.notFound)
            // The connection stays usable.
            let sender = try await connection.openSender(target: "q")
            #expect(try await sender.send(AMQPMessage(text: "x")) == .accepted)
            await connection.close()
        }
    }

    @Test func peerDetachSurfacesAsTypedError() async throws {
        try await withBroker { listener, _ in
            let connection = try await connect(listener)
            let sender = try await connection.openSender(target: "detach-after-1")
            #expect(try await sender.send(AMQPMessage(text: "first")) == .accepted)
            let error = await amqpError { _ = try await sender.send(AMQPMessage(text: "second")) }
            #expect(error?.code == .linkClosed)
            #expect(error?.remoteCondition?.name == AMQPCondition.detachForced)
            #expect(error?.remoteCondition?.description == "test detach")
            await connection.close()
        }
    }

    @Test func peerCloseSurfacesAsTypedError() async throws {
        try await withBroker { listener, _ in
            let connection = try await connect(listener)
            let sender = try await connection.openSender(target: "close-after-1")
            #expect(try await sender.send(AMQPMessage(text: "first")) == .accepted)
            let error = await amqpError { _ = try await sender.send(AMQPMessage(text: "second")) }
            #expect(error?.code == .connectionClosed)
            #expect(error?.remoteCondition?.name == AMQPCondition.connectionForced)
            let failure = await connection.failure
            #expect(failure?.remoteCondition?.name == AMQPCondition.connectionForced)
            let again = await amqpError { _ = try await connection.openSender(target: "q") }
            #expect(again?.code == .connectionClosed)
        }
    }

    @Test func connectionRefusedIsTyped() async throws {
        // A port bound but not listening refuses connections, and stays ours while the test runs (a
        // port bound and freed could be taken by another test's listener meanwhile).
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(socket >= 0)
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) == 0 && getsockname(socket, $0, &length) == 0 }
        }
        try #require(bound)
        let port = Int(UInt16(bigEndian: address.sin_port))
        let error = await amqpError {
            _ = try await AMQPConnection.connect(.init(host: "127.0.0.1", port: port))
        }
        #expect(error?.code == .connectionRefused, "\(String(describing: error))")
        #expect(error?.message.contains("\(port)") == true)
    }

    @Test func unresolvableHostIsTyped() async throws {
        let error = await amqpError {
            _ = try await AMQPConnection.connect(.init(host: "no-such-host.invalid", port: 5672))
        }
        #expect(error?.code == .connectionFailed)
    }

    @Test func invalidConfigurationNamesTheValue() async throws {
        let error = await amqpError { _ = try await AMQPConnection.connect(.init(host: "localhost", port: 70000)) }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.contains("70000") == true)
    }

    @Test func sendingOnAClosedLinkThrows() async throws {
        try await withBroker { listener, _ in
            let connection = try await connect(listener)
            let sender = try await connection.openSender(target: "q")
            await sender.close()
            let error = await amqpError { _ = try await sender.send(AMQPMessage(text: "late")) }
            #expect(error?.code == .linkClosed)
            await connection.close()
            let afterClose = await amqpError { _ = try await sender.send(AMQPMessage(text: "later")) }
            #expect(afterClose != nil)
        }
    }

    @Test func messageLargerThanPeerLimitIsRefusedBeforeSending() async throws {
        try await withBroker { listener, broker in
            let connection = try await connect(listener)
            let sender = try await connection.openSender(target: "small")
            #expect(sender.maxMessageSize == 100)
            let error = await amqpError { _ = try await sender.send(AMQPMessage(bytes: Array(repeating: 7, count: 500))) }
            #expect(error?.code == .messageTooLarge)
            #expect(try await sender.send(AMQPMessage(bytes: [1])) == .accepted)
            #expect(broker.memory.acceptedCount == 1)
            await connection.close()
        }
    }

    @Test func cancellingAWaitingSendNeitherLeaksNorCrashes() async throws {
        try await withBroker { listener, _ in
            let connection = try await connect(listener)
            let held = try await connection.openSender(target: "hold")
            let task = Task { try await held.send(AMQPMessage(text: "never settled")) }
            task.cancel()
            let error = await amqpError { _ = try await task.value }
            #expect(error?.code == .cancelled)
            // The connection goes on working.
            let sender = try await connection.openSender(target: "q")
            #expect(try await sender.send(AMQPMessage(text: "after")) == .accepted)
            await connection.close()
        }
    }

    @Test func cancellingAWaitingReceiveKeepsTheNextMessage() async throws {
        try await withBroker { listener, _ in
            let connection = try await connect(listener)
            let receiver = try await connection.openReceiver(source: "later")
            let task = Task { try await receiver.next() }
            task.cancel()
            let error = await amqpError { _ = try await task.value }
            #expect(error?.code == .cancelled)
            let sender = try await connection.openSender(target: "later")
            #expect(try await sender.send(AMQPMessage(text: "kept")) == .accepted)
            let delivery = try #require(try await receiver.next())
            #expect(delivery.message.body == .value("kept"))
            await connection.close()
        }
    }

    @Test func closedReceiverEndsTheSequence() async throws {
        try await withBroker { listener, _ in
            let connection = try await connect(listener)
            let receiver = try await connection.openReceiver(source: "empty")
            await receiver.close()
            #expect(try await receiver.next() == nil)
            await connection.close()
        }
    }

    @Test func listenerCloseFailsClientsWithACondition() async throws {
        let broker = TestBroker()
        let listener = try await AMQPListener.listen(.init(), handler: broker)
        let connection = try await connect(listener)
        let sender = try await connection.openSender(target: "q")
        await listener.close()
        let error = await amqpError { _ = try await sender.send(AMQPMessage(text: "x")) }
        #expect(error?.code == .connectionClosed)
        #expect(error?.remoteCondition?.name == AMQPCondition.connectionForced)
    }

    @Test func droppedSocketFailsPendingSends() async throws {
        try await withBroker { listener, broker in
            let connection = try await connect(listener)
            let held = try await connection.openSender(target: "hold")
            async let pending = amqpError { _ = try await held.send(AMQPMessage(text: "in doubt")) }
            // Wait until the broker holds the message, then drop the socket.
            let second = try await connection.openSender(target: "q")
            _ = try await second.send(AMQPMessage(text: "barrier"))
            broker.connections.withLock { $0.first }?.drop()
            let error = await pending
            #expect(error?.code == .connectionFailed)
        }
    }
}
