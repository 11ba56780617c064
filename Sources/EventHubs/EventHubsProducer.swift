// Hubcast — a producer to one event hub.

public import AMQP
import Foundation
public import Logging

/// Settings of an ``EventHubsProducer``.
public struct EventHubsProducerOptions: Sendable {
    /// How long signed tokens live. Default: 1 hour.
    public var tokenLifetime: Duration = .seconds(3600)
    /// How long before expiry a token is put again. Default (nil): 10 % of the lifetime, but at
    /// least 10 minutes (at most half the lifetime), with up to 10 % of jitter earlier.
    public var tokenRefreshMargin: Duration?
    /// A CA file to trust for TLS (for example the emulator's test CA); nil uses the system store.
    public var trustedCAFile: String?
    /// Logs every AMQP frame at debug level. Default: false.
    public var traceFrames = false

    public init() {}
}

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
    private var cbs: CBSClient?
    private var senders: [String: AMQPSender] = [:]
    private var refreshTask: Task<Void, Never>?

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

    /// Sends one event and returns its outcome (`accepted`, or `rejected` with the service's
    /// condition). `partition` sends to `hub/Partitions/<partition>` instead of the hub.
    public func send(_ event: EventHubsEvent, partition: String? = nil) async throws -> AMQPOutcome {
        let sender = try await self.sender(partition.map { "\(self.eventHub)/Partitions/\($0)" } ?? self.eventHub)
        return try await sender.send(event.message)
    }

    /// Sends many events pipelined on one link and returns each one's outcome, in order.
    /// Per-event failures come back as results; the call throws only when no link can be had.
    public func send(contentsOf events: [EventHubsEvent], partition: String? = nil) async throws
        -> [Result<AMQPOutcome, AMQPError>]
    {
        let sender = try await self.sender(partition.map { "\(self.eventHub)/Partitions/\($0)" } ?? self.eventHub)
        return try await sender.send(contentsOf: events.map(\.message))
    }

    /// Closes the connection.
    public func close() async {
        self.refreshTask?.cancel()
        self.refreshTask = nil
        await self.connection?.close()
        self.connection = nil
        self.cbs = nil
        self.senders = [:]
    }

    private func sender(_ target: String) async throws -> AMQPSender {
        if let sender = self.senders[target] { return sender }
        let connection = try await self.connect()
        let sender = try await connection.openSender(target: target)
        self.senders[target] = sender
        return sender
    }

    private func connect() async throws -> AMQPConnection {
        if let connection = self.connection { return connection }
        let string = self.connectionString
        var configuration = AMQPConnectionConfiguration(
            host: string.fullyQualifiedNamespace, port: string.effectivePort,
            tls: string.usesTLS ? AMQPTLSConfiguration(trustedCAFile: self.options.trustedCAFile) : nil,
            sasl: .anonymous(mechanism: "MSSBCBS"))
        configuration.virtualHost = string.fullyQualifiedNamespace
        configuration.containerID = "hubcast-\(self.eventHub)-\(UUID().uuidString.prefix(8).lowercased())"
        configuration.traceFrames = self.options.traceFrames
        let connection = try await AMQPConnection.connect(configuration, logger: self.logger)
        do {
            let cbs = try await CBSClient.attach(on: connection)
            let audience = string.audience(self.eventHub)
            let token = try self.token(for: audience)
            try await cbs.putToken(token, audience: audience)
            self.connection = connection
            self.cbs = cbs
            self.scheduleRefresh(expiresAt: token.expiresAt)
            return connection
        } catch {
            await connection.close()
            throw error
        }
    }

    /// The margin before expiry at which a token is put again (see ``EventHubsProducerOptions``).
    var refreshMargin: Duration {
        if let margin = self.options.tokenRefreshMargin { return margin }
        let lifetime = self.options.tokenLifetime
        return max(lifetime / 10, min(.seconds(600), lifetime / 2))
    }

    /// Puts a fresh token shortly before `expiresAt` (Unix seconds). A pre-made signature cannot be
    /// renewed: the producer logs when it will lapse and sends then fail with `.tokenExpired`.
    private func scheduleRefresh(expiresAt: Int64) {
        self.refreshTask?.cancel()
        let margin = self.refreshMargin
        let jitter = Duration.milliseconds(Int64.random(in: 0...max(0, margin.components.seconds * 100)))
        let nowMilliseconds = Int64(Date().timeIntervalSince1970 * 1000)
        let delay = Duration.milliseconds(expiresAt * 1000 - nowMilliseconds) - margin - jitter
        if case .sharedAccessSignature = self.connectionString.credential {
            self.logger.warning("the pre-made SharedAccessSignature cannot be renewed; it lapses at \(expiresAt) (Unix time)")
            return
        }
        self.refreshTask = Task { [weak self] in
            try? await Task.sleep(for: max(.zero, delay))
            guard !Task.isCancelled else { return }
            await self?.refreshToken()
        }
    }

    private func refreshToken() async {
        guard let cbs = self.cbs else { return }
        let audience = self.connectionString.audience(self.eventHub)
        do {
            let token = try self.token(for: audience)
            try await cbs.putToken(token, audience: audience)
            self.logger.debug("token for \(audience) renewed until \(token.expiresAt)")
            self.scheduleRefresh(expiresAt: token.expiresAt)
        } catch {
            self.logger.warning("token renewal for \(audience) failed: \(error); trying again")
            let retry = min(Duration.seconds(30), self.refreshMargin / 4)
            self.refreshTask = Task { [weak self] in
                try? await Task.sleep(for: retry)
                guard !Task.isCancelled else { return }
                await self?.refreshToken()
            }
        }
    }

    private func token(for audience: String) throws -> EventHubsSASToken {
        let now = Int64(Date().timeIntervalSince1970)
        switch self.connectionString.credential {
        case .sharedAccessKey(let name, let key):
            return EventHubsSASToken(
                resource: audience, keyName: name, key: key, expiresAt: now + self.options.tokenLifetime.components.seconds)
        case .sharedAccessSignature(let token):
            guard token.isValid(at: now) else {
                throw EventHubsError(.tokenExpired, "the SharedAccessSignature expired at \(token.expiresAt) (Unix time)")
            }
            return token
        }
    }
}
