// Hubcast — the loop-side state of one accepted connection.

internal import CQpidProton
import Logging

/// Handles the Proton events of one accepted connection and calls the application's handler.
final class ServerEngine: ProtonEngine {
    let connection: AMQPServerConnection
    let handler: any AMQPServerHandler
    let configuration: AMQPListenerConfiguration
    let listener: ListenerCore
    var channel: ProtonTransportChannel?
    private var links: [OpaquePointer: AMQPServerLink] = [:]
    private var partial: [OpaquePointer: [UInt8]] = [:]
    private var socketError: AMQPError?
    private var opened = false

    init(connection: AMQPServerConnection, listener: ListenerCore) {
        self.connection = connection
        self.listener = listener
        self.handler = listener.handler
        self.configuration = listener.configuration
    }

    func close(condition: AMQPCondition?) {
        guard let channel = self.channel else { return }
        if let condition { ProtonData.set(condition, on: pn_connection_condition(channel.connection)) }
        pn_connection_close(channel.connection)
    }

    func socketFailed(_ error: AMQPError) {
        if self.socketError == nil { self.socketError = error }
    }

    // swiftlint:disable:next cyclomatic_complexity
    func handle(_ event: OpaquePointer, type: pn_event_type_t) {
        switch type {
        case PN_CONNECTION_REMOTE_OPEN:
            let handle = pn_event_connection(event)!
            self.connection.containerID = pn_connection_remote_container(handle).map { String(cString: $0) } ?? ""
            self.connection.hostname = pn_connection_remote_hostname(handle).map { String(cString: $0) }
            self.connection.properties = ProtonData.readSymbolMap(pn_connection_remote_properties(handle))
            if let transport = self.channel?.transport, let context = ProtonSASLContext.from(transport) {
                self.connection.user = context.authenticatedUser
                self.connection.mechanism = context.authenticatedMechanism
            }
            pn_connection_set_container(handle, self.configuration.containerID)
            pn_connection_open(handle)
            self.opened = true
            self.handler.connectionOpened(self.connection)
        case PN_CONNECTION_REMOTE_CLOSE:
            pn_connection_close(pn_event_connection(event))
        case PN_SESSION_REMOTE_OPEN:
            let session = pn_event_session(event)!
            if pn_session_state(session) & Int32(PN_LOCAL_UNINIT) != 0 { pn_session_open(session) }
        case PN_SESSION_REMOTE_CLOSE:
            // Ending a session ends its links without detach frames: tell the application, then
            // let Proton free the session and its links.
            let session = pn_event_session(event)!
            for handle in self.links.keys where pn_link_session(handle) == session {
                self.linkGone(handle, condition: nil, error: AMQPError(.sessionClosed, "the client ended the session"))
            }
            pn_session_close(session)
            pn_session_free(session)
        case PN_LINK_REMOTE_OPEN:
            self.linkOpened(pn_event_link(event)!)
        case PN_LINK_REMOTE_CLOSE, PN_LINK_REMOTE_DETACH:
            let handle = pn_event_link(event)!
            let condition = ProtonData.condition(pn_link_remote_condition(handle))
            if pn_link_state(handle) & Int32(PN_LOCAL_CLOSED) == 0 { pn_link_close(handle) }
            self.linkGone(handle, condition: condition, error: AMQPError(.linkClosed, "the client detached the link"))
            // Both sides detached: Proton frees the link once the transport is done with it.
            pn_link_free(handle)
        case PN_LINK_LOCAL_CLOSE:
            // The application closed it: stop using it now; the client's detach follows.
            let handle = pn_event_link(event)!
            self.links[handle]?.closed = true
        case PN_LINK_FLOW:
            let handle = pn_event_link(event)!
            guard let link = self.links[handle], link.isSender, !link.closed else { return }
            link.outgoing.pump(handle)
            if pn_link_credit(handle) > 0 { self.handler.creditAvailable(link) }
        case PN_DELIVERY:
            self.delivery(pn_event_delivery(event)!)
        default:
            break
        }
    }

    private func linkOpened(_ handle: OpaquePointer) {
        guard pn_link_state(handle) & Int32(PN_LOCAL_UNINIT) != 0 else { return }
        let link = AMQPServerLink(
            id: self.listener.nextID(), handle: handle, connection: self.connection,
            creditWindow: self.configuration.creditWindow)
        pn_terminus_copy(pn_link_source(handle), pn_link_remote_source(handle))
        pn_terminus_copy(pn_link_target(handle), pn_link_remote_target(handle))
        if let condition = self.handler.linkOpened(link) {
            // Refuse: attach with no terminus, then detach with the condition (AMQP 1.0 §2.6.3).
            pn_terminus_set_type(link.isSender ? pn_link_source(handle) : pn_link_target(handle), PN_UNSPECIFIED)
            pn_link_open(handle)
            ProtonData.set(condition, on: pn_link_condition(handle))
            pn_link_close(handle)
            return
        }
        if let size = link.maxMessageSize { pn_link_set_max_message_size(handle, size) }
        pn_link_open(handle)
        self.links[handle] = link
        link.topUpCredit()
    }

    private func linkGone(_ handle: OpaquePointer, condition: AMQPCondition?, error: AMQPError) {
        guard let link = self.links.removeValue(forKey: handle) else { return }
        link.closed = true
        link.handle = nil
        self.partial = self.partial.filter { pn_delivery_link($0.key) != handle }
        link.outgoing.fail(AMQPError(error.code, error.message, remoteCondition: condition))
        self.handler.linkClosed(link, condition: condition)
    }

    private func delivery(_ delivery: OpaquePointer) {
        let handle = pn_delivery_link(delivery)!
        guard let link = self.links[handle] else { return }
        if link.isSender {
            link.outgoing.update(delivery)
            return
        }
        guard
            let bytes = ProtonDelivery.receive(
                delivery, on: handle, partial: &self.partial,
                limit: link.maxMessageSize.map { Int(clamping: $0) } ?? ProtonDelivery.defaultLimit)
        else { return }
        defer { link.topUpCredit() }
        guard !pn_delivery_aborted(delivery), let layout = ProtonDelivery.scan(bytes, delivery: delivery) else { return }
        if let limit = link.maxMessageSize, UInt64(bytes.count) > limit {
            let condition = AMQPCondition(
                name: AMQPCondition.messageSizeExceeded, description: "message of \(bytes.count) bytes exceeds \(limit)")
            ProtonDelivery.settle(delivery, .rejected(condition))
            return
        }
        let settled = pn_delivery_settled(delivery)
        if settled { pn_delivery_settle(delivery) }
        self.handler.messageReceived(
            AMQPServerDelivery(encoded: bytes, layout: layout, link: link, handle: settled ? nil : delivery))
    }

    func driverReleased() {
        let error = self.socketError
        // The driver is freed: forget partial deliveries before anything could look at them.
        self.partial = [:]
        for handle in Array(self.links.keys) {
            self.linkGone(handle, condition: nil, error: AMQPError(.connectionClosed, "the connection closed"))
        }
        self.channel = nil
        self.listener.connectionGone(self.connection.id)
        if self.opened { self.handler.connectionClosed(self.connection, error: error) }
    }
}
