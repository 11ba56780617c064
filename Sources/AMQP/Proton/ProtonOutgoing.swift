// Hubcast — messages waiting for credit and deliveries waiting for their outcome, on one link.

internal import CQpidProton

/// One message to send and what to call with its outcome (once, on the loop thread).
///
/// A class, so the message and its completion travel through queues and tables as one reference,
/// with no per-hop closure wrapping.
final class SendRequest: @unchecked Sendable {
    // @unchecked: `bytes` is emptied on the loop thread only, after the message went out.
    var bytes: [UInt8]
    let completion: @Sendable (Result<AMQPOutcome, AMQPError>) -> Void

    init(_ bytes: [UInt8], _ completion: @escaping @Sendable (Result<AMQPOutcome, AMQPError>) -> Void) {
        self.bytes = bytes
        self.completion = completion
    }
}

/// The sending half of a link, client or server: queues encoded messages until there is credit and
/// completes each with its outcome. Loop thread only.
struct ProtonOutgoing {
    private var pending = FIFO<SendRequest>()
    private var unsettled: [OpaquePointer: SendRequest] = [:]
    private var nextTag: UInt64 = 0
    /// Deliveries go out settled and complete as accepted at once.
    let presettled: Bool

    init(presettled: Bool) { self.presettled = presettled }

    /// Sends bytes as a new delivery with the link's next tag (tags stay unique across the queue
    /// and a stream on the same link).
    mutating func transfer(_ bytes: [UInt8], on link: OpaquePointer) -> OpaquePointer {
        ProtonDelivery.send(bytes, on: link, tag: &self.nextTag)
    }

    /// Messages waiting for credit plus deliveries waiting for an outcome.
    var inFlight: Int { self.pending.count + self.unsettled.count }

    /// Queues a message after checking it against the peer's max-message-size, then sends what credit allows.
    mutating func enqueue(_ request: SendRequest, on link: OpaquePointer) {
        let limit = pn_link_remote_max_message_size(link)
        if limit > 0 && UInt64(request.bytes.count) > limit {
            request.completion(
                .failure(
                    AMQPError(
                        .messageTooLarge, "message of \(request.bytes.count) bytes exceeds the link's max-message-size of \(limit)")))
            return
        }
        self.pending.append(request)
        self.pump(link)
    }

    /// Sends queued messages while the link has credit.
    mutating func pump(_ link: OpaquePointer) {
        while pn_link_credit(link) > 0, let request = self.pending.popFirst() {
            let delivery = self.transfer(request.bytes, on: link)
            request.bytes = []  // Proton copied them
            if self.presettled {
                pn_delivery_settle(delivery)
                request.completion(.success(.accepted))
            } else {
                self.unsettled[delivery] = request
            }
        }
    }

    /// Completes a delivery once the peer settled it or gave an outcome.
    mutating func update(_ delivery: OpaquePointer) {
        guard let outcome = ProtonDelivery.settledOutcome(delivery) else { return }
        self.unsettled.removeValue(forKey: delivery)?.completion(.success(outcome))
    }

    /// Fails every queued and unsettled message with `error`.
    mutating func fail(_ error: AMQPError) {
        let waiting = self.pending.removeAll()
        let unsettled = self.unsettled
        self.unsettled = [:]
        for request in waiting { request.completion(.failure(error)) }
        for request in unsettled.values { request.completion(.failure(error)) }
    }
}
