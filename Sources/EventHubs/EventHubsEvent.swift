// Hubcast — one event to send (docs/eventhubs-wire.md#event-messages).

public import AMQP

/// An event: a body of bytes (JSON for profile exports), an optional content type, application
/// properties and a partition key.
public struct EventHubsEvent: Sendable {
    /// The body, sent as one data section.
    public var body: [UInt8]
    /// The content type, such as `application/json`.
    public var contentType: String?
    /// Application properties.
    public var properties: [(String, AMQPValue)]
    /// Events with the same key go to the same partition (the `x-opt-partition-key` annotation).
    public var partitionKey: String?

    public init(body: [UInt8], contentType: String? = nil, properties: [(String, AMQPValue)] = [], partitionKey: String? = nil) {
        self.body = body
        self.contentType = contentType
        self.properties = properties
        self.partitionKey = partitionKey
    }

    /// Writes the event into a reused message (every field an event sets, so nothing of the
    /// message's previous content remains).
    func fill(_ message: inout AMQPMessage) {
        message.body = .data([self.body])
        message.properties.contentType = self.contentType
        message.applicationProperties = self.properties
        message.messageAnnotations = self.partitionKey.map { [("x-opt-partition-key", .string($0))] } ?? []
    }

    /// The event as an AMQP message.
    public var message: AMQPMessage {
        var message = AMQPMessage(bytes: self.body)
        message.properties.contentType = self.contentType
        message.applicationProperties = self.properties
        if let key = self.partitionKey { message.messageAnnotations = [("x-opt-partition-key", .string(key))] }
        return message
    }
}
