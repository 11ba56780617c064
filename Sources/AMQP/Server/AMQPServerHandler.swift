// Hubcast — what a server application implements.

/// The application behind an ``AMQPListener``: it decides which links to accept, what to do with
/// each received message, and what to send to clients that attach receivers.
///
/// Every method is called on the listener's loop thread; keep them quick and never block. Every
/// method has a default, so implement only what you need.
public protocol AMQPServerHandler: AnyObject, Sendable {
    /// A client's `open` arrived and was answered.
    func connectionOpened(_ connection: AMQPServerConnection)
    /// The connection is gone; `error` says why when it did not close cleanly.
    func connectionClosed(_ connection: AMQPServerConnection, error: AMQPError?)
    /// A client attached a link. Return nil to accept it, or a condition to refuse it.
    func linkOpened(_ link: AMQPServerLink) -> AMQPCondition?
    /// The client detached a link (or its connection went away).
    func linkClosed(_ link: AMQPServerLink, condition: AMQPCondition?)
    /// A message arrived on a link the client attached as sender. Settle it now or later with
    /// ``AMQPServerDelivery/settle(_:)``; unsettled ones are dropped with their link.
    func messageReceived(_ delivery: AMQPServerDelivery)
    /// The client granted credit on a link it attached as receiver.
    func creditAvailable(_ link: AMQPServerLink)
}

extension AMQPServerHandler {
    public func connectionOpened(_ connection: AMQPServerConnection) {}
    public func connectionClosed(_ connection: AMQPServerConnection, error: AMQPError?) {}
    public func linkOpened(_ link: AMQPServerLink) -> AMQPCondition? { nil }
    public func linkClosed(_ link: AMQPServerLink, condition: AMQPCondition?) {}
    public func messageReceived(_ delivery: AMQPServerDelivery) { delivery.settle(.accepted) }
    public func creditAvailable(_ link: AMQPServerLink) {}
}
