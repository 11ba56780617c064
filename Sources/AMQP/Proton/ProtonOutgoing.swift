// Hubcast — messages waiting for credit and deliveries waiting for their outcome, on one link.

internal import CQpidProton

/// Called once per message, on the loop thread, with the outcome or the reason it could not be sent.
typealias SendCompletion = (Result<AMQPOutcome, AMQPError>) -> Void

/// The sending half of a link, client or server: queues encoded messages until there is credit and
/// completes each with its outcome. Loop thread only.
struct ProtonOutgoing {
    private var pending = FIFO<(bytes: [UInt8], completion: SendCompletion)>()
    private var unsettled: [OpaquePointer: SendCompletion] = [:]
    private var nextTag: UInt64 = 0
    /// Deliveries go out settled and complete as accepted at once.
    let presettled: Bool

    init(presettled: Bool) { self.presettled = presettled }

    /// Messages waiting for credit plus deliveries waiting for an outcome.
    var inFlight: Int { self.pending.count + self.unsettled.count }

    /// Queues a message after checking it against the peer's max-message-size, then sends what credit allows.
    mutating func enqueue(_ bytes: [UInt8], on link: OpaquePointer, _ completion: @escaping SendCompletion) {
        let limit = pn_link_remote_max_message_size(link)
        if limit > 0 && UInt64(bytes.count) > limit {
            completion(.failure(AMQPError(
                .messageTooLarge, "message of \(bytes.count) bytes exceeds the link's max-message-size of \(limit)")))
            return
        }
        self.pending.append((bytes, completion))
        self.pump(link)
    }

    /// Sends queued messages while the link has credit.
    mutating func pump(_ link: OpaquePointer) {
        while pn_link_credit(link) > 0, let (bytes, completion) = self.pending.popFirst() {
            let delivery = ProtonDelivery.send(bytes, on: link, tag: &self.nextTag)
            if self.presettled {
                pn_delivery_settle(delivery)
                completion(.success(.accepted))
            } else {
                self.unsettled[delivery] = completion
            }
        }
    }

    /// Completes a delivery once the peer settled it or gave an outcome.
    mutating func update(_ delivery: OpaquePointer) {
        guard let outcome = ProtonDelivery.settledOutcome(delivery) else { return }
        self.unsettled.removeValue(forKey: delivery)?(.success(outcome))
    }

    /// Fails every queued and unsettled message with `error`.
    mutating func fail(_ error: AMQPError) {
        let waiting = self.pending.removeAll()
        let unsettled = self.unsettled
        self.unsettled = [:]
        for (_, completion) in waiting { completion(.failure(error)) }
        for completion in unsettled.values { completion(.failure(error)) }
    }
}
