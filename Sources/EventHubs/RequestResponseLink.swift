// Hubcast — a request/response link pair, as `$cbs` and `$management` use
// (docs/eventhubs-wire.md#authorization-on-cbs, #management-reads).

import AMQP
import Foundation
import Synchronization

/// A sender to a node and a receiver from it whose target is a unique reply address. Requests get
/// a message id and that reply-to; answers are matched by correlation id.
final class RequestResponseLink: Sendable {
    private let sender: AMQPSender
    private let receiver: AMQPReceiver
    let replyAddress: String
    private let pending = Mutex<(counter: UInt64, waiters: [String: CheckedContinuation<AMQPMessage, any Error>])>((0, [:]))

    private init(sender: AMQPSender, receiver: AMQPReceiver, replyAddress: String) {
        self.sender = sender
        self.receiver = receiver
        self.replyAddress = replyAddress
    }

    /// Attaches the pair to `node` on `connection` and starts reading answers.
    static func attach(to node: String, on connection: AMQPConnection) async throws -> RequestResponseLink {
        let id = UUID().uuidString.lowercased()
        let replyAddress = "hubcast-\(node.trimmingCharacters(in: CharacterSet(charactersIn: "$")))-reply-\(id)"
        var senderOptions = AMQPSenderOptions(name: "\(node)-sender-\(id)")
        senderOptions.properties = [("com.microsoft:timeout", .uint(60000))]
        let sender = try await connection.openSender(target: node, options: senderOptions)
        var receiverOptions = AMQPReceiverOptions(name: "\(node)-receiver-\(id)", creditWindow: 50)
        receiverOptions.targetAddress = replyAddress
        receiverOptions.properties = [("com.microsoft:timeout", .uint(60000))]
        let receiver = try await connection.openReceiver(source: node, options: receiverOptions)
        let link = RequestResponseLink(sender: sender, receiver: receiver, replyAddress: replyAddress)
        // Reads answers until the link ends; then fails whatever still waits.
        Task { await link.readAnswers() }
        return link
    }

    private func readAnswers() async {
        var failure: any Error = AMQPError(.linkClosed, "the request/response link closed")
        do {
            for try await delivery in self.receiver {
                delivery.accept()
                guard let id = delivery.message.properties.correlationID?.text else { continue }
                let waiter = self.pending.withLock { $0.waiters.removeValue(forKey: id) }
                waiter?.resume(returning: delivery.message)
            }
        } catch {
            failure = error
        }
        let waiters = self.pending.withLock { state in
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume(throwing: failure) }
    }

    /// Sends `request` (its message id and reply-to are set here) and waits for the answer.
    func request(_ message: AMQPMessage) async throws -> AMQPMessage {
        let id = self.pending.withLock { state -> String in
            state.counter += 1
            return "hubcast-request-\(state.counter)"
        }
        var request = message
        request.properties.messageID = .string(id)
        request.properties.replyTo = self.replyAddress
        return try await withCheckedThrowingContinuation { continuation in
            self.pending.withLock { $0.waiters[id] = continuation }
            self.sender.send(request) { result in
                switch result {
                case .success(.accepted): break
                case .success(let outcome): self.fail(id, EventHubsError(.authorizationFailed, "the request was \(outcome)"))
                case .failure(let error): self.fail(id, error)
                }
            }
        }
    }

    private func fail(_ id: String, _ error: any Error) {
        let waiter = self.pending.withLock { $0.waiters.removeValue(forKey: id) }
        waiter?.resume(throwing: error)
    }

    /// The status code of an answer (`status-code`, or `statusCode` as Service Bus writes it).
    static func status(of answer: AMQPMessage) -> (code: Int64, description: String) {
        let code = answer.applicationProperty("status-code")?.integer ?? answer.applicationProperty("statusCode")?.integer ?? 0
        let description =
            answer.applicationProperty("status-description")?.text
            ?? answer.applicationProperty("statusDescription")?.text ?? ""
        return (code, description)
    }
}
