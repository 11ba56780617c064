// Hubcast — the delivery handling client and server links share.

internal import CQpidProton

enum ProtonDelivery {
    /// The most a received message may hold when the link announced no max-message-size: 256 MiB.
    static let defaultLimit = 256 << 20

    /// Sends `bytes` as one new delivery with an 8-byte tag, and advances the link.
    static func send(_ bytes: [UInt8], on link: OpaquePointer, tag: inout UInt64) -> OpaquePointer {
        tag &+= 1
        let delivery = withUnsafeBytes(of: &tag) { raw in
            pn_delivery(link, pn_dtag(raw.baseAddress!.assumingMemoryBound(to: CChar.self), 8))!
        }
        bytes.withUnsafeBytes { raw in
            _ = pn_link_send(link, raw.baseAddress!.assumingMemoryBound(to: CChar.self), raw.count)
        }
        pn_link_advance(link)
        return delivery
    }

    /// Appends what is readable of `delivery` to `partial`. Returns the whole message's bytes once the
    /// last transfer arrived (and advances the link), nil while more is to come. Aborted deliveries
    /// are settled and return an empty array.
    static func receive(
        _ delivery: OpaquePointer, on link: OpaquePointer, partial: inout [OpaquePointer: [UInt8]], limit: Int
    ) -> [UInt8]? {
        guard pn_delivery_readable(delivery) else { return nil }
        var bytes = partial.removeValue(forKey: delivery) ?? []
        let pending = pn_delivery_pending(delivery)
        if bytes.count + pending > limit && pn_delivery_partial(delivery) {
            // Larger than this side accepts and still growing: detach instead of collecting without
            // bound. (A message that arrived whole is left to the caller, which may reject it.)
            partial[delivery] = nil
            let condition = AMQPCondition(
                name: AMQPCondition.messageSizeExceeded, description: "message larger than \(limit) bytes")
            ProtonData.set(condition, on: pn_link_condition(link))
            pn_link_close(link)
            return nil
        }
        if pending > 0 {
            let start = bytes.count
            bytes += [UInt8](repeating: 0, count: pending)
            let read = bytes.withUnsafeMutableBytes { raw in
                pn_link_recv(link, raw.baseAddress!.advanced(by: start).assumingMemoryBound(to: CChar.self), pending)
            }
            bytes.removeLast(pending - Swift.max(0, read))
        }
        if pn_delivery_partial(delivery) {
            partial[delivery] = bytes
            return nil
        }
        pn_link_advance(link)
        if pn_delivery_aborted(delivery) {
            pn_delivery_settle(delivery)
            return []
        }
        return bytes
    }

    /// Whether the remote state is an outcome (the peer decided).
    static func isTerminal(_ state: UInt64) -> Bool {
        state == UInt64(PN_ACCEPTED) || state == UInt64(PN_REJECTED) || state == UInt64(PN_RELEASED)
            || state == UInt64(PN_MODIFIED)
    }

    /// The peer's outcome of a delivery we sent, once it settled or decided; settles locally.
    static func settledOutcome(_ delivery: OpaquePointer) -> AMQPOutcome? {
        let state = pn_delivery_remote_state(delivery)
        guard pn_delivery_settled(delivery) || self.isTerminal(state) else { return nil }
        let remote = pn_delivery_remote(delivery)
        let outcome: AMQPOutcome
        switch state {
        case UInt64(PN_ACCEPTED): outcome = .accepted
        case UInt64(PN_REJECTED): outcome = .rejected(ProtonData.condition(pn_disposition_condition(remote)))
        case UInt64(PN_MODIFIED):
            outcome = .modified(
                deliveryFailed: pn_disposition_is_failed(remote), undeliverableHere: pn_disposition_is_undeliverable(remote))
        default:
            // Settled with no outcome (or `released`): the message was not processed.
            outcome = .released
        }
        pn_delivery_settle(delivery)
        return outcome
    }

    /// Settles a received delivery with `outcome`.
    static func settle(_ delivery: OpaquePointer, _ outcome: AMQPOutcome) {
        let local = pn_delivery_local(delivery)
        switch outcome {
        case .accepted:
            pn_delivery_update(delivery, UInt64(PN_ACCEPTED))
        case .rejected(let condition):
            if let condition { ProtonData.set(condition, on: pn_disposition_condition(local)) }
            pn_delivery_update(delivery, UInt64(PN_REJECTED))
        case .released:
            pn_delivery_update(delivery, UInt64(PN_RELEASED))
        case .modified(let failed, let undeliverable):
            pn_disposition_set_failed(local, failed)
            pn_disposition_set_undeliverable(local, undeliverable)
            pn_delivery_update(delivery, UInt64(PN_MODIFIED))
        }
        pn_delivery_settle(delivery)
    }

    /// Finds the sections of received bytes, or rejects the delivery with `amqp:decode-error` and
    /// returns nil.
    static func scan(_ bytes: [UInt8], delivery: OpaquePointer) -> AMQPMessageLayout? {
        do {
            return try AMQPMessageLayout(scanning: bytes)
        } catch {
            self.settle(delivery, .rejected(AMQPCondition(name: AMQPCondition.decodeError, description: "\(error)")))
            return nil
        }
    }

    /// Decodes received bytes, or rejects the delivery with `amqp:decode-error` and returns nil.
    static func decode(_ bytes: [UInt8], delivery: OpaquePointer) -> AMQPMessage? {
        do {
            return try AMQPMessage(decoding: bytes)
        } catch {
            self.settle(delivery, .rejected(AMQPCondition(name: AMQPCondition.decodeError, description: "\(error)")))
            return nil
        }
    }
}
