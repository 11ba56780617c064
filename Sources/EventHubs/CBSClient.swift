// Hubcast — claims-based authorization on `$cbs` (spec §4).

import AMQP
import Foundation
import Synchronization

/// The `$cbs` request/response link pair of one connection (one pair per connection, as the
/// service requires). Put-token requests go out on the sender; the answers come back on the
/// receiver, matched by correlation id.
final class CBSClient: Sendable {
    private let sender: AMQPSender
    private let receiver: AMQPReceiver
    let replyAddress: String
    private let pending = Mutex<(counter: UInt64, waiters: [String: CheckedContinuation<AMQPMessage, any Error>])>((0, [:]))

    private init(sender: AMQPSender, receiver: AMQPReceiver, replyAddress: String) {
        self.sender = sender
        self.receiver = receiver
        self.replyAddress = replyAddress
    }

    /// Attaches the pair on `connection` and starts reading answers.
    static func attach(on connection: AMQPConnection) async throws -> CBSClient {
        let replyAddress = "hubcast-cbs-reply-\(UUID().uuidString.lowercased())"
        var senderOptions = AMQPSenderOptions(name: "$cbs-sender")
        senderOptions.properties = [("com.microsoft:timeout", .uint(60000))]
        let sender = try await connection.openSender(target: "$cbs", options: senderOptions)
        var receiverOptions = AMQPReceiverOptions(name: "$cbs-receiver", creditWindow: 50)
        receiverOptions.targetAddress = replyAddress
        receiverOptions.properties = [("com.microsoft:timeout", .uint(60000))]
        let receiver = try await connection.openReceiver(source: "$cbs", options: receiverOptions)
        let client = CBSClient(sender: sender, receiver: receiver, replyAddress: replyAddress)
        // Reads answers until the link ends; then fails whatever still waits.
        Task { await client.readAnswers() }
        return client
    }

    private func readAnswers() async {
        var failure: any Error = AMQPError(.linkClosed, "the $cbs link closed")
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

    /// Puts `token` for `audience` and waits for a 2xx answer. Throws ``EventHubsError`` with
    /// `.unauthorized` (401, 403), `.notFound` (404) or `.authorizationFailed`, carrying the service's
    /// status description (which never contains the token).
    func putToken(_ token: EventHubsSASToken, audience: String) async throws {
        let id = self.pending.withLock { state -> String in
            state.counter += 1
            return "hubcast-cbs-\(state.counter)"
        }
        var request = AMQPMessage(body: .value(.string(token.token)))
        request.properties.messageID = .string(id)
        request.properties.replyTo = self.replyAddress
        request.applicationProperties = [
            ("operation", .string("put-token")), ("type", .string("servicebus.windows.net:sastoken")),
            ("name", .string(audience)), ("expiration", .timestamp(token.expiresAt * 1000)),
        ]
        let answer: AMQPMessage = try await withCheckedThrowingContinuation { continuation in
            self.pending.withLock { $0.waiters[id] = continuation }
            self.sender.send(request) { result in
                switch result {
                case .success(.accepted): break
                case .success(let outcome): self.fail(id, EventHubsError(.authorizationFailed, "the put-token request was \(outcome)"))
                case .failure(let error): self.fail(id, error)
                }
            }
        }
        let status = answer.applicationProperty("status-code")?.integer ?? answer.applicationProperty("statusCode")?.integer ?? 0
        let description = answer.applicationProperty("status-description")?.text ?? ""
        switch status {
        case 200, 202: return
        case 401, 403: throw EventHubsError(.unauthorized, "put-token for \(audience) refused (\(status)): \(description)")
        case 404: throw EventHubsError(.notFound, "put-token for \(audience) refused (\(status)): \(description)")
        default: throw EventHubsError(.authorizationFailed, "put-token for \(audience) failed (\(status)): \(description)")
        }
    }

    private func fail(_ id: String, _ error: any Error) {
        let waiter = self.pending.withLock { $0.waiters.removeValue(forKey: id) }
        waiter?.resume(throwing: error)
    }
}
