// Hubcast — a hook between Proton's transport and the socket.

/// Sees, and may rewrite, the bytes between Proton's transport and the socket of one connection.
///
/// Hubcast owns the byte stream: Proton's transport (with its TLS layer, when TLS is on) produces
/// and consumes bytes, and Hubcast moves them over its own sockets. A hook sits between the two:
/// the Event Hubs emulator uses one to rewrite outgoing frames for clients that need every field of a
/// performative, and AMQP over WebSockets can frame the stream the same way.
///
/// A hook is made per connection (see ``AMQPConnectionConfiguration/byteStreamHook``) and is called
/// on that connection's loop thread only, so it needs no locking. With TLS on, it sees encrypted bytes.
public protocol AMQPByteStreamHook: AnyObject {
    /// Bytes the transport wrote, on their way to the socket. Return what to send instead; keeping
    /// bytes back for a later call is allowed (return fewer), as is returning more.
    func outgoing(_ bytes: UnsafeRawBufferPointer) -> [UInt8]
    /// Bytes read from the socket, on their way to the transport. Return what the transport reads.
    func incoming(_ bytes: UnsafeRawBufferPointer) -> [UInt8]
}

/// Makes a fresh hook for each new connection.
public typealias AMQPByteStreamHookFactory = @Sendable () -> any AMQPByteStreamHook
