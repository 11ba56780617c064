// Hubcast — a continuation that is resumed exactly once, by a result or by cancellation.

import Synchronization

/// Holds one continuation; the first of `resume(_:)` and `cancel()` wins, later calls do nothing.
/// Resumes happen outside the lock.
final class Waiter<Value: Sendable>: Sendable {
    private enum State {
        case idle
        case waiting(CheckedContinuation<Value, any Error>)
        case cancelled
        case done(Result<Value, any Error>)
        case finished
    }

    private let state = Mutex(State.idle)

    init() {}

    /// Waits for the value; cancelling the task throws ``AMQPError/Code/cancelled``. `start` runs once
    /// the waiter is armed (it may resume at once).
    func wait(start: () -> Void) async throws -> Value {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Value, any Error>) in
                let early = self.state.withLock { state -> Result<Value, any Error>? in
                    switch state {
                    case .idle:
                        state = .waiting(continuation)
                        return nil
                    case .cancelled:
                        state = .finished
                        return .failure(AMQPError(.cancelled, "the waiting task was cancelled"))
                    case .done(let result):
                        state = .finished
                        return result
                    case .waiting, .finished:
                        return .failure(AMQPError(.protocolViolation, "waiter used twice"))
                    }
                }
                if let early {
                    continuation.resume(with: early)
                } else {
                    start()
                }
            }
        } onCancel: {
            self.resume(.failure(AMQPError(.cancelled, "the waiting task was cancelled")), cancelling: true)
        }
    }

    /// Delivers the result; does nothing if already resumed or cancelled. Returns whether the
    /// result reached (or will reach) the waiting task.
    @discardableResult
    func resume(_ result: Result<Value, any Error>) -> Bool {
        self.resume(result, cancelling: false)
    }

    @discardableResult
    private func resume(_ result: Result<Value, any Error>, cancelling: Bool) -> Bool {
        let (continuation, taken) = self.state.withLock { state -> (CheckedContinuation<Value, any Error>?, Bool) in
            switch state {
            case .idle:
                state = cancelling ? .cancelled : .done(result)
                return (nil, !cancelling)
            case .waiting(let continuation):
                state = .finished
                return (continuation, true)
            case .cancelled, .done, .finished:
                return (nil, false)
            }
        }
        continuation?.resume(with: result)
        return taken
    }
}
