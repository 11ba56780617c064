// Hubcast — loop-side state of a receiver link.

internal import CQpidProton

/// A receiver link on the loop thread: assembles transfers into messages, hands them to the
/// consumer's buffer, and grants credit as the consumer takes them.
final class ReceiverCore: LinkCore {
    let buffer: ReceiveBuffer
    private var partial: [OpaquePointer: [UInt8]] = [:]
    private var unsettled: [UInt64: OpaquePointer] = [:]
    private var nextID: UInt64 = 0
    let creditWindow: UInt32
    /// The largest message accepted (announced in the attach).
    let maxMessageSize: Int

    init(engine: ClientEngine, session: SessionCore, source: String, options: AMQPReceiverOptions) {
        let name = options.name ?? engine.nextLinkName("receiver")
        let link = pn_receiver(session.session, name)!
        pn_terminus_set_address(pn_link_source(link), source)
        if let target = options.targetAddress { pn_terminus_set_address(pn_link_target(link), target) }
        ProtonData.write(options.filter, to: pn_terminus_filter(pn_link_source(link)))
        ProtonData.write(options.properties, to: pn_link_properties(link))
        self.creditWindow = max(1, options.creditWindow)
        self.maxMessageSize = options.maxMessageSize.map { Int(clamping: $0) } ?? ProtonDelivery.defaultLimit
        pn_link_set_max_message_size(link, UInt64(self.maxMessageSize))
        self.buffer = ReceiveBuffer()
        super.init(engine: engine, session: session, link: link, name: name)
        pn_link_flow(link, Int32(clamping: self.creditWindow))
    }

    override var remoteRefused: Bool {
        pn_terminus_get_type(pn_link_remote_source(self.link)) == PN_UNSPECIFIED
    }

    /// Grants `count` more credit, after the consumer took that many deliveries.
    func grant(_ count: UInt32) {
        guard self.failure == nil else { return }
        pn_link_flow(self.link, Int32(clamping: count))
    }

    override func delivery(_ delivery: OpaquePointer) {
        guard
            let bytes = ProtonDelivery.receive(
                delivery, on: self.link, partial: &self.partial, limit: self.maxMessageSize)
        else { return }
        guard !pn_delivery_aborted(delivery), let message = ProtonDelivery.decode(bytes, delivery: delivery) else {
            // Aborted or undecodable: settled already; the consumer never sees it, so credit returns now.
            self.grant(1)
            return
        }
        self.nextID += 1
        let settled = pn_delivery_settled(delivery)
        if settled {
            pn_delivery_settle(delivery)
        } else {
            self.unsettled[self.nextID] = delivery
        }
        let target = WeakReceiver(self)
        let loop = self.engine.loop
        let handle = AMQPDelivery(message: message, id: self.nextID, presettled: settled) { id, outcome in
            loop.run { target.core?.settle(id, outcome) }
        }
        self.buffer.push(handle)
    }

    /// Settles a delivery the consumer decided on; unknown or already settled ids are ignored.
    func settle(_ id: UInt64, _ outcome: AMQPOutcome) {
        guard let delivery = self.unsettled.removeValue(forKey: id) else { return }
        ProtonDelivery.settle(delivery, outcome)
    }

    override func failed(_ error: AMQPError) {
        self.unsettled = [:]
        self.partial = [:]
        self.buffer.finish(error)
    }
}

/// A weak reference to a receiver, for settlement closures called from any thread.
final class WeakReceiver: @unchecked Sendable {
    // @unchecked: `core` is read on the loop thread only (the closure hops there first).
    weak var core: ReceiverCore?
    init(_ core: ReceiverCore) { self.core = core }
}
