// Hubcast — Proton's connection driver over a socket the loop owns.

internal import CQpidProton
#if canImport(Glibc)
import Glibc
#endif
import Logging

/// Handles the Proton events of one connection, on the loop thread.
protocol ProtonEngine: AnyObject {
    /// Handles one event.
    func handle(_ event: OpaquePointer, type: pn_event_type_t)
    /// The socket failed before or under the transport (connect refused, reset, …).
    func socketFailed(_ error: AMQPError)
    /// The driver was freed: no Proton handle of this connection may be used any more.
    func driverReleased()
}

/// One AMQP connection: a `pn_connection_driver_t` whose bytes this channel moves over its socket,
/// through an optional ``AMQPByteStreamHook``.
final class ProtonTransportChannel: ProtonChannel {
    private(set) var fd: Int32
    /// Addresses still to try if the connect in progress fails (IPv6 then IPv4, …).
    var fallbackAddresses: [ProtonSocket.Address] = []
    let loop: ProtonLoop
    let driver: UnsafeMutablePointer<pn_connection_driver_t>
    let logger: Logger
    private var engineStrong: (any ProtonEngine)?
    private let hook: (any AMQPByteStreamHook)?
    private var connecting: Bool
    private var wantsWrite: Bool
    private var outPending: [UInt8] = []
    private var inPending: [UInt8] = []
    private var released = false
    private let readScratch: UnsafeMutableRawBufferPointer

    /// Wraps a connected (or connecting) socket with a driver for `connection` and `transport`.
    init(
        fd: Int32, loop: ProtonLoop, connection: OpaquePointer, transport: OpaquePointer, engine: any ProtonEngine,
        hook: (any AMQPByteStreamHook)?, connecting: Bool, trace: Bool, logger: Logger
    ) {
        self.fd = fd
        self.loop = loop
        self.logger = logger
        self.engineStrong = engine
        self.hook = hook
        self.connecting = connecting
        self.wantsWrite = connecting
        self.readScratch = .allocate(byteCount: hook == nil ? 0 : 65536, alignment: 8)
        self.driver = .allocate(capacity: 1)
        self.driver.initialize(to: pn_connection_driver_t())
        pn_connection_driver_init(self.driver, connection, transport)
        pn_transport_set_context(transport, Unmanaged.passUnretained(self).toOpaque())
        if trace {
            pn_transport_trace(transport, pn_trace_t(PN_TRACE_FRM))
            pn_transport_set_tracer(transport) { transport, message in
                guard let transport, let message, let context = pn_transport_get_context(transport) else { return }
                let channel = Unmanaged<ProtonTransportChannel>.fromOpaque(context).takeUnretainedValue()
                // A frame may carry a credential: a put-token body (a SAS token), a SASL PLAIN
                // response (a key), a `$management` request's security_token.
                channel.logger.debug("frame \(AMQPRedaction.redact(String(cString: message)))")
            }
        }
        loop.register(self, writable: connecting)
    }

    deinit {
        self.readScratch.deallocate()
        if !self.released { pn_connection_driver_destroy(self.driver) }
        self.driver.deallocate()
    }

    var transport: OpaquePointer { self.driver.pointee.transport }
    var connection: OpaquePointer { self.driver.pointee.connection }

    /// Fails the transport with `error` and closes both directions.
    func fail(_ error: AMQPError) {
        guard !self.released else { return }
        self.engineStrong?.socketFailed(error)
        let condition = pn_transport_condition(self.transport)
        if !pn_condition_is_set(condition) {
            pn_condition_set_name(condition, AMQPCondition.connectionForced)
            pn_condition_set_description(condition, error.message)
        }
        self.abort()
    }

    /// Closes both directions now, without waiting for the peer. A connect still in progress is
    /// given up, so that the next `service` releases the driver.
    func abort() {
        guard !self.released else { return }
        self.connecting = false
        pn_connection_driver_close(self.driver)
    }

    // MARK: - I/O

    func handleIO(readable: Bool, writable: Bool, hangup: Bool) {
        guard !self.released else { return }
        if self.connecting {
            guard writable || hangup else { return }
            self.connecting = false
            let code = ProtonSocket.connectError(self.fd)
            if code != 0 {
                var error = ProtonSocket.connectFailure(code, host: self.peerName, port: self.peerPort)
                while !self.fallbackAddresses.isEmpty {
                    let next = self.fallbackAddresses.removeFirst()
                    do {
                        let fd = try ProtonSocket.connect(to: next, host: self.peerName, port: self.peerPort)
                        self.loop.replaceSocket(of: self, with: fd) { self.fd = $0 }
                        self.connecting = true
                        return
                    } catch let failure as AMQPError {
                        error = failure
                    } catch {}
                }
                self.fail(error)
                return
            }
        }
        if readable || hangup { self.readAvailable() }
    }

