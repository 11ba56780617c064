import AMQP
import Synchronization
import Testing

/// A server-side hook that can go silent: the peer then hears nothing, not even heartbeats.
final class Muter: AMQPByteStreamHook, @unchecked Sendable {
    let muted = Atomic<Bool>(false)
    func outgoing(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        self.muted.load(ordering: .relaxed) ? [] : Array(bytes)
    }
    func incoming(_ bytes: UnsafeRawBufferPointer) -> [UInt8] { Array(bytes) }
}

@Suite struct TransportTests {
    @Test func silentPeerTimesOutWithATypedError() async throws {
        let muter = Muter()
        var configuration = AMQPListenerConfiguration()
        configuration.byteStreamHook = { muter }
        try await withBroker(configuration) { listener, _ in
            let connection = try await connect(listener) { $0.idleTimeout = .milliseconds(300) }
            let sender = try await connection.openSender(target: "hold")
            muter.muted.store(true, ordering: .relaxed)
            let error = await amqpError { _ = try await sender.send(AMQPMessage(text: "never answered")) }
            #expect(error?.code == .timeout, "\(String(describing: error))")
        }
    }

    @Test func peerThatNeverOpensTimesOut() async throws {
        let muter = Muter()
        muter.muted.store(true, ordering: .relaxed)
        var configuration = AMQPListenerConfiguration()
        configuration.byteStreamHook = { muter }
        try await withBroker(configuration) { listener, _ in
            let error = await amqpError { _ = try await connect(listener) { $0.openTimeout = .milliseconds(300) } }
            #expect(error?.code == .timeout)
            #expect(error?.message.contains("no AMQP open") == true)
        }
    }

    /// Heartbeats keep a quiet connection open past several idle timeouts (the wait is the subject
    /// of the test, not a synchronisation).
    @Test func heartbeatsKeepAQuietConnectionOpen() async throws {
        var configuration = AMQPListenerConfiguration()
        configuration.idleTimeout = .milliseconds(300)
        try await withBroker(configuration) { listener, _ in
            let connection = try await connect(listener) { $0.idleTimeout = .milliseconds(300) }
            let sender = try await connection.openSender(target: "q")
            try await Task.sleep(for: .milliseconds(1000))
            #expect(try await sender.send(AMQPMessage(text: "still here")) == .accepted)
            await connection.close()
        }
    }

    @Test func smallFramesCarryLargeMessagesBothWays() async throws {
        var configuration = AMQPListenerConfiguration()
        configuration.maxFrameSize = 512
        try await withBroker(configuration) { listener, _ in
            let connection = try await connect(listener) { $0.maxFrameSize = 512 }
            let sender = try await connection.openSender(target: "big")
            let payload = (0..<100_000).map { UInt8($0 % 251) }
            #expect(try await sender.send(AMQPMessage(bytes: payload)) == .accepted)
            let receiver = try await connection.openReceiver(source: "big")
            let delivery = try #require(try await receiver.next())
            #expect(delivery.message.bodyBytes == payload)
            await connection.close()
        }
    }
}
