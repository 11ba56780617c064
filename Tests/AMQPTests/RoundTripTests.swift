import AMQP
import Foundation
import Synchronization
import Testing

@Suite struct RoundTripTests {
    @Test func plainRoundTrip() async throws {
        try await withBroker { listener, _ in
            let connection = try await connect(listener)
            let sender = try await connection.openSender(target: "q")
            #expect(try await sender.send(AMQPMessage(text: "hello")) == .accepted)
            let receiver = try await connection.openReceiver(source: "q")
            var iterator = receiver.makeAsyncIterator()
            let delivery = try #require(try await iterator.next())
            delivery.accept()
            #expect(delivery.message.body == .value("hello"))
            await connection.close()
        }
    }

    @Test func tlsRoundTrip() async throws {
        try await withBroker(.init(tls: TestCerts.serverTLS)) { listener, _ in
            let connection = try await connect(listener) {
                $0.host = "localhost"
                $0.tls = AMQPTLSConfiguration(trustedCAFile: TestCerts.ca)
            }
            let sender = try await connection.openSender(target: "secure")
            #expect(try await sender.send(AMQPMessage(bytes: [1, 2, 3])) == .accepted)
            let receiver = try await connection.openReceiver(source: "secure")
            let delivery = try #require(try await receiver.next())
            #expect(delivery.message.bodyBytes == [1, 2, 3])
            await connection.close()
        }
    }

    @Test func tlsWithWrongCAFails() async throws {
        try await withBroker(.init(tls: TestCerts.serverTLS)) { listener, _ in
            let error = await amqpError {
                _ = try await connect(listener) {
                    $0.host = "localhost"
                    $0.tls = AMQPTLSConfiguration(trustedCAFile: TestCerts.otherCA)
                }
            }
            #expect(error?.code == .tlsFailed)
            #expect(error?.message.contains("certificate") == true)
        }
    }