    /// Host and port named in failures of the connect; set by the client.
    var peerName = ""
    var peerPort = 0

    /// Reads what the socket has (a few buffers at most per wake-up, so one busy peer cannot starve
    /// the loop and answers go out soon) and lets the transport process it. Output is written once,
    /// by `service`.
    private func readAvailable() {
        for _ in 0..<2 {
            let requested: Int
            let count: Int
            if let hook = self.hook {
                if !self.feedPending() { return }
                requested = self.readScratch.count
                count = recv(self.fd, self.readScratch.baseAddress, requested, 0)
                guard self.checkRead(count) else { return }
                self.inPending += hook.incoming(UnsafeRawBufferPointer(rebasing: self.readScratch[0..<count]))
                if !self.feedPending() { return }
            } else {
                // Ask for room for a whole burst: Proton's default read buffer is small, and each
                // read is a system call.
                let buffer = pn_connection_driver_read_buffer_sized(self.driver, 65536)
                guard buffer.size > 0 else { return }
                requested = buffer.size
                count = recv(self.fd, buffer.start, requested, 0)
                guard self.checkRead(count) else { return }
                pn_connection_driver_read_done(self.driver, count)
            }
            self.dispatch()
            // A short read means the socket is drained: epoll reports the next data.
            if count < requested { return }
        }
    }

    /// Handles a `recv` result; returns true when `count` bytes were read.
    private func checkRead(_ count: Int) -> Bool {
        if count > 0 { return true }
        if count == 0 {
            // Let the transport act on what it read (a SASL outcome is acted on when it writes)
            // before it learns that the stream ended.
            self.dispatch()
            _ = self.flush()
            pn_connection_driver_read_close(self.driver)
        } else if errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR {
            self.fail(AMQPError(.connectionFailed, "connection lost: \(ProtonLoop.errnoText())"))
        }
        return false
    }

    /// Moves hook-transformed input into the transport; returns false if the transport is full.
    private func feedPending() -> Bool {
        while !self.inPending.isEmpty {
            let buffer = pn_connection_driver_read_buffer(self.driver)
            guard buffer.size > 0 else { return false }
            let count = min(buffer.size, self.inPending.count)
            self.inPending.withUnsafeBytes { bytes in
                buffer.start.update(from: bytes.baseAddress!.assumingMemoryBound(to: CChar.self), count: count)
            }
            pn_connection_driver_read_done(self.driver, count)
            self.inPending.removeFirst(count)
        }
        return true
    }

    /// Writes what the transport has; returns false when the socket is full.
    private func flush() -> Bool {
        while true {
            if !self.outPending.isEmpty {
                let sent = self.outPending.withUnsafeBytes { send(self.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if sent > 0 {
                    self.outPending.removeFirst(sent)
                    continue
                }
                return self.writeFailed()
            }
            let buffer = pn_connection_driver_write_buffer(self.driver)
            guard buffer.size > 0 else { return true }
            if let hook = self.hook {
                self.outPending += hook.outgoing(UnsafeRawBufferPointer(start: buffer.start, count: buffer.size))
                pn_connection_driver_write_done(self.driver, buffer.size)
                continue
            }
            let sent = send(self.fd, buffer.start, buffer.size, Int32(MSG_NOSIGNAL))
            if sent > 0 {
                pn_connection_driver_write_done(self.driver, sent)
                continue
            }
            return self.writeFailed()
        }
    }

    private func writeFailed() -> Bool {
        if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { return false }
        self.fail(AMQPError(.connectionFailed, "connection lost: \(ProtonLoop.errnoText())"))
        pn_connection_driver_write_close(self.driver)
        return true
    }

    private func dispatch() {
        guard let engine = self.engineStrong else { return }
        while let event = pn_connection_driver_next_event(self.driver) {
            engine.handle(event, type: pn_event_type(event))
        }
    }

    func service(now: Int64) -> Int64? {
        guard !self.released else { return nil }
        if self.connecting { return nil }
        let deadline = pn_transport_tick(self.transport, now)
        var writable = true
        repeat {
            self.dispatch()
            writable = self.flush()
        } while pn_connection_driver_has_event(self.driver)
        if pn_connection_driver_finished(self.driver) && self.outPending.isEmpty {
            self.release()
            return nil
        }
        if writable == self.wantsWrite {
            self.wantsWrite = !writable
            self.loop.setWriteInterest(self, !writable)
        }
        return deadline == 0 ? nil : deadline
    }

    private func release() {
        self.released = true
        self.loop.deregister(self)
        pn_connection_driver_destroy(self.driver)
        let engine = self.engineStrong
        self.engineStrong = nil
        engine?.driverReleased()
    }
}
