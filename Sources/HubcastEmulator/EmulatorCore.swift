// Hubcast — what the emulator does with connections, links and messages.

@_spi(FaultInjection) import AMQP
import EventHubs
import Foundation
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The emulator's AMQP handler. Called on the listener's loop thread; its state sits behind a mutex
/// so that tests can read the partitions from any thread.
final class EmulatorCore: AMQPServerHandler {
    /// A token put on `$cbs` and accepted.
    struct Grant {
        var token: EventHubsSASToken
        var rights: EmulatorConfiguration.Rule.Rights
        /// When it stops counting (ms since the epoch): the token's expiry, or earlier under
        /// ``EmulatorConfiguration/Faults/tokenLifetimeLimit``.
        var validUntil: Int64
    }

    struct State {
        var store: EmulatorStore
        var grants: [UInt64: [Grant]] = [:]
        /// Connections that authenticated with SASL PLAIN (user = rule name, password = key): the
        /// rule's rights on every entity, for the connection's life, without `$cbs`.
        var plainRights: [UInt64: EmulatorConfiguration.Rule.Rights] = [:]
        var cbsReplies: [UInt64: [AMQPServerLink]] = [:]
        var accepted = 0
        var faultCounts = EmulatorFaultCounts()
        /// The faults injected now (``HubcastEmulator/faults`` can change them while it runs).
        var faults = EmulatorConfiguration.Faults()
        /// Producer links detached for a lapsed token: what still arrives on them is ignored.
        var revoked: Set<ObjectIdentifier> = []
        /// Producer links in a credit stall, and whether the client ran out of credit in it.
        var stalled: [ObjectIdentifier: Bool] = [:]
        var random: UInt64 = 0
        /// Events seen by ``EmulatorConfiguration/Faults/rejectEvery``.
        var rejectionCountdown = 0
        /// Connections dropped by an injected fault: what they sent after the drop is ignored, as a
        /// lost connection delivers nothing more.
        var dropped: Set<UInt64> = []
        /// Producer links: their path, read once at attach, and until when (ms since the epoch) their
        /// tokens hold (checked again only after that), so that each event costs no string work.
        var producers: [ObjectIdentifier: (path: [String], validUntil: Int64)] = [:]
        /// Consumer links: where each reads (hub, partition) and the next sequence number it gets.
        var consumers: [ObjectIdentifier: (link: AMQPServerLink, hub: String, partition: Int, next: Int64)] = [:]
        /// The namespace's ingress quota, or nil for none (``HubcastEmulator/throughputUnits``).
        var quota: IngressQuota?
        /// Where stored events go before they are accepted, with a data directory.
        var dataLog: EmulatorDataLog?

        /// The next number in 0..<1 from a SplitMix64 generator.
        mutating func nextRandom() -> Double {
            self.random &+= 0x9e37_79b9_7f4a_7c15
            var z = self.random
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            z ^= z >> 31
            return Double(z >> 11) / Double(1 << 53)
        }
    }

    let configuration: EmulatorConfiguration
    let logger: Logger
    let state: Mutex<State>

    /// The text the service sends with `com.microsoft:server-busy` when it throttles.
    static let serverBusy = AMQPCondition(
        name: "com.microsoft:server-busy",
        description: "The request was terminated because the entity is being throttled. Error code : 50002. Please wait 4 seconds and try again.")

    /// A core serving `store` (empty, or read back from `dataLog`), writing to `dataLog` if given.
    init(configuration: EmulatorConfiguration, logger: Logger, store: EmulatorStore? = nil, dataLog: sending EmulatorDataLog? = nil) {
        self.configuration = configuration
        self.logger = logger
        var state = State(store: store ?? EmulatorStore(configuration: configuration))
        state.random = configuration.faults.seed
        state.faults = configuration.faults
        state.quota = configuration.throughputUnits.map {
            IngressQuota(throughputUnits: $0, eventsPerUnit: configuration.eventsPerThroughputUnit, now: .now)
        }
        state.dataLog = dataLog
        self.state = Mutex(state)
    }

    static func nowSeconds() -> Int64 { Int64(Date().timeIntervalSince1970) }

