// Hubcast — consumer links of the emulator: reading a partition from a position
// (docs/eventhubs-wire.md#receiver-links).

import AMQP
import Foundation

/// Where a consumer link starts, from the Event Hubs selector filter
/// (`apache.org:selector-filter:string`), such as `amqp.annotation.x-opt-offset > '-1'`.
struct ConsumerStart: Equatable {
    enum Field: Equatable { case offset, sequenceNumber, enqueuedTime }
    var field: Field
    var inclusive: Bool
    /// The value; for offsets `-1` means the start and `@latest` the end.
    var value: String

    static let earliest = ConsumerStart(field: .offset, inclusive: false, value: "-1")

    /// Reads the filter expression; nil when it is not one the SDKs send.
    init?(filter expression: String) {
        let parts = expression.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        guard parts.count == 3 else { return nil }
        switch parts[0].lowercased() {
        case "amqp.annotation.x-opt-offset": self.field = .offset
        case "amqp.annotation.x-opt-sequence-number": self.field = .sequenceNumber
        case "amqp.annotation.x-opt-enqueued-time": self.field = .enqueuedTime
        default: return nil
        }
        switch parts[1] {
        case ">": self.inclusive = false
        case ">=": self.inclusive = true
        default: return nil
        }
        self.value = parts[2].trimmingCharacters(in: CharacterSet(charactersIn: "'\""))
    }

    init(field: Field, inclusive: Bool, value: String) {
        self.field = field
        self.inclusive = inclusive
        self.value = value
    }

    /// The first event of `events` (with the partition's next sequence number) this position selects.
    func firstSequence(in events: [EmulatedEvent], next: Int64) -> Int64? {
        if self.field == .offset && self.value == "@latest" { return next }
        if self.field == .offset && self.value == "-1" { return events.first?.sequenceNumber ?? next }
        guard let number = Int64(self.value) else { return nil }
        let match = events.first { event in
            let key: Int64
            switch self.field {
            case .offset: key = event.offset
            case .sequenceNumber: key = event.sequenceNumber
            case .enqueuedTime: key = event.enqueuedTime
            }
            return self.inclusive ? key >= number : key > number
        }
        return match?.sequenceNumber ?? next
    }
}

extension EmulatedEvent {
    /// The message as a consumer reads it: the producer's message with the service's annotations.
    var consumerMessage: AMQPMessage {
        var message = self.message
        var annotations = message.messageAnnotations.filter { !$0.0.name.hasPrefix("x-opt-") || $0.0.name == "x-opt-partition-key" }
        annotations.append(("x-opt-sequence-number", .long(self.sequenceNumber)))
        annotations.append(("x-opt-offset", .string(String(self.offset))))
        annotations.append(("x-opt-enqueued-time", .timestamp(self.enqueuedTime)))
        message.messageAnnotations = annotations
        return message
    }
}
