import AMQP
import EventHubs
import Foundation
@testable import HubcastEmulator
import Testing

@Suite struct ManagementTests {
    /// Reads hub and partition properties over `$management`, as the SDKs do (docs/eventhubs-wire.md#management-reads).
    @Test func hubAndPartitionProperties() async throws {
        try await withEmulator { emulator in
            let producer = try producer(emulator)
            _ = try await producer.send(EventHubsEvent(body: [1]), partition: "3")
            var configuration = AMQPConnectionConfiguration(host: "localhost", port: emulator.port, sasl: .anonymous(mechanism: "MSSBCBS"))
            configuration.virtualHost = "localhost"
            let connection = try await AMQPConnection.connect(configuration)
            let sender = try await connection.openSender(target: "$management")
            var options = AMQPReceiverOptions()
            options.targetAddress = "mgmt-reply"
            let receiver = try await connection.openReceiver(source: "$management", options: options)
            let token = EventHubsSASToken(
                resource: "amqps://localhost/hub", keyName: "RootManageSharedAccessKey", key: "SAS_KEY_VALUE",
                expiresAt: Int64(Date().timeIntervalSince1970) + 600)

            func read(_ type: String, partition: String? = nil, token: String) async throws -> AMQPMessage {
                var request = AMQPMessage(body: .value(.null))
                request.properties.messageID = .string(UUID().uuidString)
                request.properties.replyTo = "mgmt-reply"
                request.applicationProperties =
                    [
                        ("operation", .string("READ")), ("name", .string("hub")), ("type", .string(type)),
                        ("security_token", .string(token)),
                    ] + (partition.map { [("partition", AMQPValue.string($0))] } ?? [])
                #expect(try await sender.send(request) == .accepted)
                let answer = try #require(try await receiver.next())
                answer.accept()
                #expect(answer.message.properties.correlationID == request.properties.messageID)
                return answer.message
            }

            let hub = try await read("com.microsoft:eventhub", token: token.token)
            #expect(hub.applicationProperty("status-code") == .int(200))
            guard case .value(let info) = hub.body else { throw AMQPError(.decodingFailed, "no body") }
            #expect(info[.string("partition_ids")] == .array(["0", "1", "2", "3"].map(AMQPValue.string)))

            let partition = try await read("com.microsoft:partition", partition: "3", token: token.token)
            guard case .value(let details) = partition.body else { throw AMQPError(.decodingFailed, "no body") }
            #expect(details[.string("last_enqueued_sequence_number")] == .long(0))
            #expect(details[.string("is_partition_empty")] == .bool(false))

            let refused = try await read("com.microsoft:eventhub", token: "SharedAccessSignature sr=x&sig=bad&se=1&skn=none")
            #expect(refused.applicationProperty("status-code") == .int(401))
            await connection.close()
            await producer.close()
        }
    }

    @Test func batchEnvelopesAreUnpacked() throws {
        let inner = (0..<3).map { AMQPMessage(bytes: Array("event-\($0)".utf8)) }
        let envelope = AMQPMessage(body: .data(inner.map { $0.encoded() })).encoded()
        #expect(try EmulatorCore.batchedEvents(envelope, layout: AMQPMessageLayout(scanning: envelope)) == inner.map { $0.encoded() })
        let json = AMQPMessage(bytes: Array("{\"a\":1}".utf8)).encoded()
        #expect(try EmulatorCore.batchedEvents(json, layout: AMQPMessageLayout(scanning: json)) == nil)
    }

    @Test func managementClientReadsPropertiesAndRefusesWrongKeys() async throws {
        try await withEmulator { emulator in
            let producer = try producer(emulator)
            _ = try await producer.send(contentsOf: [EventHubsEvent(body: [1]), EventHubsEvent(body: [2])], partition: "2")
            let string = try EventHubsConnectionString(parsing: emulator.connectionString(eventHub: "hub"))
            let hub = try await EventHubsManagement.hubProperties(connectionString: string)
            #expect(hub.partitionIDs == ["0", "1", "2", "3"])
            let partition = try await EventHubsManagement.partitionProperties(connectionString: string, partition: "2")
            #expect(partition.lastEnqueuedSequenceNumber == 1)
            #expect(!partition.isEmpty)
            let empty = try await EventHubsManagement.partitionProperties(connectionString: string, partition: "0")
            #expect(empty.isEmpty)
            let wrong = try EventHubsConnectionString(
                parsing:
                    "Endpoint=sb://localhost:\(emulator.port);SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=NOPE;EntityPath=hub;UseDevelopmentEmulator=true"
            )
            await #expect(throws: EventHubsError.self) { _ = try await EventHubsManagement.hubProperties(connectionString: wrong) }
            await producer.close()
        }
    }
}
