// Hubcast — a producer to one event hub.

import AMQP
import Foundation
public import Logging

/// Sends events to one event hub over a persistent AMQP connection: claims-based authorization on
/// `$cbs` before any link, one sender link per target (the hub, or `hub/Partitions/N`) made on
/// first use and reused.
public actor EventHubsProducer {
    /// Where the producer sends.
    public nonisolated let connectionString: EventHubsConnectionString
    /// The event hub.
    public nonisolated let eventHub: String
    private let options: EventHubsProducerOptions
    private let logger: Logger
    private var connection: AMQPConnection?
    private var authorizer: Authorizer?
    private var senders: [String: AMQPSender] = [:]
    /// A connect in progress, awaited by every caller that needs the connection meanwhile.
    private var connecting: Task<AMQPConnection, any Error>?
    /// Link attaches in progress, by target.
    private var attaching: [String: Task<AMQPSender, any Error>] = [:]
    /// Counts ``close()`` calls: a connection that was being opened across one is closed at once.
    private var closes = 0

    /// A producer for the connection string's event hub (or `eventHub`). Throws
    /// ``EventHubsError/Code/invalidConnectionString`` when no hub is named, and
    /// ``EventHubsError/Code/tokenExpired`` when a pre-made signature has expired.
    public init(
        connectionString: EventHubsConnectionString, eventHub: String? = nil, options: EventHubsProducerOptions = .init(),
        logger: Logger = Logger(label: "hubcast.eventhubs")
    ) throws {
        guard let hub = eventHub ?? connectionString.eventHub, !hub.isEmpty else {
            throw EventHubsError(.invalidConnectionString, "no event hub: add EntityPath to the connection string or name the hub")
        }
        if case .sharedAccessSignature(let token) = connectionString.credential,
            !token.isValid(at: Int64(Date().timeIntervalSince1970))
        {
            throw EventHubsError(
                .tokenExpired, "the SharedAccessSignature expired at \(token.expiresAt) (Unix time); a pre-made signature cannot be renewed")
        }
        self.connectionString = connectionString
        self.eventHub = hub
        self.options = options
        self.logger = logger
    }

    /// Opens the connection, puts the token and attaches the sender link to the hub (or to
    /// `partition`) now, sending nothing: to check that a destination is usable, or to pay the
    /// set-up before the first event. A lost or refused connection is tried again with the retry
    /// policy's backoff until its deadline; a refusal (credentials, unknown hub) throws at once.
    public func attach(partition: String? = nil) async throws {
        do {
            try await self.attach(target: self.target(partition))
        } catch {
            throw error.inEventHubsWords
        }
    }

    private func attach(target: String) async throws {
        let deadline = ContinuousClock.now + self.options.client.retry.deadline
        var attempt = 0
        while true {
            do {
                _ = try await self.sender(target)
                return
            } catch  where EventHubsRetryPolicy.isTransient(error) && ContinuousClock.now < deadline {
                attempt += 1
                try await Task.sleep(for: min(self.options.client.retry.backoff(attempt: attempt), deadline - ContinuousClock.now))
            }
        }
    }

    /// Sends one event and returns its final outcome, after retries (see ``EventHubsRetryPolicy``):
    /// `accepted`, or the last `rejected` outcome with the service's condition. `partition` sends to
    /// `hub/Partitions/<partition>` instead of the hub. Throws when retrying cannot help (unknown hub,
    /// refused credentials, oversized event) or when the retry deadline passes.
    public func send(_ event: EventHubsEvent, partition: String? = nil) async throws -> EventHubsOutcome {
        let results = try await self.send(contentsOf: [event], partition: partition)
        return try results[0].get()
    }

    /// Sends many events pipelined on one link, retries each as the policy says, and returns each
    /// one's final outcome, in order. Throws only for failures that concern every event (no link can
    /// be had: unknown hub, refused credentials).
    ///
    /// `onSettled`, when given, is called once per event as soon as its final result is known, with
    /// the event's index, the result and how many times it was sent (1 when no retry was needed).
    /// `onThrottled`, when given, is told each time the hub answers an event of this call with
    /// `com.microsoft:server-busy` (``EventHubsProducerOptions/onThrottled`` hears those of every call).
    public func send(
        contentsOf events: [EventHubsEvent], partition: String? = nil,
        onSettled: (@Sendable (_ index: Int, _ result: EventHubsSendResult, _ sends: Int) -> Void)? = nil,
        onThrottled: (@Sendable () -> Void)? = nil
    ) async throws -> [EventHubsSendResult] {
        var settledInAMQP: (@Sendable (Int, Result<AMQPOutcome, AMQPError>, Int) -> Void)?
        if let onSettled {
            settledInAMQP = { index, result, sends in onSettled(index, result.eventHubs, sends) }
        }
        do {
            let results = try await self.send(
                contentsOf: events, target: self.target(partition), retriesUsed: Array(repeating: 0, count: events.count),
                sends: Array(repeating: 0, count: events.count), onSettled: settledInAMQP, onThrottled: onThrottled)
            return results.map(\.eventHubs)
        } catch {
            throw error.inEventHubsWords
        }
    }

    private func target(_ partition: String?) -> String {
        partition.map { "\(self.eventHub)/Partitions/\($0)" } ?? self.eventHub
    }

    /// The retrying batch machinery, for events that may have been sent (and failed) before.
    private func send(
        contentsOf events: [EventHubsEvent], target: String, retriesUsed initialRetries: [Int], sends initialSends: [Int],
        onSettled: (@Sendable (_ index: Int, _ result: Result<AMQPOutcome, AMQPError>, _ sends: Int) -> Void)?,
        onThrottled: (@Sendable () -> Void)? = nil
    ) async throws -> [Result<AMQPOutcome, AMQPError>] {
        let policy = self.options.client.retry
        let deadline = ContinuousClock.now + policy.deadline
        var results = [Result<AMQPOutcome, AMQPError>?](repeating: nil, count: events.count)
        var retriesUsed = initialRetries
        var sends = initialSends
        func settle(_ index: Int, _ result: Result<AMQPOutcome, AMQPError>) {
            results[index] = result
            onSettled?(index, result, sends[index])
        }
        var waiting = Array(events.indices)
        var recoveries = RecoveryCounter(now: .now)
        var accepted = 0
        var reauthorizedWithoutProgress = false
        // Why the last try failed, for the error if the deadline passes.
        var lastCause: String?
        while !waiting.isEmpty {
            var wait: Duration = .zero
            do {
                let sender = try await self.sender(target)
                let wave = self.options.preserveKeyOrder ? Self.firstPerKey(waiting, of: events) : waiting
                let outcomes = try await sender.send(contentsOf: wave.map { events[$0].message })
                var again: [Int] = []
                var lostLink: (EventHubsRecovery, AMQPError)?
                var reauthorize = false
                let acceptedNow = outcomes.reduce(0) { $0 + ((try? $1.get()) == .accepted ? 1 : 0) }
                if acceptedNow > 0 { reauthorizedWithoutProgress = false }
                accepted += acceptedNow
                for index in wave { sends[index] += 1 }
                for (index, outcome) in zip(wave, outcomes) {
                    let recovery = EventHubsRecovery.of(outcome)
                    switch recovery {
                    case .fatal:
                        settle(index, outcome)
                    case .retry where retriesUsed[index] >= policy.maxRetries:
                        settle(index, outcome)
                    case .retry:
                        lastCause = Self.cause(of: outcome)
                        retriesUsed[index] += 1
                        wait = max(wait, policy.backoff(attempt: retriesUsed[index]))
                        again.append(index)
                    case .throttled where !self.options.waitsWhenThrottled:
                        lastCause = Self.cause(of: outcome)
                        self.options.onThrottled?()
                        onThrottled?()
                        settle(index, outcome)
                    case .throttled:
                        lastCause = Self.cause(of: outcome)
                        self.options.onThrottled?()
                        onThrottled?()
                        wait = max(wait, policy.serverBusyDelay + policy.serverBusyDelay * Double.random(in: 0...0.25))
                        again.append(index)
                    case .reauthorize where reauthorizedWithoutProgress:
                        settle(index, outcome)
                    case .reauthorize:
                        reauthorize = true
                        again.append(index)
                    case .reattach, .reconnect:
                        if case .failure(let error) = outcome, lostLink == nil || recovery == .reconnect {
                            lostLink = (recovery, error)
                        }
                        again.append(index)
                    }
                }
                if reauthorize {
                    reauthorizedWithoutProgress = true
                    try await self.reauthorize(sender: sender)
                } else if let (recovery, error) = lostLink {
                    let attempt = recoveries.recover(accepted: accepted, now: .now)
                    lastCause = "\(error)"
                    self.logger.info("link to \(target) lost (\(error)); recovering")
                    await self.recover(recovery, sender: sender)
                    wait = max(wait, policy.backoff(attempt: min(attempt, 8)) / 4)
                }
                if wave.count < waiting.count {
                    let sent = Set(wave)
                    waiting = (again + waiting.filter { !sent.contains($0) }).sorted()
                } else {
                    waiting = again
                }
            } catch {
                let recovery = EventHubsRecovery.of(error)
                if recovery == .reauthorize && !reauthorizedWithoutProgress {
                    // The link was detached for a lapsed token before the wave went out: put a
                    // fresh token and attach again (once, unless an event gets through meanwhile).
                    reauthorizedWithoutProgress = true
                    try await self.renewToken(droppingLinkTo: target)
                    continue
                }
                guard recovery == .reconnect || recovery == .reattach else { throw error }
                let attempt = recoveries.recover(accepted: accepted, now: .now)
                lastCause = "\(error)"
                await self.recover(.reconnect, sender: nil)
                wait = policy.backoff(attempt: min(attempt, 8))
            }
            guard !waiting.isEmpty else { break }
            if ContinuousClock.now + wait > deadline {
                let error = Self.deadlineError(waiting.count, policy: policy, cause: lastCause)
                for index in waiting where results[index] == nil { settle(index, .failure(error)) }
                break
            }
            if wait > .zero { try await Task.sleep(for: wait) }
        }
        return results.map { $0 ?? .failure(AMQPError(.cancelled, "not sent")) }
    }

    /// Sends every event `next` produces on the connection's stream path (see
    /// ``AMQP/AMQPSender/stream(window:next:onOutcome:)``): the loop thread pulls events as credit
    /// allows with up to `window` awaiting their outcome, so no task, batch or result array is made
    /// per event. The cheapest way to send many events.
    ///
    /// Every event gets exactly one final result through `onSettled` (its index in the order `next`
    /// produced it, the result, and how many times it was sent), as with
    /// ``send(contentsOf:partition:onSettled:)``: events that fail in a way retrying can fix (a lost
    /// link or connection, throttling, a retriable rejection) are collected and sent again once the
    /// source is drained, with the same retry policy. `next` and `onSettled` may run on the
    /// connection's loop thread: keep them quick and never block. When ``EventHubsProducerOptions/preserveKeyOrder``
    /// is set, events go in batches of 1,000 through ``send(contentsOf:partition:onSettled:)`` instead.
    /// Throws only what concerns every event (no link can be had: unknown hub, refused credentials);
    /// events pending then are settled with that error first.
    public func send(
        from next: @escaping @Sendable () -> EventHubsEvent?, partition: String? = nil, window: Int = 5000,
        onSettled: @escaping @Sendable (_ index: Int, _ result: EventHubsSendResult, _ sends: Int) -> Void
    ) async throws {
        do {
            try await self.stream(from: next, partition: partition, window: window) { onSettled($0, $1.eventHubs, $2) }
        } catch {
            throw error.inEventHubsWords
        }
    }

    /// The stream path of ``send(from:partition:window:onSettled:)``, with AMQP's results.
    private func stream(
        from next: @escaping @Sendable () -> EventHubsEvent?, partition: String?, window: Int,
        onSettled: @escaping @Sendable (_ index: Int, _ result: Result<AMQPOutcome, AMQPError>, _ sends: Int) -> Void
    ) async throws {
        let target = self.target(partition)
        if self.options.preserveKeyOrder {
            var base = 0
            while true {
                var chunk: [EventHubsEvent] = []
                while chunk.count < 1000, let event = next() { chunk.append(event) }
                guard !chunk.isEmpty else { return }
                let offset = base
                _ = try await self.send(
                    contentsOf: chunk, target: target, retriesUsed: Array(repeating: 0, count: chunk.count),
                    sends: Array(repeating: 0, count: chunk.count), onSettled: { onSettled(offset + $0, $1, $2) })
                base += chunk.count
            }
        }
        let state = ProducerStream(next: next, onSettled: onSettled)
        // With no event accepted for the retry deadline, the hub counts as unreachable and the
        // stream gives up with the last cause.
        var recoveries = RecoveryCounter(now: .now)
        var lastCause = ""
        var acceptedAtReauthorization = -1
        var gaveUp: AMQPError?
        while !state.exhausted {
            do {
                let sender = try await self.sender(target)
                state.startStream()
                do {
                    try await sender.stream(window: window, fill: { state.fill(&$0) }, onOutcome: { state.outcome($0, $1) })
                } catch let error as AMQPError where EventHubsRecovery.of(.failure(error)) == .reauthorize {
                    // The token was refused mid-stream: put a fresh one and go on, unless that did not help.
                    guard state.accepted > acceptedAtReauthorization else { throw error }
                    acceptedAtReauthorization = state.accepted
                    try await self.reauthorize(sender: sender)
                } catch {
                    // The link or connection failed mid-stream: every unsettled event is in the retry list.
                    let recovery = EventHubsRecovery.of(error)
                    guard recovery == .reattach || recovery == .reconnect else { throw error }
                    let attempt = recoveries.recover(accepted: state.accepted, now: .now)
                    lastCause = "\(error)"
                    self.logger.info("link to \(target) lost (\(error)); recovering")
                    await self.recover(recovery, sender: sender)
                    let wait = self.options.client.retry.backoff(attempt: min(attempt, 8)) / 4
                    if recoveries.passes(self.options.client.retry.deadline, after: wait, now: .now) {
                        // Out of the loop (a throw here would be taken for a lost connection).
                        gaveUp = Self.deadlineError(nil, policy: self.options.client.retry, cause: lastCause)
                        break
                    }
                    try await Task.sleep(for: wait)
                }
            } catch {
                let recovery = EventHubsRecovery.of(error)
                guard recovery == .reconnect || recovery == .reattach else {
                    state.failAll(error as? AMQPError ?? AMQPError(.connectionFailed, "\(error)"))
                    throw error
                }
                let attempt = recoveries.recover(accepted: state.accepted, now: .now)
                lastCause = "\(error)"
                await self.recover(.reconnect, sender: nil)
                let wait = self.options.client.retry.backoff(attempt: min(attempt, 8))
                if recoveries.passes(self.options.client.retry.deadline, after: wait, now: .now) {
                    let timeout = Self.deadlineError(nil, policy: self.options.client.retry, cause: lastCause)
                    state.failAll(timeout)
                    throw timeout
                }
                try await Task.sleep(for: wait)
            }
        }
        if let gaveUp {
            state.failAll(gaveUp)
            throw gaveUp
        }
        let retry = state.takeRetries()
        guard !retry.isEmpty else { return }
        let indices = retry.map(\.index)
        _ = try await self.send(
            contentsOf: retry.map(\.event), target: target, retriesUsed: retry.map(\.retries), sends: retry.map { _ in 1 }
        ) { position, result, sends in
            onSettled(indices[position], result, sends)
        }
    }

    /// The events to send now when key order is kept: every keyless event, and for each partition key
    /// only its earliest waiting event.
    static func firstPerKey(_ waiting: [Int], of events: [EventHubsEvent]) -> [Int] {
        var seen: Set<String> = []
        return waiting.filter { index in
            guard let key = events[index].partitionKey else { return true }
            return seen.insert(key).inserted
        }
    }

    /// The one way a token is renewed on demand (the authorizer also renews on its own schedule):
    /// puts a fresh token on `connection` if it is still the producer's; throws if the service
    /// refuses it. `false` when the connection was replaced meanwhile (its successor put a token of
    /// its own).
    private func renewToken(on connection: AMQPConnection) async throws -> Bool {
        guard self.connection === connection, let authorizer = self.authorizer else { return false }
        try await authorizer.renewNow()
        return true
    }

    /// Puts a fresh token on the connection and drops the link to `target`, so the next send
    /// attaches it again (the link was detached for a lapsed token before a wave went out).
    private func renewToken(droppingLinkTo target: String) async throws {
        if let connection = self.connection { _ = try await self.renewToken(on: connection) }
        if let sender = self.senders.removeValue(forKey: target) { await sender.close() }
    }

    /// Puts a fresh token on the connection and drops the link the old token was refused on, so the
    /// next send re-attaches.
    private func reauthorize(sender: AMQPSender) async throws {
        _ = try await self.renewToken(on: sender.connection)
        await self.recover(.reattach, sender: sender)
    }

    /// Drops the link (or the whole connection) that failed, so the next send rebuilds it. A link or
    /// connection that was already replaced is left alone, and the actor runs one recovery at a
    /// time: one owner, no reconnect storms.
    private func recover(_ recovery: EventHubsRecovery, sender: AMQPSender?) async {
        if recovery == .reattach, let sender {
            if let key = self.senders.first(where: { $0.value.connection === sender.connection && $0.value.target == sender.target })?.key {
                self.senders[key] = nil
                await sender.close()
            }
            return
        }
        if let sender, let current = self.connection, current !== sender.connection { return }
        await self.authorizer?.stop()
        self.authorizer = nil
        let old = self.connection
        self.connection = nil
        self.senders = [:]
        await old?.close()
    }

    /// Closes the connection (one being opened is closed once it opens).
    public func close() async {
        self.closes += 1
        await self.authorizer?.stop()
        self.authorizer = nil
        await self.connection?.close()
        self.connection = nil
        self.senders = [:]
    }

    /// The sender link to `target`. Concurrent callers share one attach (and one connection): the
    /// actor is re-entered while an attach or connect is awaited, so it is kept as a task.
    private func sender(_ target: String) async throws -> AMQPSender {
        if let sender = self.senders[target] { return sender }
        if let attaching = self.attaching[target] { return try await attaching.value }
        let task = Task { () async throws -> AMQPSender in
            let connection = try await self.connect()
            var renewals = 0
            while true {
                do {
                    return try await connection.openSender(target: target)
                } catch let error as AMQPError where error.remoteCondition?.name == AMQPCondition.unauthorizedAccess {
                    // The token may have lapsed since it was put (the service can cut one short):
                    // put a fresh one and attach again; refused three times, the refusal stands.
                    guard renewals < 3, try await self.renewToken(on: connection) else { throw error }
                    renewals += 1
                }
            }
        }
        self.attaching[target] = task
        defer { self.attaching[target] = nil }
        let sender = try await task.value
        if let connection = self.connection, connection === sender.connection {
            self.senders[target] = sender
        }
        return sender
    }

    private func connect() async throws -> AMQPConnection {
        if let connection = self.connection { return connection }
        if let connecting = self.connecting { return try await connecting.value }
        let task = Task { () async throws -> AMQPConnection in try await self.openConnection() }
        self.connecting = task
        defer { self.connecting = nil }
        do {
            return try await task.value
        } catch {
            // Logged here once per attempt, however many sends waited for it.
            self.logger.info("connection to \(self.connectionString.fullyQualifiedNamespace) failed (\(error)); retrying")
            throw error
        }
    }

    private func openConnection() async throws -> AMQPConnection {
        let closesBefore = self.closes
        let configuration = self.connectionString.amqpConfiguration(
            containerID: "hubcast-\(self.eventHub)-\(UUID().uuidString.prefix(8).lowercased())",
            trustedCAFile: self.options.client.trustedCAFile, traceFrames: self.options.client.traceFrames)
        let connection = try await AMQPConnection.connect(configuration, logger: self.logger)
        do {
            let authorizer = Authorizer(
                cbs: try await CBSClient.attach(on: connection), connectionString: self.connectionString,
                audience: self.connectionString.audience(self.eventHub), lifetime: self.options.client.tokenLifetime,
                margin: self.options.client.tokenRefreshMargin, logger: self.logger)
            try await authorizer.start()
            if self.closes != closesBefore {
                await authorizer.stop()
                await connection.close()
                throw AMQPError(.cancelled, "the producer was closed")
            }
            self.connection = connection
            self.authorizer = authorizer
            return connection
        } catch {
            await connection.close()
            throw error
        }
    }

    /// What a retriable outcome says went wrong, for the deadline's error.
    private static func cause(of outcome: Result<AMQPOutcome, AMQPError>) -> String {
        switch outcome {
        case .success(let outcome): "\(outcome)"
        case .failure(let error): "\(error)"
        }
    }

    /// The error of events not accepted before the retry deadline, with the last thing that went
    /// wrong (a refused connection, throttling, …), so that the cause reaches the user.
    private static func deadlineError(_ count: Int?, policy: EventHubsRetryPolicy, cause: String?) -> AMQPError {
        let what = count.map { "\($0) event\($0 == 1 ? "" : "s") not accepted" } ?? "no event accepted"
        return AMQPError(
            .timeout, "\(what) within the retry deadline of \(Self.seconds(policy.deadline))" + (cause.map { "; last error: \($0)" } ?? ""))
    }

    /// A wait in words for the log: "1.5 s".
    static func seconds(_ duration: Duration) -> String {
        String(format: "%.1f s", duration / .seconds(1))
    }

    /// The margin before expiry at which a token is put again (see ``EventHubsProducerOptions``).
    var refreshMargin: Duration {
        Authorizer.margin(lifetime: self.options.client.tokenLifetime, configured: self.options.client.tokenRefreshMargin)
    }
}
