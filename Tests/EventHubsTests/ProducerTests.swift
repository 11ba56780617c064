import AMQP
@testable import EventHubs
import Foundation
import HubcastEmulator
import Testing

/// An emulator for the test, stopped after `body`.
@discardableResult
func withEmulator<T>(
    _ change: (inout EmulatorConfiguration) -> Void = { _ in }, _ body: (HubcastEmulator) async throws -> T
) async throws -> T {
    var configuration = EmulatorConfiguration()
    configuration.rules.append(.init(name: "listen-only", key: "LISTEN_KEY", rights: .listen))
    change(&configuration)
    let emulator = try await HubcastEmulator.start(configuration)
    do {
        let result = try await body(emulator)
        await emulator.stop()
        return result
    } catch {
        await emulator.stop()
        throw error
    }
}

func producer(_ emulator: HubcastEmulator, hub: String = "hub", rule: String? = nil) throws -> EventHubsProducer {
    try EventHubsProducer(connectionString: EventHubsConnectionString(parsing: emulator.connectionString(eventHub: hub, rule: rule)))
}

@Suite struct ProducerTests {
    @Test func authorizedProducerDeliversEvents() async throws {
        try await withEmulator { emulator in
            let producer = try producer(emulator)
            for index in 0..<10 {
                let event = EventHubsEvent(body: Array("{\"n\":\(index)}".utf8), contentType: "application/json")
                #expect(try await producer.send(event) == .accepted)
            }
            let stored = emulator.events(hub: "hub").flatMap { $0 }
            #expect(stored.count == 10)
            #expect(stored.first?.message.properties.contentType == "application/json")
            await producer.close()
        }
    }

    @Test func onePartitionKeyLandsInOnePartitionInOrder() async throws {
        try await withEmulator { emulator in
            let producer = try producer(emulator)
            for index in 0..<20 {
                _ = try await producer.send(EventHubsEvent(body: [UInt8(index)], partitionKey: "profile-42"))
            }
            let partitions = emulator.events(hub: "hub").filter { !$0.isEmpty }
            #expect(partitions.count == 1)
            #expect(partitions.first?.map { $0.message.bodyBytes?.first ?? 255 } == (0..<20).map(UInt8.init))
            #expect(partitions.first?.map(\.sequenceNumber) == (0..<20).map(Int64.init))
            await producer.close()
        }
    }

    @Test func partitionTargetLandsInThatPartition() async throws {
        try await withEmulator { emulator in
            let producer = try producer(emulator)
            #expect(try await producer.send(EventHubsEvent(body: [1]), partition: "2") == .accepted)
            #expect(emulator.events(hub: "hub", partition: 2).count == 1)
            await producer.close()
        }
    }

    @Test func wrongKeyIsUnauthorizedWithoutShowingTheKey() async throws {
        try await withEmulator { emulator in
            let string =
                "Endpoint=sb://localhost:\(emulator.port);SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=WRONG_SECRET;EntityPath=hub;UseDevelopmentEmulator=true"
            let producer = try EventHubsProducer(connectionString: EventHubsConnectionString(parsing: string))
            do {
                _ = try await producer.send(EventHubsEvent(body: [1]))
                Issue.record("sent with a wrong key")
            } catch let error as EventHubsError {
                #expect(error.code == .unauthorized)
                #expect(error.message.contains("InvalidSignature"))
                #expect(!error.description.contains("WRONG_SECRET"))
            }
        }
    }

    @Test func missingSendRightIsUnauthorized() async throws {
        try await withEmulator { emulator in
            let producer = try producer(emulator, rule: "listen-only")
            do {
                _ = try await producer.send(EventHubsEvent(body: [1]))
                Issue.record("sent without the Send right")
            } catch let error as EventHubsError {
                #expect(error.condition == AMQPCondition.unauthorizedAccess)
            }
        }
    }

