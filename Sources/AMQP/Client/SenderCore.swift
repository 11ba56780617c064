// Hubcast — loop-side state of a sender link.

internal import CQpidProton

/// A sender link on the loop thread.
final class SenderCore: LinkCore {
    private var outgoing: ProtonOutgoing
    private var stream: SenderStream?

    init(engine: ClientEngine, session: SessionCore, target: String, options: AMQPSenderOptions) {
        let name = options.name ?? engine.nextLinkName("sender")
        let link = pn_sender(session.session, name)!
        pn_terminus_set_address(pn_link_target(link), target)
        if let source = options.sourceAddress { pn_terminus_set_address(pn_link_source(link), source) }
        pn_link_set_snd_settle_mode(link, pn_snd_settle_mode_t(UInt32(options.settleMode.rawValue)))
        ProtonData.write(options.properties, to: pn_link_properties(link))
        self.outgoing = ProtonOutgoing(presettled: options.settleMode == .settled)
        super.init(engine: engine, session: session, link: link, name: name)
    }

    override var remoteRefused: Bool {
        pn_terminus_get_type(pn_link_remote_target(self.link)) == PN_UNSPECIFIED
    }

    /// The peer's max-message-size, or nil when it set none.
    var maxMessageSize: UInt64? {
        let size = pn_link_remote_max_message_size(self.link)
        return size == 0 ? nil : size
    }

    /// Queues an encoded message; it goes out as soon as there is credit.
    func enqueue(_ request: SendRequest) {
        if let failure = self.failure {
            request.completion(.failure(failure))
            return
        }
        self.outgoing.enqueue(request, on: self.link)
    }

    /// Starts pulling from `stream`; fails its waiter if the link is unusable or already streaming.
    func start(_ stream: SenderStream) {
        if let failure = self.failure {
            stream.fail(failure)
        } else if self.stream != nil {
            stream.fail(AMQPError(.invalidConfiguration, "link \(self.name) is already streaming"))
        } else {
            self.stream = stream
            self.flow()
        }
    }

    override func flow() {
        guard self.failure == nil else { return }
        self.outgoing.pump(self.link)
        if let stream = self.stream, stream.pump(self.link, outgoing: &self.outgoing) {
            self.stream = nil
            stream.done.resume(.success(()))
        }
    }

    override func delivery(_ delivery: OpaquePointer) {
        if let stream = self.stream, stream.update(delivery) {
            // Finish, or refill once half the window is free if the window (not credit) held the
            // stream back; new credit from the peer triggers `flow` by itself.
            if stream.exhausted || (stream.unsettledCount <= stream.window / 2 && pn_link_credit(self.link) > 0) {
                self.flow()
            }
        } else {
            self.outgoing.update(delivery)
        }
    }

    override func failed(_ error: AMQPError) {
        self.outgoing.fail(error)
        if let stream = self.stream {
            self.stream = nil
            stream.fail(error)
        }
    }
}
