// Hubcast — connections, links and deliveries as a server application sees them.

internal import CQpidProton
import Synchronization

/// A client connection accepted by an ``AMQPListener``.
///
/// Its properties are fixed once ``AMQPServerHandler/connectionOpened(_:)`` is called. Methods may be
/// called from any thread; they run on the listener's loop.
public final class AMQPServerConnection: @unchecked Sendable {
    // @unchecked: the `let`s are immutable; `engine` is used on the loop thread only.
    /// A number unique within the listener.
    public let id: UInt64
    /// The user SASL authenticated (`anonymous` for ANONYMOUS-like mechanisms), or nil without SASL.
    public internal(set) var user: String?
    /// The SASL mechanism the client authenticated with (`PLAIN`, `ANONYMOUS`, …), or nil without SASL.
    public internal(set) var mechanism: String?
    /// The client's container id.
    public internal(set) var containerID = ""
    /// The `hostname` the client put in `open`.
    public internal(set) var hostname: String?
    /// The client's connection properties.
    public internal(set) var properties: [(AMQPSymbol, AMQPValue)] = []
    weak var engine: ServerEngine?
    let loop: ProtonLoop

    init(id: UInt64, loop: ProtonLoop) {
        self.id = id
        self.loop = loop
    }

    /// Loop thread: have this connection's output written before the loop waits (work for it may be
    /// done while another connection's events are handled).
    func touched() {
        if let channel = self.engine?.channel { self.loop.markDirty(channel) }
    }

    /// Closes the connection with an optional condition (for example `amqp:connection:forced`).
    public func close(condition: AMQPCondition? = nil) {
        self.loop.run { [weak self] in
            self?.engine?.close(condition: condition)
            self?.touched()
        }
    }

    /// Runs `task` on the listener's loop thread after `delay` (for a broker that answers later, or
    /// a test that injects a pause). Dropped if the listener closes first.
    public func schedule(after delay: Duration, _ task: @escaping @Sendable () -> Void) {
        let loop = self.loop
        _ = loop.run { loop.schedule(afterMilliseconds: delay.milliseconds, task) }
    }

    /// Drops the socket at once, without a `close` frame: a lost connection, for fault injection
    /// (the emulator's) and tests; not part of the API a server implementer needs.
    @_spi(FaultInjection) public func drop() {
        self.loop.run { [weak self] in self?.engine?.channel?.abort() }
    }
}

/// A link a client attached to an ``AMQPListener``.
///
/// When the client attached a sender, messages arrive through
/// ``AMQPServerHandler/messageReceived(_:)``; when it attached a receiver (``isSender`` is true here),
/// send with ``send(_:onOutcome:)``. Methods may be called from any thread; they run on the loop.
public final class AMQPServerLink: @unchecked Sendable {
    // @unchecked: `let`s are immutable; the `var`s and `handle` are used on the loop thread only.
    /// A number unique within the listener.
    public let id: UInt64
    /// The link name.
    public let name: String
    /// The connection.
    public let connection: AMQPServerConnection
    /// True when this side sends (the client attached a receiver).
    public let isSender: Bool
    /// The address the client named: its target when it sends, its source when it receives.
    public let address: String?
    /// The client's source address (for a receiving client: what it reads from).
    public let sourceAddress: String?
    /// The client's target address (for a receiving client: often its reply address).
    public let targetAddress: String?
    /// The client's link properties.
    public let properties: [(AMQPSymbol, AMQPValue)]
    /// The filter of the client's source (receivers only), such as Event Hubs' selector.
    public let filter: [(AMQPSymbol, AMQPValue)]
    /// The max-message-size announced to the client for messages it sends here; set it in
    /// ``AMQPServerHandler/linkOpened(_:)``. Default: nil (no limit).
    public var maxMessageSize: UInt64?
    /// Loop thread: credit the client granted (for ``isSender`` links).
    public var credit: Int { self.handle.map { Int(pn_link_credit($0)) } ?? 0 }

    var handle: OpaquePointer?
    var outgoing = ProtonOutgoing(presettled: false)
    var creditWindow: UInt32
    var closed = false

    init(id: UInt64, handle: OpaquePointer, connection: AMQPServerConnection, creditWindow: UInt32) {
        self.id = id
        self.handle = handle
        self.connection = connection
        self.name = String(cString: pn_link_name(handle))
        self.isSender = pn_link_is_sender(handle)
        self.sourceAddress = ProtonData.address(pn_link_remote_source(handle))
        self.targetAddress = ProtonData.address(pn_link_remote_target(handle))
        self.address = self.isSender ? self.sourceAddress : self.targetAddress
        self.properties = ProtonData.readSymbolMap(pn_link_remote_properties(handle))
        self.filter = self.isSender ? ProtonData.readSymbolMap(pn_terminus_filter(pn_link_remote_source(handle))) : []
        self.creditWindow = creditWindow
    }

