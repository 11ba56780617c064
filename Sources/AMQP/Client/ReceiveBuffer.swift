// Hubcast — the hand-over between a receiver's loop and its consumer.

import Synchronization

/// Deliveries received and not yet taken. The loop pushes; one consumer takes. Taking reports how
/// many were taken so the loop can grant that much credit again.
final class ReceiveBuffer: Sendable {
    private struct State {
        var items = FIFO<AMQPDelivery>()
        var waiter: Waiter<AMQPDelivery?>?
        var end: AMQPError?
    }

    private let state = Mutex(State())

    /// Loop thread: adds a delivery, or hands it straight to a waiting consumer. If that consumer
    /// was cancelled meanwhile, the delivery goes to the next waiter, or back to the front of the
    /// queue, so that neither order nor a later waiter is lost.
    func push(_ delivery: AMQPDelivery) {
        while true {
            let waiter = self.state.withLock { state -> Waiter<AMQPDelivery?>? in
                if let waiter = state.waiter {
                    state.waiter = nil
                    return waiter
                }
                state.items.append(delivery)
                return nil
            }
            guard let waiter else { return }
            if waiter.resume(.success(delivery)) { return }
        }
    }

    /// Loop thread: no more deliveries will come; a waiting consumer gets nil (clean close) or the error.
    func finish(_ error: AMQPError) {
        let waiter = self.state.withLock { state -> Waiter<AMQPDelivery?>? in
            if state.end == nil { state.end = error }
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(Self.endResult(error))
    }

    private static func endResult(_ error: AMQPError) -> Result<AMQPDelivery?, any Error> {
        // A link closed by this side ends the sequence quietly; anything else is an error.
        error.code == .linkClosed && error.remoteCondition == nil && error.message.hasSuffix("closed locally")
            ? .success(nil) : .failure(error)
    }

    /// Consumer: the next delivery, waiting if there is none; nil after a local close.
    func next() async throws -> AMQPDelivery? {
        let waiter = Waiter<AMQPDelivery?>()
        return try await waiter.wait {
            let ready = self.state.withLock { state -> Result<AMQPDelivery?, any Error>? in
                if let item = state.items.popFirst() { return .success(item) }
                if let end = state.end { return Self.endResult(end) }
                state.waiter = waiter
                return nil
            }
            if let ready { waiter.resume(ready) }
        }
    }
}
