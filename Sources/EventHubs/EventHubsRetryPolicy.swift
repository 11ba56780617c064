// Hubcast — how the producer retries (docs/eventhubs-wire.md#outcomes-and-conditions).

import AMQP

/// How a producer retries failed sends.
///
/// Two kinds of trouble are told apart. A **fault of the event** (a retriable rejection such as
/// `com.microsoft:timeout`, or `released`) uses up one of the event's ``maxRetries``. The hub
/// **asking us to wait** (`com.microsoft:server-busy`, a lost connection, a detached link) does not:
/// the producer waits (at least ``serverBusyDelay`` when throttled, backoff with jitter otherwise),
/// recovers, and sends again, for at most ``deadline`` in total.
public struct EventHubsRetryPolicy: Sendable, Hashable {
    /// Retries after the first try for faults of the event. Default: 2, as the product promises.
    public var maxRetries = 2
    /// The first backoff; it doubles each retry, with up to 20 % jitter. Default: 0.8 s.
    public var initialDelay: Duration = .milliseconds(800)
    /// The longest backoff. Default: 60 s.
    public var maxDelay: Duration = .seconds(60)
    /// The least wait after `com.microsoft:server-busy` (the service asks for 4 s). Default: 4 s.
    public var serverBusyDelay: Duration = .seconds(4)
    /// How long one event may take in all, waits included. Default: 10 minutes.
    public var deadline: Duration = .seconds(600)

    public init() {}

    /// The backoff before retry number `attempt` (1, 2, …), with jitter.
    public func backoff(attempt: Int) -> Duration {
        let base = self.initialDelay * (1 << min(max(attempt - 1, 0), 20))
        let capped = min(base, self.maxDelay)
        let jitter = capped / 5 * Double.random(in: 0...1)
        return min(capped + jitter, self.maxDelay)
    }
}

/// What a condition or error asks of the producer (docs/eventhubs-wire.md#outcomes-and-conditions).
enum EventHubsRecovery: Equatable {
    /// A fault of the event that may pass: retry, using up a retry.
    case retry
    /// The hub asks us to wait (throttling): wait at least the server-busy delay; no retry used.
    case throttled
    /// The link is gone: re-attach and send again; no retry used.
    case reattach
    /// The connection is gone: reconnect and send again; no retry used.
    case reconnect
    /// A sent event (or the link it was on) was refused for its token: the token lapsed before it
    /// was renewed (the service may cut a token short). Put a fresh token, re-attach and send again;
    /// fatal if that already happened with no event accepted since.
    case reauthorize
    /// Retrying cannot help.
    case fatal

    static func of(_ condition: AMQPCondition?) -> EventHubsRecovery {
        switch condition?.name {
        case "com.microsoft:server-busy": return .throttled
        case "com.microsoft:timeout", "com.microsoft:operation-cancelled": return .retry
        case "com.microsoft:container-close", AMQPCondition.connectionForced, AMQPCondition.internalError, "amqp:illegal-state":
            return .reconnect
        case AMQPCondition.detachForced, "amqp:link:transfer-limit-exceeded": return .reattach
        default: return .fatal
        }
    }

    /// What a send's result asks of the producer; `.fatal` for `accepted` (nothing to do). Unlike a
    /// refused attach, an `amqp:unauthorized-access` on an event or on the link it was sent on asks
    /// for a fresh token (`.reauthorize`): the link was authorized when it was attached.
    static func of(_ result: Result<AMQPOutcome, AMQPError>) -> EventHubsRecovery {
        switch result {
        case .success(.accepted): return .fatal
        case .success(.rejected(let condition)) where condition?.name == AMQPCondition.unauthorizedAccess: return .reauthorize
        case .success(.rejected(let condition)): return .of(condition)
        case .success(.released), .success(.modified): return .retry
        case .failure(let error) where error.remoteCondition?.name == AMQPCondition.unauthorizedAccess && error.code == .linkClosed:
            return .reauthorize
        case .failure(let error): return .of(error)
        }
    }

    /// Conditions that no retry, re-attach or reconnect can fix (the "fatal" class of
    /// docs/eventhubs-wire.md#outcomes-and-conditions).
    static let fatalConditions: Set<String> = [
        AMQPCondition.unauthorizedAccess, "com.microsoft:auth-failed", AMQPCondition.messageSizeExceeded,
        "com.microsoft:argument-error", "com.microsoft:argument-out-of-range", "com.microsoft:entity-disabled",
        AMQPCondition.notFound, AMQPCondition.notAllowed, "com.microsoft:publisher-revoked",
        "com.microsoft:producer-epoch-stolen", AMQPCondition.linkStolen, AMQPCondition.resourceLimitExceeded,
        AMQPCondition.decodeError, AMQPCondition.invalidField, AMQPCondition.notImplemented,
    ]

    /// A lost link or connection: recover, unless the peer named a condition no recovery fixes.
    static func of(_ error: any Error) -> EventHubsRecovery {
        guard let error = (error as? AMQPError) ?? (error as? EventHubsError)?.amqp else { return .fatal }
        // A link the peer detached for the token (it lapsed, perhaps cut short by the service):
        // a fresh token may help, as with a send refused for it.
        if error.code == .linkClosed && error.remoteCondition?.name == AMQPCondition.unauthorizedAccess { return .reauthorize }
        if let name = error.remoteCondition?.name, Self.fatalConditions.contains(name) { return .fatal }
        switch error.code {
        case .linkClosed: return .reattach
        case .connectionClosed, .connectionFailed, .connectionRefused, .timeout, .sessionClosed: return .reconnect
        default: return .fatal
        }
    }
}

extension EventHubsRetryPolicy {
    /// Whether the hub answered `com.microsoft:server-busy`: it throttles and asks the sender to
    /// wait (the service says 4 seconds) and to send less.
    public static func isThrottled(_ outcome: EventHubsOutcome) -> Bool {
        outcome.condition == "com.microsoft:server-busy"
    }

    /// Whether a send's final failure means the hub could not be reached in time (a lost or refused
    /// connection, a lost link, the retry deadline passing while it waited) rather than a fault of
    /// the event. A connector keeps such an event and sends it again later, without using up its
    /// retries; any other failure is the event's own. Of the client's own errors, only a put-token
    /// that failed without a verdict on the credentials (``EventHubsError/Code/authorizationFailed``:
    /// no answer, a bad request) may pass; refused or malformed credentials and a missing hub stay.
    public static func isTransient(_ error: any Error) -> Bool {
        if let error = error as? EventHubsError, error.amqp == nil {
            switch error.code {
            case .authorizationFailed, .timeout: return true
            case .connectionFailed: return !(error.condition.map(EventHubsRecovery.fatalConditions.contains) ?? false)
            default: return false
            }
        }
        if let error = (error as? AMQPError) ?? (error as? EventHubsError)?.amqp, error.code == .timeout { return true }
        switch EventHubsRecovery.of(error) {
        case .reconnect, .reattach, .throttled: return true
        case .retry, .reauthorize, .fatal: return false
        }
    }
}