    /// Sends a message to the client; `onOutcome` runs on the loop thread with its outcome.
    public func send(_ message: AMQPMessage, onOutcome: @escaping @Sendable (Result<AMQPOutcome, AMQPError>) -> Void) {
        self.send(encoded: message.encoded(), onOutcome: onOutcome)
    }

    /// Sends an encoded message; see ``send(_:onOutcome:)``.
    public func send(encoded bytes: [UInt8], onOutcome: @escaping @Sendable (Result<AMQPOutcome, AMQPError>) -> Void) {
        let accepted = self.connection.loop.run { [self] in
            guard let handle = self.handle, !self.closed else {
                onOutcome(.failure(AMQPError(.linkClosed, "link \(self.name) is closed")))
                return
            }
            self.outgoing.enqueue(SendRequest(bytes, onOutcome), on: handle)
            self.connection.touched()
        }
        if !accepted { onOutcome(.failure(AMQPError(.connectionClosed, "the listener is closed"))) }
    }

    /// Detaches the link, with an optional condition (for example `amqp:link:detach-forced`).
    public func close(condition: AMQPCondition? = nil) {
        self.connection.loop.run { [self] in
            guard let handle = self.handle, !self.closed else { return }
            if let condition { ProtonData.set(condition, on: pn_link_condition(handle)) }
            pn_link_close(handle)
            self.connection.touched()
        }
    }

    /// Sets the credit kept available to a client that sends here; 0 stops granting (the client
    /// stalls once its credit is used up). Takes effect as messages arrive, or at once when raised.
    public func setCreditWindow(_ window: UInt32) {
        self.connection.loop.run { [self] in
            self.creditWindow = window
            self.topUpCredit()
            self.connection.touched()
        }
    }

    /// Grants credit back up to the window once half of it is used.
    func topUpCredit() {
        guard let handle = self.handle, !self.closed, !self.isSender else { return }
        let credit = UInt32(Swift.max(0, pn_link_credit(handle)))
        if credit <= self.creditWindow / 2 && self.creditWindow > credit {
            pn_link_flow(handle, Int32(clamping: self.creditWindow - credit))
        }
    }
}

/// A message a client sent to an ``AMQPListener``, waiting to be settled.
///
/// The message is kept as it arrived (``encoded``, with its ``layout``) and decoded only when
/// ``message`` is first read, so a broker that stores the bytes never pays for decoding them.
public final class AMQPServerDelivery: @unchecked Sendable {
    // @unchecked: `handle` is used on the loop thread only; `decoded` is behind its mutex; the rest
    // is immutable.
    /// The message's bytes as they arrived.
    public let encoded: [UInt8]
    /// Where the message's sections lie in ``encoded`` (checked when the message arrived).
    public let layout: AMQPMessageLayout
    /// The link it arrived on.
    public let link: AMQPServerLink
    var handle: OpaquePointer?
    private let decoded = Mutex<AMQPMessage?>(nil)

    init(encoded: [UInt8], layout: AMQPMessageLayout, link: AMQPServerLink, handle: OpaquePointer?) {
        self.encoded = encoded
        self.layout = layout
        self.link = link
        self.handle = handle
    }

    /// The decoded message, decoded on first use. Its sections were checked on arrival; if what one
    /// holds is malformed (a property of the wrong type, say), this is an empty message and
    /// ``decodeMessage()`` throws the reason.
    public var message: AMQPMessage {
        if let message = self.decoded.withLock({ $0 }) { return message }
        let message = (try? AMQPMessage(decoding: self.encoded)) ?? AMQPMessage()
        self.decoded.withLock { $0 = message }
        return message
    }

    /// Decodes the message; throws ``AMQPError/Code/decodingFailed`` when it is malformed.
    public func decodeMessage() throws -> AMQPMessage {
        try AMQPMessage(decoding: self.encoded)
    }

    /// Settles with `outcome` (accepted, rejected with a condition, released, modified). Later calls
    /// and calls after the link closed do nothing.
    public func settle(_ outcome: AMQPOutcome) {
        self.link.connection.loop.run { [self] in
            guard let handle = self.handle, !self.link.closed else { return }
            self.handle = nil
            ProtonDelivery.settle(handle, outcome)
            self.link.connection.touched()
        }
    }
}