    @Test func expiredPreMadeSignatureFailsBeforeConnecting() throws {
        let token = EventHubsSASToken(resource: "amqps://localhost/hub", keyName: "r", key: "k", expiresAt: 1_000)
        let string = try EventHubsConnectionString(
            parsing: "Endpoint=sb://localhost:1;SharedAccessSignature=\(token.token);EntityPath=hub;UseDevelopmentEmulator=true")
        #expect(
            throws: EventHubsError(.tokenExpired, "the SharedAccessSignature expired at 1000 (Unix time); a pre-made signature cannot be renewed")
        ) {
            try EventHubsProducer(connectionString: string)
        }
    }

    @Test func preMadeSignatureWorks() async throws {
        try await withEmulator { emulator in
            let token = EventHubsSASToken(
                resource: "amqps://localhost/hub", keyName: "RootManageSharedAccessKey", key: "SAS_KEY_VALUE",
                expiresAt: Int64(Date().timeIntervalSince1970) + 600)
            let string = try EventHubsConnectionString(
                parsing: "Endpoint=sb://localhost:\(emulator.port);SharedAccessSignature=\(token.token);EntityPath=hub;UseDevelopmentEmulator=true")
            let producer = try EventHubsProducer(connectionString: string)
            #expect(try await producer.send(EventHubsEvent(body: [7])) == .accepted)
            await producer.close()
        }
    }

    @Test func unknownHubIsNotFound() async throws {
        try await withEmulator { emulator in
            let producer = try producer(emulator, hub: "nope")
            do {
                _ = try await producer.send(EventHubsEvent(body: [1]))
                Issue.record("sent to a hub that does not exist")
            } catch let error as EventHubsError {
                #expect(error.code == .notFound)
                #expect(error.message.contains("nope"))
            }
        }
    }

    @Test func oversizedEventIsNotSent() async throws {
        try await withEmulator({ $0.maxMessageSize = 1000 }) { emulator in
            let producer = try producer(emulator)
            do {
                _ = try await producer.send(EventHubsEvent(body: Array(repeating: 1, count: 5000)))
                Issue.record("an oversized event was sent")
            } catch let error as EventHubsError {
                #expect(error.code == .eventTooLarge)
            }
            #expect(try await producer.send(EventHubsEvent(body: [1])) == .accepted)
            #expect(emulator.events(hub: "hub").flatMap { $0 }.count == 1)
            await producer.close()
        }
    }

    @Test func missingHubNameIsAClearError() throws {
        let string = try EventHubsConnectionString(parsing: "Endpoint=sb://localhost;SharedAccessKeyName=a;SharedAccessKey=b")
        #expect(throws: EventHubsError.self) { try EventHubsProducer(connectionString: string) }
    }
}

@Suite struct TokenRefreshTests {
    /// Tokens of 2 seconds across a 5-second send loop: the producer renews them in time and the
    /// emulator, which checks the token on every event, accepts everything. (The pacing sleeps are
    /// the time under test, not synchronisation.)
    @Test func shortLivedTokensAreRenewedAndNothingIsLost() async throws {
        try await withEmulator { emulator in
            var options = EventHubsProducerOptions()
            options.client.tokenLifetime = .seconds(2)
            options.client.tokenRefreshMargin = .milliseconds(1200)
            let producer = try EventHubsProducer(
                connectionString: EventHubsConnectionString(parsing: emulator.connectionString(eventHub: "hub")), options: options)
            var accepted = 0
            for index in 0..<25 {
                if try await producer.send(EventHubsEvent(body: [UInt8(index)])) == .accepted { accepted += 1 }
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(accepted == 25)
            #expect(emulator.events(hub: "hub").flatMap { $0 }.count == 25)
            await producer.close()
        }
    }

    @Test func defaultRefreshMarginFollowsTheSpec() async throws {
        let string = try EventHubsConnectionString(parsing: "Endpoint=sb://x;SharedAccessKeyName=a;SharedAccessKey=b;EntityPath=h")
        let hourly = try EventHubsProducer(connectionString: string)
        #expect(await hourly.refreshMargin == .seconds(600))
        var options = EventHubsProducerOptions()
        options.client.tokenLifetime = .seconds(7200 * 12)
        let daily = try EventHubsProducer(connectionString: string, options: options)
        #expect(await daily.refreshMargin == .seconds(8640))
    }
}

@Suite struct EmulatorStoreTests {
    @Test func retentionKeepsTheNewestEvents() async throws {
        try await withEmulator({
            $0.hubs = ["small": 1]
            $0.retainedEventsPerPartition = 10
        }) { emulator in
            let producer = try producer(emulator, hub: "small")
            let results = try await producer.send(contentsOf: (0..<55).map { EventHubsEvent(body: [UInt8($0)]) })
            #expect(results.count == 55)
            let held = emulator.events(hub: "small", partition: 0)
            #expect(held.count >= 10 && held.count <= 20)
            #expect(held.last?.sequenceNumber == 54)
            #expect(held.last?.message.bodyBytes == [54])
            await producer.close()
        }
    }
}

@Suite struct TLSEmulatorTests {
    static var certs: String {
        var path = #filePath
        for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }
        return path + "/certs"
    }

    /// The cloud form of a connection string (TLS) against the emulator with the test certificates.
    @Test func producerOverTLS() async throws {
        try await withEmulator({
            $0.tls = AMQPServerTLS(certificateFile: Self.certs + "/server.pem", keyFile: Self.certs + "/server-key.pem")
        }) { emulator in
            let string = try EventHubsConnectionString(
                parsing:
                    "Endpoint=sb://localhost:\(emulator.port)/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;EntityPath=hub"
            )
            #expect(string.usesTLS)
            var options = EventHubsProducerOptions()
            options.client.trustedCAFile = Self.certs + "/ca.pem"
            let producer = try EventHubsProducer(connectionString: string, options: options)
            #expect(try await producer.send(EventHubsEvent(body: [42])) == .accepted)
            #expect(emulator.events(hub: "hub").flatMap { $0 }.count == 1)
            await producer.close()
            let untrusting = try EventHubsProducer(connectionString: string)
            await #expect(throws: EventHubsError.self) { _ = try await untrusting.send(EventHubsEvent(body: [1])) }
        }
    }
}
