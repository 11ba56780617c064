import AMQP
import Testing

@Suite struct RoundTripTests {
    @Test func plainRoundTrip() async throws {
        let broker = TestBroker()
        let listener = try await AMQPListener.listen(.init(), handler: broker)
        let connection = try await AMQPConnection.connect(.init(host: "127.0.0.1", port: listener.port))
        let sender = try await connection.openSender(target: "q")
        #expect(try await sender.send(AMQPMessage(text: "hello")) == .accepted)
        let receiver = try await connection.openReceiver(source: "q")
        var iterator = receiver.makeAsyncIterator()
        let delivery = try #require(try await iterator.next())
        delivery.accept()
        #expect(delivery.message.body == .value("hello"))
        await connection.close()
        await listener.close()
    }
}
