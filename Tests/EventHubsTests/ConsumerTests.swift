import AMQP
import EventHubs
import Foundation
import HubcastEmulator
import Testing

func consumer(
    _ emulator: HubcastEmulator, partition: String, from position: EventHubsEventPosition, rule: String? = nil
)
    async throws -> EventHubsConsumer
{
    try await EventHubsConsumer.connect(
        connectionString: EventHubsConnectionString(parsing: emulator.connectionString(eventHub: "hub", rule: rule)),
        partition: partition, from: position)
}

@Suite struct ConsumerTests {
    @Test func readsAPartitionFromTheStartWithAnnotations() async throws {
        try await withEmulator { emulator in
            let producer = try producer(emulator)
            for index in 0..<20 { _ = try await producer.send(EventHubsEvent(body: [UInt8(index)]), partition: "1") }
            let reader = try await consumer(emulator, partition: "1", from: .earliest)
            var iterator = reader.makeAsyncIterator()
            for index in 0..<20 {
                let event = try #require(try await iterator.next())
                #expect(event.body == [UInt8(index)])
                #expect(event.sequenceNumber == Int64(index))
                #expect(event.offset != nil)
                #expect(event.enqueuedTime != nil)
            }
            await reader.close()
            await producer.close()
        }
    }

    @Test func startsAfterASequenceNumber() async throws {
        try await withEmulator { emulator in
            let producer = try producer(emulator)
            for index in 0..<10 { _ = try await producer.send(EventHubsEvent(body: [UInt8(index)]), partition: "0") }
            let reader = try await consumer(emulator, partition: "0", from: .sequenceNumber(6))
            #expect(try await reader.next()?.sequenceNumber == 7)
            await reader.close()
            let inclusive = try await consumer(emulator, partition: "0", from: .sequenceNumber(6, inclusive: true))
            #expect(try await inclusive.next()?.sequenceNumber == 6)
            await inclusive.close()
            await producer.close()
        }
    }

    /// A consumer attached at the end gets only what is sent afterwards, as it arrives.
    @Test func tailsNewEventsFromLatest() async throws {
        try await withEmulator { emulator in
            let producer = try producer(emulator)
            _ = try await producer.send(EventHubsEvent(body: [1]), partition: "2")
            let reader = try await consumer(emulator, partition: "2", from: .latest)
            _ = try await producer.send(EventHubsEvent(body: [2], partitionKey: nil), partition: "2")
            let event = try #require(try await reader.next())
            #expect(event.body == [2])
            #expect(event.sequenceNumber == 1)
            await reader.close()
            await producer.close()
        }
    }

    @Test func partitionKeyIsVisibleToConsumers() async throws {
        try await withEmulator({ $0.hubs = ["hub": 1] }) { emulator in
            let producer = try producer(emulator)
            _ = try await producer.send(EventHubsEvent(body: [9], partitionKey: "profile-7"))
            let reader = try await consumer(emulator, partition: "0", from: .earliest)
            #expect(try await reader.next()?.partitionKey == "profile-7")
            await reader.close()
            await producer.close()
        }
    }

    @Test func sendOnlyRuleCannotRead() async throws {
        try await withEmulator({ $0.rules.append(.init(name: "send-only", key: "SEND_KEY", rights: .send)) }) { emulator in
            do {
                _ = try await consumer(emulator, partition: "0", from: .earliest, rule: "send-only")
                Issue.record("a send-only rule could read")
            } catch let error as EventHubsError {
                #expect(error.condition == AMQPCondition.unauthorizedAccess)
            }
        }
    }

    @Test func unknownPartitionIsNotFound() async throws {
        try await withEmulator { emulator in
            do {
                _ = try await consumer(emulator, partition: "99", from: .earliest)
                Issue.record("read a partition that does not exist")
            } catch let error as EventHubsError {
                #expect(error.condition == AMQPCondition.notFound)
            }
        }
    }
}
