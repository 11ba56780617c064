// Hubcast — reading events from one partition (docs/eventhubs-wire.md#receiver-links).

public import AMQP
public import Foundation
public import Logging

/// Where a consumer starts reading a partition.
public enum EventHubsEventPosition: Sendable, Hashable {
    /// The oldest event the partition holds.
    case earliest
    /// Only events enqueued after the consumer attached.
    case latest
    /// After (or at, when inclusive) a sequence number.
    case sequenceNumber(Int64, inclusive: Bool = false)
    /// After an offset.
    case offset(String)
    /// After an enqueued time.
    case enqueuedTime(Date)

    /// The selector filter expression the service reads.
    var filterExpression: String {
        switch self {
        case .earliest: return "amqp.annotation.x-opt-offset > '-1'"
        case .latest: return "amqp.annotation.x-opt-offset > '@latest'"
        case .sequenceNumber(let number, let inclusive):
            return "amqp.annotation.x-opt-sequence-number \(inclusive ? ">=" : ">") \(number)"
        case .offset(let offset): return "amqp.annotation.x-opt-offset > '\(offset)'"
        case .enqueuedTime(let date): return "amqp.annotation.x-opt-enqueued-time > \(Int64(date.timeIntervalSince1970 * 1000))"
        }
    }
}

/// One event as read from a partition, with the service's annotations.
public struct EventHubsReceivedEvent: Sendable {
    /// The whole message.
    public var message: AMQPMessage
    /// The body (the first data section).
    public var body: [UInt8] { self.message.bodyBytes ?? [] }
    /// The event's position in its partition.
    public var sequenceNumber: Int64? { self.message.annotation("x-opt-sequence-number")?.integer }
    /// The event's offset in its partition.
    public var offset: String? { self.message.annotation("x-opt-offset")?.text }
    /// When the service enqueued it.
    public var enqueuedTime: Date? {
        self.message.annotation("x-opt-enqueued-time")?.integer.map { Date(timeIntervalSince1970: Double($0) / 1000) }
    }
    /// The partition key the producer gave.
    public var partitionKey: String? { self.message.annotation("x-opt-partition-key")?.text }
}

/// Reads one partition of an event hub, from a position, as an async sequence.
///
/// ```swift
/// let consumer = try await EventHubsConsumer.connect(connectionString: string, partition: "0", from: .earliest)
/// for try await event in consumer { print(event.sequenceNumber ?? -1, event.body.count) }
/// ```
public final class EventHubsConsumer: AsyncSequence, Sendable {
    public typealias Element = EventHubsReceivedEvent

    private let connection: AMQPConnection
    private let receiver: AMQPReceiver
    private let authorizer: Authorizer

    private init(connection: AMQPConnection, receiver: AMQPReceiver, authorizer: Authorizer) {
        self.connection = connection
        self.receiver = receiver
        self.authorizer = authorizer
    }

    /// Connects, authorizes (Listen right) and attaches to `<hub>/ConsumerGroups/<group>/Partitions/<partition>`.
    public static func connect(
        connectionString: EventHubsConnectionString, eventHub: String? = nil, consumerGroup: String = "$Default",
        partition: String, from position: EventHubsEventPosition = .earliest, options: EventHubsClientOptions = .init(),
        prefetch: UInt32 = 300, logger: Logger = Logger(label: "hubcast.eventhubs.consumer")
    ) async throws -> EventHubsConsumer {
        do {
            return try await Self.open(
                connectionString: connectionString, eventHub: eventHub, consumerGroup: consumerGroup, partition: partition,
                from: position, options: options, prefetch: prefetch, logger: logger)
        } catch {
            throw error.inEventHubsWords
        }
    }

    private static func open(
        connectionString: EventHubsConnectionString, eventHub: String?, consumerGroup: String,
        partition: String, from position: EventHubsEventPosition, options: EventHubsClientOptions,
        prefetch: UInt32, logger: Logger
    ) async throws -> EventHubsConsumer {
        guard let hub = eventHub ?? connectionString.eventHub, !hub.isEmpty else {
            throw EventHubsError(.invalidConnectionString, "no event hub: add EntityPath to the connection string or name the hub")
        }
        let configuration = connectionString.amqpConfiguration(
            containerID: "hubcast-consumer-\(UUID().uuidString.prefix(8).lowercased())",
            trustedCAFile: options.trustedCAFile, traceFrames: options.traceFrames)
        let connection = try await AMQPConnection.connect(configuration, logger: logger)
        do {
            let authorizer = Authorizer(
                cbs: try await CBSClient.attach(on: connection), connectionString: connectionString,
                audience: connectionString.audience(hub), lifetime: options.tokenLifetime, margin: options.tokenRefreshMargin,
                logger: logger)
            try await authorizer.start()
            var receiverOptions = AMQPReceiverOptions(creditWindow: prefetch)
            let filterName: AMQPSymbol = "apache.org:selector-filter:string"
            receiverOptions.filter = [
                (filterName, .described(descriptor: .symbol(filterName), value: .string(position.filterExpression)))
            ]
            let receiver = try await connection.openReceiver(
                source: "\(hub)/ConsumerGroups/\(consumerGroup)/Partitions/\(partition)", options: receiverOptions)
            return EventHubsConsumer(connection: connection, receiver: receiver, authorizer: authorizer)
        } catch {
            await connection.close()
            throw error
        }
    }

    /// The next event; waits for one. Nil after ``close()``.
    public func next() async throws -> EventHubsReceivedEvent? {
        let delivery: AMQPDelivery?
        do {
            delivery = try await self.receiver.next()
        } catch {
            throw error.inEventHubsWords
        }
        guard let delivery else { return nil }
        delivery.accept()
        return EventHubsReceivedEvent(message: delivery.message)
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let consumer: EventHubsConsumer
        public mutating func next() async throws -> EventHubsReceivedEvent? { try await self.consumer.next() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(consumer: self) }

    /// Detaches and closes the connection.
    public func close() async {
        await self.authorizer.stop()
        await self.receiver.close()
        await self.connection.close()
    }
}