    static func milliseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }

    /// Milliseconds since the Unix epoch, from one clock read.
    static func nowMilliseconds() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Int64(time.tv_sec) * 1000 + Int64(time.tv_nsec) / 1_000_000
    }

    // MARK: - Addresses

    /// A link address as a path below the namespace: `hub`, `hub/Partitions/1`, … (accepts `/hub`
    /// and `amqps://<host>/hub`, as the service does).
    static func path(_ address: String?) -> [String] {
        guard var text = address else { return [] }
        if let scheme = text.range(of: "://") {
            text = String(text[scheme.upperBound...])
            text = text.firstIndex(of: "/").map { String(text[text.index(after: $0)...]) } ?? ""
        }
        return text.split(separator: "/").map(String.init)
    }

    /// Whether the connection holds a live token with `right` that covers `path`.
    private func authorized(_ connection: UInt64, path: [String], right: EmulatorConfiguration.Rule.Rights) -> Bool {
        self.authorizedUntil(connection, path: path, right: right) != nil
    }

    /// Until when (ms since the epoch) the connection's live tokens with `right` cover `path`, or nil.
    private func authorizedUntil(_ connection: UInt64, path: [String], right: EmulatorConfiguration.Rule.Rights) -> Int64? {
        let audience = "amqps://\(self.configuration.namespace)/" + path.joined(separator: "/")
        let now = Self.nowMilliseconds()
        return self.state.withLock { state in
            if let rights = state.plainRights[connection], rights.contains(right) { return Int64.max }
            return (state.grants[connection] ?? []).filter { grant in
                grant.rights.contains(right) && grant.validUntil > now
                    && (grant.token.covers(audience) || Self.coversPath(grant.token, path))
            }.map(\.validUntil).max()
        }
    }

    /// A token for another host name (clients that connect to 127.0.0.1 sign for it) still covers a
    /// path of this namespace: the emulator checks the path only.
    private static func coversPath(_ token: EventHubsSASToken, _ path: [String]) -> Bool {
        let tokenPath = Self.path(token.resource)
        return tokenPath.count <= path.count && zip(tokenPath, path).allSatisfy { $0.lowercased() == $1.lowercased() }
    }

    // MARK: - Links

    func linkOpened(_ link: AMQPServerLink) -> AMQPCondition? {
        if link.address == "$cbs" || link.address == "$management" {
            if link.isSender {
                self.state.withLock { $0.cbsReplies[link.connection.id, default: []].append(link) }
            }
            return nil
        }
        let path = Self.path(link.address)
        guard let hub = path.first, let partitions = self.state.withLock({ $0.store.hubs[hub]?.count }) else {
            return AMQPCondition(
                name: AMQPCondition.notFound,
                description: "The messaging entity '\(self.configuration.namespace):eventhub:\(path.first ?? "")' could not be found.")
        }
        if path.count >= 3, path[1].lowercased() == "partitions" {
            guard let partition = Int(path[2]), (0..<partitions).contains(partition) else {
                return AMQPCondition(name: AMQPCondition.notFound, description: "partition \(path[2]) of \(hub) does not exist")
            }
        }
        let right: EmulatorConfiguration.Rule.Rights = link.isSender ? .listen : .send
        guard self.authorized(link.connection.id, path: path, right: right) else {
            return AMQPCondition(
                name: AMQPCondition.unauthorizedAccess,
                description: "Unauthorized access. '\(link.isSender ? "Listen" : "Send")' claim(s) are required to perform this operation on \(hub).")
        }
        if !link.isSender {
            link.maxMessageSize = self.configuration.maxMessageSize
            return nil
        }
        // A consumer: <hub>/ConsumerGroups/<group>/Partitions/<id>.
        guard path.count == 5, path[1].lowercased() == "consumergroups", path[3].lowercased() == "partitions",
            let partition = Int(path[4]), (0..<partitions).contains(partition)
        else {
            return AMQPCondition(
                name: AMQPCondition.notFound,
                description: "consumers read <hub>/ConsumerGroups/<group>/Partitions/<id>; got \(link.address ?? "")")
        }
        var start = ConsumerStart.earliest
        if let filter = link.filter.first(where: { $0.0.name == "apache.org:selector-filter:string" })?.1 {
            guard case .described(_, .string(let expression)) = filter, let parsed = ConsumerStart(filter: expression) else {
                return AMQPCondition(name: "amqp:invalid-field", description: "unsupported selector filter \(filter)")
            }
            start = parsed
        }
        self.state.withLock { state in
            let held = state.store.hubs[hub]![partition]
            let next = start.firstSequence(in: held.events, next: held.nextSequence) ?? held.nextSequence
            state.consumers[ObjectIdentifier(link)] = (link, hub, partition, next)
        }
        return nil
    }

    func creditAvailable(_ link: AMQPServerLink) {
        self.pumpConsumer(ObjectIdentifier(link))
    }

    /// Sends a consumer the events it has not had yet, as far as its credit goes (loop thread).
    private func pumpConsumer(_ id: ObjectIdentifier) {
        while true {
            let next = self.state.withLock { state -> (AMQPServerLink, AMQPMessage)? in
                guard let consumer = state.consumers[id], consumer.link.credit > 0 else { return nil }
                let held = state.store.hubs[consumer.hub]![consumer.partition]
                guard let first = held.events.first else { return nil }
                let index = Int(max(consumer.next, first.sequenceNumber) - first.sequenceNumber)
                guard index < held.events.count else { return nil }
                let event = held.events[index]
                state.consumers[id]!.next = event.sequenceNumber + 1
                return (consumer.link, event.consumerMessage)
            }
            guard let (link, message) = next else { return }
            link.send(message) { _ in }
        }
    }

    /// Wakes the consumers of one partition after an append (loop thread).
    private func pumpConsumers(hub: String, partition: Int) {
        let ids = self.state.withLock { state in
            state.consumers.filter { $0.value.hub == hub && $0.value.partition == partition }.map(\.key)
        }
        for id in ids { self.pumpConsumer(id) }
    }

    func linkClosed(_ link: AMQPServerLink, condition: AMQPCondition?) {
        self.state.withLock { state in
            state.cbsReplies[link.connection.id]?.removeAll { $0 === link }
            state.consumers[ObjectIdentifier(link)] = nil
            state.producers[ObjectIdentifier(link)] = nil
            state.revoked.remove(ObjectIdentifier(link))
            state.stalled[ObjectIdentifier(link)] = nil
        }
    }

    func connectionOpened(_ connection: AMQPServerConnection) {
        // SASL PLAIN already checked the rule's name and key (see `checkPlain`).
        guard connection.mechanism == "PLAIN", let rule = self.configuration.rules.first(where: { $0.name == connection.user }) else {
            return
        }
        self.state.withLock { $0.plainRights[connection.id] = rule.rights }
    }

    /// SASL PLAIN as the service documents it: user name = rule name, password = the rule's key.
    /// Compares the key in constant time.
    static func checkPlain(rules: [EmulatorConfiguration.Rule], username: String, password: String) -> Bool {
        guard let rule = rules.first(where: { $0.name == username }) else { return false }
        let expected = Array(rule.key.utf8)
        let given = Array(password.utf8)
        var difference = UInt8(truncatingIfNeeded: expected.count ^ given.count)
        for index in expected.indices { difference |= expected[index] ^ (index < given.count ? given[index] : 0) }
        return difference == 0
    }

    func connectionClosed(_ connection: AMQPServerConnection, error: AMQPError?) {
        self.state.withLock { state in
            state.grants[connection.id] = nil
            state.plainRights[connection.id] = nil
            state.cbsReplies[connection.id] = nil
            state.dropped.remove(connection.id)
        }
    }

    // MARK: - Messages

    func messageReceived(_ delivery: AMQPServerDelivery) {
        if delivery.link.address == "$cbs" {
            self.putToken(delivery)
            return
        }
        if delivery.link.address == "$management" {
            self.management(delivery)
            return
        }
        let link = delivery.link
        let id = ObjectIdentifier(link)
        let connection = link.connection.id
        let nowMilliseconds = Self.nowMilliseconds()
        // What is known about the link: its path, read once, and until when its tokens hold, checked
        // again only after that, so that each event costs no string work.
        let known = self.state.withLock { state -> (path: [String], validUntil: Int64)?? in
            // A connection dropped by an injected fault: what it sent after the drop is ignored, as a
            // lost connection delivers nothing more; so is what arrives on a link detached for a
            // lapsed token.
            if state.dropped.contains(connection) || state.revoked.contains(id) { return .none }
            return .some(state.producers[id])
        }
        guard let known else { return }
        var producer = known ?? (Self.path(link.address), 0)
        if producer.validUntil <= nowMilliseconds {
            producer.validUntil = self.authorizedUntil(connection, path: producer.path, right: .send) ?? 0
            let update = producer
            self.state.withLock { $0.producers[id] = update }
        }
        let path = producer.path
        guard let hub = path.first else { return delivery.settle(.rejected(nil)) }
        guard producer.validUntil > nowMilliseconds else {
            let condition = AMQPCondition(
                name: AMQPCondition.unauthorizedAccess, description: "ExpiredToken: the token for \(path.joined(separator: "/")) expired")
            self.state.withLock { state in
                state.revoked.insert(id)
                if state.faults.tokenLifetimeLimit != nil { state.faultCounts.tokenLapses += 1 }
            }
            delivery.settle(.rejected(condition))
            link.close(condition: condition)
            return
        }
        let linkPartition = path.count >= 3 ? Int(path[2]) : nil
        let encoded = delivery.encoded
        let layout = delivery.layout
        let key =
            layout.messageAnnotations == nil
            ? nil : (try? layout.messageAnnotations(of: encoded))?.first { $0.0.name == "x-opt-partition-key" }?.1.text
        let batch = Self.batchedEvents(encoded, layout: layout)
        var faults = EmulatorConfiguration.Faults()
        let stored = self.state.withLock { state -> Verdict in
            faults = state.faults
            if faults.serverBusyFraction > 0 && state.nextRandom() < faults.serverBusyFraction {
                state.faultCounts.serverBusy += 1
                return .refused(Self.serverBusy)
            }
            // Nil (no quota) costs this check only; a refused delivery takes no tokens.
            if let admitted = state.quota?.admit(events: batch?.count ?? 1, bytes: encoded.count, at: .now), !admitted {
                state.faultCounts.quotaRejections += 1
                return .refused(Self.serverBusy)
            }
            if let every = faults.rejectEvery, every > 0 {
                state.rejectionCountdown += 1
                if state.rejectionCountdown % every == 0 {
                    state.faultCounts.rejected += 1
                    return .refused(AMQPCondition(name: faults.rejectCondition, description: "injected fault: event rejected"))
                }
            }
            let partition = state.store.partition(hub: hub, linkPartition: linkPartition, partitionKey: key)
            if let log = state.dataLog {
                // On disk before it is stored, let alone accepted: an event a client saw accepted
                // survives the process.
                let (sequence, offset) = state.store.next(hub: hub, partition: partition)
                do {
                    if let batch {
                        try log.append(
                            hub: hub, partition: partition, firstSequence: sequence, firstOffset: offset,
                            enqueuedTime: nowMilliseconds, partitionKey: key, events: batch)
                    } else {
                        try log.append(
                            hub: hub, partition: partition, firstSequence: sequence, firstOffset: offset,
                            enqueuedTime: nowMilliseconds, partitionKey: key, events: CollectionOfOne(encoded))
                    }
                } catch {
                    return .unwritten(error)
                }
            }
            if let batch {
                for event in batch {
                    state.store.append(event, hub: hub, partition: partition, partitionKey: key, now: nowMilliseconds)
                }
            } else {
                state.store.append(encoded, hub: hub, partition: partition, partitionKey: key, now: nowMilliseconds)
            }
            state.accepted += 1
            return .stored(count: state.accepted, partition: partition, consumers: !state.consumers.isEmpty)
        }
        let count: Int, partition: Int, consumers: Bool
        switch stored {
        case .stored(let stored, let into, let consuming): (count, partition, consumers) = (stored, into, consuming)
        case .refused(let condition):
            delivery.settle(.rejected(condition))
            return
        case .unwritten(let error):
            self.logger.error("event refused: \(error)")
            let condition = AMQPCondition(name: AMQPCondition.internalError, description: "the emulator could not store the event")
            delivery.settle(.rejected(condition))
            return
        }
        if let delay = faults.settlementDelay {
            self.state.withLock { $0.faultCounts.delayedSettlements += 1 }
            link.connection.schedule(after: delay) { delivery.settle(.accepted) }
        } else {
            delivery.settle(.accepted)
        }
        if consumers { self.pumpConsumers(hub: hub, partition: partition) }
        if faults.creditStallEvery != nil || !self.state.withLock({ $0.stalled.isEmpty }) {
            self.stallCredit(link, count: count)
        }
        if let every = faults.detachLinkEvery, count % every == 0 {
            link.close(
                condition: AMQPCondition(
                    name: AMQPCondition.detachForced, description: "injected fault: link detached after \(count) events"))
        }
        if let every = faults.dropConnectionEvery, count % every == 0 {
            self.state.withLock { _ = $0.dropped.insert(connection) }
            link.connection.drop()
        }
    }

    /// What became of an arriving event: stored, refused by an injected fault or the quota, or not
    /// written to the data log.
    private enum Verdict {
        case stored(count: Int, partition: Int, consumers: Bool)
        case refused(AMQPCondition)
        case unwritten(any Error)
    }

    /// Starts a credit stall after every N-th event (``EmulatorConfiguration/Faults/creditStallEvery``),
    /// and notes when a stalled client has run out of credit (loop thread).
    private func stallCredit(_ link: AMQPServerLink, count: Int) {
        let id = ObjectIdentifier(link)
        let faults = self.state.withLock { $0.faults }
        let start = self.state.withLock { state -> Bool in
            if let exhausted = state.stalled[id] {
                if !exhausted && link.credit == 0 {
                    state.stalled[id] = true
                    state.faultCounts.creditExhaustedWhileStalled += 1
                }
                return false
            }
            guard let every = faults.creditStallEvery, count % every == 0 else { return false }
            state.stalled[id] = link.credit == 0
            state.faultCounts.creditStalls += 1
            if link.credit == 0 { state.faultCounts.creditExhaustedWhileStalled += 1 }
            return true
        }
        guard start else { return }
        link.setCreditWindow(0)
        let window = self.configuration.creditWindow
        link.connection.schedule(after: faults.creditStallDuration) { [self] in
            self.state.withLock { _ = $0.stalled.removeValue(forKey: id) }
            link.setCreditWindow(window)
        }
    }

    /// The events of a batch (docs/eventhubs-wire.md#batches), or nil when the transfer is one event. A batch
    /// is an envelope whose data sections each hold a whole encoded message; Proton does not expose
    /// a transfer's message-format, so the envelope is recognised from its sections: every one
    /// decodes as a message with a body.
    static func batchedEvents(_ encoded: [UInt8], layout: AMQPMessageLayout) -> [[UInt8]]? {
        guard let first = layout.dataSections.first, Self.startsWithSection(encoded, first) else { return nil }
        var inner: [[UInt8]] = []
        for range in layout.dataSections {
            guard Self.startsWithSection(encoded, range) else { return nil }
            let bytes = Array(encoded[range])
            guard let decoded = try? AMQPMessage(decoding: bytes), decoded.body != .empty else { return nil }
            inner.append(bytes)
        }
        return inner
    }

    /// Whether the bytes in `range` start with a message section's descriptor.
    private static func startsWithSection(_ bytes: [UInt8], _ range: Range<Int>) -> Bool {
        range.count >= 3 && bytes[range.lowerBound] == 0x00 && bytes[range.lowerBound + 1] == 0x53
            && (0x70...0x78).contains(bytes[range.lowerBound + 2])
    }

    /// Checks a put-token request (docs/eventhubs-wire.md#authorization-on-cbs) and answers on the
    /// connection's `$cbs` reply link.
    private func putToken(_ delivery: AMQPServerDelivery) {
        delivery.settle(.accepted)
        let (status, description) = self.checkPutToken(delivery.message, connection: delivery.link.connection.id)
        if status != 200 { self.logger.info("put-token refused: \(status) \(description)") }
        self.answer(delivery, status: status, description: description, body: .null)
    }

    /// Answers a `$management` READ of hub or partition properties (docs/eventhubs-wire.md#management-reads).
    /// The request carries its own token in `security_token`.
    private func management(_ delivery: AMQPServerDelivery) {
        delivery.settle(.accepted)
        let request = delivery.message
        let hub = request.applicationProperty("name")?.text ?? ""
        let now = Self.nowSeconds()
        guard let text = request.applicationProperty("security_token")?.text, let token = try? EventHubsSASToken(parsing: text),
            let rule = self.configuration.rules.first(where: { $0.name == token.keyName }), token.isSigned(byKey: rule.key),
            token.isValid(at: now), Self.coversPath(token, [hub]) || token.covers("amqps://\(self.configuration.namespace)/\(hub)")
        else {
            return self.answer(delivery, status: 401, description: "Unauthorized: a valid security_token is required", body: .null)
        }
        let snapshot = self.state.withLock { $0.store.hubs[hub] }
        guard request.applicationProperty("operation")?.text == "READ", let partitions = snapshot else {
            return self.answer(delivery, status: 404, description: "The messaging entity '\(hub)' could not be found", body: .null)
        }
        let body: AMQPValue
        if request.applicationProperty("type")?.text == "com.microsoft:partition" {
            let id = request.applicationProperty("partition")?.text ?? ""
            guard let index = Int(id), let partition = partitions[safe: index] else {
                return self.answer(delivery, status: 404, description: "partition \(id) does not exist", body: .null)
            }
            let last = partition.events.last
            let fields: [(String, AMQPValue)] = [
                ("name", .string(hub)), ("type", .string("com.microsoft:partition")), ("partition", .string(id)),
                ("begin_sequence_number", .long(partition.events.first?.sequenceNumber ?? 0)),
                ("last_enqueued_sequence_number", .long(last?.sequenceNumber ?? -1)),
                ("last_enqueued_offset", .string(last.map { String($0.offset) } ?? "-1")),
                ("last_enqueued_time_utc", .timestamp(last?.enqueuedTime ?? 0)),
                ("is_partition_empty", .bool(partition.events.isEmpty)),
            ]
            body = Self.stringMap(fields)
        } else {
            let ids: [AMQPValue] = partitions.indices.map { .string(String($0)) }
            let fields: [(String, AMQPValue)] = [
                ("name", .string(hub)), ("type", .string("com.microsoft:eventhub")), ("created_at", .timestamp(0)),
                ("partition_count", .int(Int32(partitions.count))), ("partition_ids", .array(ids)),
            ]
            body = Self.stringMap(fields)
        }
        self.answer(delivery, status: 200, description: "OK", body: body)
    }

    private static func stringMap(_ fields: [(String, AMQPValue)]) -> AMQPValue {
        .map(fields.map { (AMQPValue.string($0.0), $0.1) })
    }

    /// Sends a response to a request on `$cbs` or `$management`, on the link the client attached
    /// for answers (matched by the request's reply-to).
    private func answer(_ delivery: AMQPServerDelivery, status: Int, description: String, body: AMQPValue) {
        let request = delivery.message
        var response = AMQPMessage(body: .value(body))
        response.properties.correlationID = request.properties.messageID
        response.properties.to = request.properties.replyTo
        response.applicationProperties = [
            ("status-code", .int(Int32(status))), ("status-description", .string(description)),
        ]
        let address = delivery.link.address
        let reply = self.state.withLock { state in
            let links = (state.cbsReplies[delivery.link.connection.id] ?? []).filter { $0.address == address }
            return links.first { $0.targetAddress == request.properties.replyTo } ?? links.first
        }
        reply?.send(response) { _ in }
    }

    private func checkPutToken(_ request: AMQPMessage, connection: UInt64) -> (Int, String) {
        guard request.applicationProperty("operation")?.text == "put-token" else {
            return (400, "unsupported operation \(request.applicationProperty("operation")?.text ?? "none")")
        }
        guard let audience = request.applicationProperty("name")?.text else { return (400, "the name (audience) is missing") }
        guard case .value(.string(let text)) = request.body, let token = try? EventHubsSASToken(parsing: text) else {
            return (400, "InvalidToken: the body is not a SharedAccessSignature string")
        }
        guard let rule = self.configuration.rules.first(where: { $0.name == token.keyName }) else {
            return (401, "InvalidSignature: the rule '\(token.keyName ?? "")' does not exist")
        }
        guard token.isSigned(byKey: rule.key) else { return (401, "InvalidSignature: the token's signature is invalid") }
        guard token.isValid(at: Self.nowSeconds()) else {
            return (401, "ExpiredToken: The token is expired. Expiration time: '\(token.expiresAt)'")
        }
        let path = Self.path(audience)
        guard token.covers(audience) || Self.coversPath(token, path) else {
            return (401, "InvalidAudience: the token does not cover \(audience)")
        }
        if let hub = path.first, self.state.withLock({ $0.store.hubs[hub] }) == nil {
            return (404, "The messaging entity '\(hub)' could not be found")
        }
        let now = Self.nowMilliseconds()
        var validUntil = token.expiresAt * 1000
        if let limit = self.state.withLock({ $0.faults.tokenLifetimeLimit }) { validUntil = min(validUntil, now + Self.milliseconds(limit)) }
        let grant = Grant(token: token, rights: rule.rights, validUntil: validUntil)
        self.state.withLock { state in
            state.grants[connection, default: []].removeAll { $0.validUntil <= now }
            state.grants[connection, default: []].append(grant)
        }
        return (200, "OK")
    }
}