    /// A CA file that is missing or not PEM is refused before any connection, naming the file.
    @Test(arguments: [false, true])
    func unloadableCAFileIsNamed(exists: Bool) async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("hubcast-ca-\(UUID().uuidString).pem").path
        if exists { try "not a certificate\n".write(toFile: file, atomically: true, encoding: .utf8) }
        defer { try? FileManager.default.removeItem(atPath: file) }
        try await withBroker(.init(tls: TestCerts.serverTLS)) { listener, _ in
            let error = await amqpError {
                _ = try await connect(listener) {
                    $0.host = "localhost"
                    $0.tls = AMQPTLSConfiguration(trustedCAFile: file)
                }
            }
            #expect(error?.code == .invalidConfiguration)
            #expect(error?.message.contains(file) == true)
        }
    }

    @Test func tlsWithWrongHostNameFails() async throws {
        try await withBroker(.init(tls: TestCerts.serverTLS)) { listener, _ in
            let error = await amqpError {
                _ = try await connect(listener) {
                    $0.tls = AMQPTLSConfiguration(trustedCAFile: TestCerts.ca, serverName: "wrong.example.com")
                }
            }
            #expect(error?.code == .tlsFailed)
        }
    }

    @Test func tlsAgainstPlainListenerFails() async throws {
        try await withBroker { listener, _ in
            let error = await amqpError {
                _ = try await connect(listener) { $0.tls = AMQPTLSConfiguration(trustedCAFile: TestCerts.ca) }
            }
            #expect(error != nil)
        }
    }

    static let plainServer = AMQPListenerConfiguration(
        sasl: AMQPServerSASL(mechanisms: ["PLAIN"]) { user, password in user == "alice" && password == "s3cret" })

    @Test func saslPlainRightPassword() async throws {
        try await withBroker(Self.plainServer) { listener, broker in
            let connection = try await connect(listener) { $0.sasl = .plain(username: "alice", password: "s3cret") }
            let sender = try await connection.openSender(target: "q")
            #expect(try await sender.send(AMQPMessage(text: "in")) == .accepted)
            #expect(broker.connections.withLock { $0.first?.user } == "alice")
            await connection.close()
        }
    }

    @Test func saslPlainWrongPassword() async throws {
        try await withBroker(Self.plainServer) { listener, _ in
            let error = await amqpError {
                _ = try await connect(listener) { $0.sasl = .plain(username: "alice", password: "wrong") }
            }
            #expect(error?.code == .authenticationFailed, "\(String(describing: error))")
            #expect(error?.description.contains("wrong") == false)
        }
    }

    @Test func saslMechanismNotOffered() async throws {
        try await withBroker(Self.plainServer) { listener, _ in
            let error = await amqpError { _ = try await connect(listener) { $0.sasl = .anonymous } }
            #expect(error?.code == .authenticationFailed)
        }
    }

    @Test func saslEventHubsMechanismName() async throws {
        try await withBroker(.init(sasl: .eventHubs())) { listener, broker in
            let connection = try await connect(listener) { $0.sasl = .anonymous(mechanism: "MSSBCBS") }
            _ = try await connection.openSender(target: "q")
            #expect(broker.connections.withLock { $0.first?.user } == "anonymous")
            await connection.close()
        }
    }

    @Test func noSASLLayer() async throws {
        try await withBroker(.init(sasl: .none)) { listener, _ in
            let connection = try await connect(listener) { $0.sasl = .none }
            let sender = try await connection.openSender(target: "q")
            #expect(try await sender.send(AMQPMessage(text: "x")) == .accepted)
            await connection.close()
        }
    }

    @Test func openPropertiesReachThePeer() async throws {
        try await withBroker { listener, broker in
            let connection = try await connect(listener) {
                $0.containerID = "container-7"
                $0.virtualHost = "ns.servicebus.windows.net"
                $0.properties = [("product", .string("hubcast"))]
            }
            _ = try await connection.openSender(target: "q")
            let peer = try #require(broker.connections.withLock { $0.first })
            #expect(peer.containerID == "container-7")
            #expect(peer.hostname == "ns.servicebus.windows.net")
            #expect(peer.properties.first?.1 == .string("hubcast"))
            #expect(connection.peer.containerID == "hubcast-listener")
            await connection.close()
        }
    }
}

@Suite struct TLSClientCertificateTests {
    static var serverTLS: AMQPServerTLS {
        var tls = TestCerts.serverTLS
        tls.clientCAFile = TestCerts.ca
        return tls
    }

    @Test func clientCertificateIsAccepted() async throws {
        try await withBroker(.init(tls: Self.serverTLS)) { listener, _ in
            let connection = try await connect(listener) {
                $0.host = "localhost"
                var tls = AMQPTLSConfiguration(trustedCAFile: TestCerts.ca)
                tls.certificateFile = TestCerts.folder + "/client.pem"
                tls.keyFile = TestCerts.folder + "/client-key.pem"
                $0.tls = tls
            }
            let sender = try await connection.openSender(target: "q")
            #expect(try await sender.send(AMQPMessage(text: "with certificate")) == .accepted)
            await connection.close()
        }
    }

    @Test func missingClientCertificateIsRefused() async throws {
        try await withBroker(.init(tls: Self.serverTLS)) { listener, _ in
            let error = await amqpError {
                _ = try await connect(listener) {
                    $0.host = "localhost"
                    $0.tls = AMQPTLSConfiguration(trustedCAFile: TestCerts.ca)
                }
            }
            #expect(error?.code == .tlsFailed, "\(String(describing: error))")
        }
    }

    @Test func unreadableServerCertificateIsAClearError() async throws {
        let error = await amqpError {
            _ = try await AMQPListener.listen(
                .init(tls: AMQPServerTLS(certificateFile: "/nonexistent/cert.pem", keyFile: "/nonexistent/key.pem")),
                handler: TestBroker())
        }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.contains("/nonexistent/cert.pem") == true)
    }
}
