// Hubcast — one event for one dataflow, ready to send.

/// An export: the event the dispatcher sends for one profile to one dataflow's destination.
public struct ExportItem: Sendable, Hashable {
    public var dataflow: String
    public var destination: String
    /// The Event Hubs partition key (docs/payload.md#partition-key): the first id of the dataflow's `partitionKey`
    /// namespace, else the profile id, else the first identity.
    public var partitionKey: String
    /// Why it was exported.
    public var triggers: [ExportTrigger]
    /// The event body: UTF-8 JSON of docs/payload.md (content type `application/json`).
    public var payload: [UInt8]
    /// The store key of the profile.
    public var profileKey: Int64
    /// The time of the update (or upload) that caused it.
    public var time: Timestamp

    public init(
        dataflow: String, destination: String, partitionKey: String, triggers: [ExportTrigger],
        payload: [UInt8], profileKey: Int64, time: Timestamp
    ) {
        self.dataflow = dataflow
        self.destination = destination
        self.partitionKey = partitionKey
        self.triggers = triggers
        self.payload = payload
        self.profileKey = profileKey
        self.time = time
    }

    /// The payload as text.
    public var payloadText: String { String(decoding: payload, as: UTF8.self) }

    /// One JSON line `{"dataflow", "destination", "partitionKey", "triggers", "payload"}`, as
    /// `hubcast run --dry-run` prints it (the payload embedded as JSON, byte for byte).
    public var jsonLine: String {
        var writer = JSONWriter(capacity: payload.count + 256)
        writer.beginObject()
        writer.key("dataflow")
        writer.value(dataflow)
        writer.key("destination")
        writer.value(destination)
        writer.key("partitionKey")
        writer.value(partitionKey)
        writer.key("triggers")
        writer.beginArray()
        for trigger in triggers { trigger.write(to: &writer) }
        writer.endArray()
        writer.key("payload")
        writer.raw(payload)
        writer.endObject()
        return writer.text
    }
}
