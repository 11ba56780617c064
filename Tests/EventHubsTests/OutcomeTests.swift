// The producer's answers in Event Hubs' words: outcomes and errors made from the AMQP layer's,
// keeping the service's condition and the AMQP failure underneath.

import AMQP
@testable import EventHubs
import Testing

@Suite struct OutcomeTests {
    @Test func outcomesKeepTheServicesCondition() {
        #expect(EventHubsOutcome(.accepted) == .accepted)
        let busy = EventHubsOutcome(.rejected(AMQPCondition(name: "com.microsoft:server-busy", description: "wait")))
        #expect(busy == .rejected(condition: "com.microsoft:server-busy", description: "wait"))
        #expect(busy.condition == "com.microsoft:server-busy" && !busy.isAccepted)
        #expect(EventHubsRetryPolicy.isThrottled(busy))
        #expect(!EventHubsRetryPolicy.isThrottled(.rejected(condition: AMQPCondition.messageSizeExceeded, description: nil)))
        #expect(EventHubsOutcome(.released) == .released)
        #expect("\(busy)" == "rejected (com.microsoft:server-busy: wait)")
    }

    /// Each AMQP failure maps to one Event Hubs code; the peer's condition and the AMQP error are
    /// kept, so the retry policy classifies the wrapped error as it did the AMQP one.
    @Test func errorsWrapTheAMQPFailure() {
        let detached = AMQPError(.linkClosed, "gone", remoteCondition: AMQPCondition(name: AMQPCondition.detachForced))
        let wrapped = EventHubsError(detached)
        #expect(wrapped.code == .connectionFailed)
        #expect(wrapped.condition == AMQPCondition.detachForced)
        #expect(wrapped.amqp == detached)
        #expect(EventHubsRecovery.of(wrapped) == EventHubsRecovery.of(detached))
        #expect(EventHubsError(AMQPError(.timeout, "late")).code == .timeout)
        #expect(EventHubsError(AMQPError(.cancelled, "closed")).code == .cancelled)
        #expect(EventHubsError(AMQPError(.messageTooLarge, "big")).code == .eventTooLarge)
        #expect(EventHubsError(AMQPError(.invalidConfiguration, "ca")).code == .invalidConfiguration)
        #expect(EventHubsError(AMQPError(.authenticationFailed, "PLAIN refused")).code == .unauthorized)
        // The peer's words are quoted without a credential they may carry.
        let quoting = AMQPError(
            .connectionClosed, "closed", remoteCondition: AMQPCondition(name: "amqp:internal-error", description: "bad SharedAccessKey=c2VjcmV0"))
        #expect(!"\(EventHubsError(quoting))".contains("c2VjcmV0"))
        // Transient as before: a lost link or a deadline; not an oversized event or a missing hub.
        #expect(EventHubsRetryPolicy.isTransient(wrapped))
        #expect(EventHubsRetryPolicy.isTransient(EventHubsError(AMQPError(.timeout, "late"))))
        #expect(!EventHubsRetryPolicy.isTransient(EventHubsError(AMQPError(.messageTooLarge, "big"))))
        let missing = AMQPError(.linkClosed, "no hub", remoteCondition: AMQPCondition(name: AMQPCondition.notFound))
        #expect(!EventHubsRetryPolicy.isTransient(EventHubsError(missing)))
        // Made by hand, without an AMQP failure underneath: classified by code and condition.
        #expect(EventHubsRetryPolicy.isTransient(EventHubsError(.timeout, "deadline")))
        #expect(EventHubsRetryPolicy.isTransient(EventHubsError(.connectionFailed, "reset")))
        #expect(!EventHubsRetryPolicy.isTransient(EventHubsError(.connectionFailed, "no hub", condition: AMQPCondition.notFound)))
        #expect(!EventHubsRetryPolicy.isTransient(EventHubsError(.unauthorized, "refused")))
    }
}
