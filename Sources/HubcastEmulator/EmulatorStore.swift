// Hubcast — the emulator's partitions and the events they hold.

public import AMQP

/// One event as a partition holds it.
public struct EmulatedEvent: Sendable {
    /// The message as the producer sent it, encoded (kept as it arrived: storing costs no decoding).
    public var encoded: [UInt8]
    /// The message as the producer sent it (decoded on each read).
    public var message: AMQPMessage { (try? AMQPMessage(decoding: self.encoded)) ?? AMQPMessage() }
    public var sequenceNumber: Int64
    public var offset: Int64
    /// Milliseconds since the Unix epoch.
    public var enqueuedTime: Int64
    public var partitionKey: String?
}

/// Hubs, partitions and retained events. Used on the listener's loop thread only.
struct EmulatorStore {
    struct Partition {
        var events: [EmulatedEvent] = []
        var nextSequence: Int64 = 0
        var nextOffset: Int64 = 0

        mutating func append(_ encoded: [UInt8], partitionKey: String?, now: Int64, retained: Int) {
            let size = Int64(encoded.count)
            let event = EmulatedEvent(
                encoded: encoded, sequenceNumber: self.nextSequence, offset: self.nextOffset, enqueuedTime: now,
                partitionKey: partitionKey)
            self.nextSequence += 1
            self.nextOffset += size
            self.events.append(event)
            // Drop the oldest in batches, so that each append stays O(1) on average.
            if self.events.count > retained * 2 { self.events.removeFirst(self.events.count - retained) }
        }
    }

    var hubs: [String: [Partition]]
    let retained: Int
    private var roundRobin = 0

    init(configuration: EmulatorConfiguration) {
        self.hubs = configuration.hubs.mapValues { Array(repeating: Partition(), count: max(1, $0)) }
        self.retained = max(1, configuration.retainedEventsPerPartition)
    }

    /// The partition for an event: the link's, else the partition key's hash, else round robin.
    mutating func partition(hub: String, linkPartition: Int?, partitionKey: String?) -> Int {
        let count = self.hubs[hub]?.count ?? 1
        if let linkPartition { return linkPartition }
        if let partitionKey { return Int(Self.hash(partitionKey) % UInt64(count)) }
        self.roundRobin += 1
        return self.roundRobin % count
    }

    /// Appends an encoded event, giving it the partition's next sequence number and offset. Mutates
    /// the partition in place (a copy-modify-write-back would copy its whole event list every time).
    mutating func append(_ encoded: [UInt8], hub: String, partition: Int, partitionKey: String?, now: Int64) {
        self.hubs[hub]![partition].append(encoded, partitionKey: partitionKey, now: now, retained: self.retained)
    }

    /// The sequence number and offset the next event of a partition gets.
    func next(hub: String, partition: Int) -> (sequence: Int64, offset: Int64) {
        let held = self.hubs[hub]![partition]
        return (held.nextSequence, held.nextOffset)
    }

    /// A stable 64-bit FNV-1a hash of the key's UTF-8 bytes. (The service's own hash differs; the
    /// emulator only promises that one key always lands on one partition.)
    static func hash(_ key: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return hash
    }
}
