// Hubcast — what the hub answered for an event, in Event Hubs' words.

import AMQP

/// What the hub answered for one event: the AMQP delivery outcome, with the service's condition
/// when it refused the event. The producer's API speaks only of these and ``EventHubsError``; the
/// AMQP layer underneath stays its own business.
public enum EventHubsOutcome: Hashable, Sendable, CustomStringConvertible {
    /// The hub stored the event.
    case accepted
    /// The hub refused the event; `condition` says why (`com.microsoft:server-busy` when it
    /// throttles, `amqp:link:message-size-exceeded`, `amqp:unauthorized-access`, …) and
    /// `description` is the service's own words.
    case rejected(condition: String?, description: String?)
    /// The hub did not process the event; it may be sent again.
    case released
    /// The hub did not process the event; it may be sent again, with the given changes.
    case modified(deliveryFailed: Bool, undeliverableHere: Bool)

    /// Whether the hub stored the event.
    public var isAccepted: Bool { self == .accepted }

    /// The service's condition of a refusal, or nil.
    public var condition: String? {
        guard case .rejected(let condition, _) = self else { return nil }
        return condition
    }

    public var description: String {
        switch self {
        case .accepted: return "accepted"
        case .rejected(let condition, let description):
            return "rejected" + (condition.map { " (\($0)\(description.map { ": \($0)" } ?? ""))" } ?? "")
        case .released: return "released"
        case .modified(let failed, let here): return "modified (delivery failed: \(failed), undeliverable here: \(here))"
        }
    }

    init(_ outcome: AMQPOutcome) {
        switch outcome {
        case .accepted: self = .accepted
        case .rejected(let condition): self = .rejected(condition: condition?.name, description: condition?.description)
        case .released: self = .released
        case .modified(let failed, let here): self = .modified(deliveryFailed: failed, undeliverableHere: here)
        }
    }
}

/// One event's final result: the hub's outcome, or why there was none (the retry deadline passed
/// while the hub could not be reached, the producer was closed, …).
public typealias EventHubsSendResult = Result<EventHubsOutcome, EventHubsError>

extension Result where Success == AMQPOutcome, Failure == AMQPError {
    /// The same result in Event Hubs' words.
    var eventHubs: EventHubsSendResult {
        switch self {
        case .success(let outcome): return .success(EventHubsOutcome(outcome))
        case .failure(let error): return .failure(EventHubsError(error))
        }
    }
}
