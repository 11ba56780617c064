// Hubcast — keeps a connection's `$cbs` token for one audience valid (docs/eventhubs-wire.md#authorization-on-cbs).

import AMQP
import Foundation
import Logging

extension EventHubsConnectionString {
    /// The AMQP settings for this namespace: TLS unless the emulator, SASL `MSSBCBS`, the namespace
    /// as `open` hostname and SNI.
    func amqpConfiguration(containerID: String, trustedCAFile: String?, traceFrames: Bool) -> AMQPConnectionConfiguration {
        var configuration = AMQPConnectionConfiguration(
            host: self.fullyQualifiedNamespace, port: self.effectivePort,
            tls: self.usesTLS ? AMQPTLSConfiguration(trustedCAFile: trustedCAFile) : nil,
            sasl: .anonymous(mechanism: "MSSBCBS"))
        configuration.virtualHost = self.fullyQualifiedNamespace
        configuration.containerID = containerID
        configuration.traceFrames = traceFrames
        return configuration
    }

    /// A token for `audience`: signed now for `lifetime`, or the pre-made one while it is valid.
    func token(for audience: String, lifetime: Duration) throws -> EventHubsSASToken {
        let now = Int64(Date().timeIntervalSince1970)
        switch self.credential {
        case .sharedAccessKey(let name, let key):
            return EventHubsSASToken(resource: audience, keyName: name, key: key, expiresAt: now + lifetime.components.seconds)
        case .sharedAccessSignature(let token):
            guard token.isValid(at: now) else {
                throw EventHubsError(.tokenExpired, "the SharedAccessSignature expired at \(token.expiresAt) (Unix time)")
            }
            return token
        }
    }
}

/// Puts a token for one audience on a connection's `$cbs` link and puts a fresh one shortly before
/// each expires (margin from the options, with jitter; retried on failure).
actor Authorizer {
    private let cbs: CBSClient
    private let connectionString: EventHubsConnectionString
    private let audience: String
    private let lifetime: Duration
    let margin: Duration
    private let logger: Logger
    private var refreshTask: Task<Void, Never>?

    /// The margin before expiry at which a token is put again: the given one, else 10 % of the
    /// lifetime but at least 10 minutes (at most half the lifetime).
    static func margin(lifetime: Duration, configured: Duration?) -> Duration {
        configured ?? max(lifetime / 10, min(.seconds(600), lifetime / 2))
    }

    init(
        cbs: CBSClient, connectionString: EventHubsConnectionString, audience: String, lifetime: Duration,
        margin: Duration?, logger: Logger
    ) {
        self.cbs = cbs
        self.connectionString = connectionString
        self.audience = audience
        self.lifetime = lifetime
        self.margin = Self.margin(lifetime: lifetime, configured: margin)
        self.logger = logger
    }

    /// Puts the first token (waiting for the 2xx answer) and starts renewing.
    func start() async throws {
        let token = try self.connectionString.token(for: self.audience, lifetime: self.lifetime)
        try await self.cbs.putToken(token, audience: self.audience)
        self.schedule(expiresAt: token.expiresAt)
    }

    /// Puts a fresh token now (the service refused the current one early), and renews from there.
    func renewNow() async throws {
        let token = try self.connectionString.token(for: self.audience, lifetime: self.lifetime)
        try await self.cbs.putToken(token, audience: self.audience)
        self.logger.info("token for \(self.audience) put again after the service refused it")
        self.schedule(expiresAt: token.expiresAt)
    }

    /// Stops renewing.
    func stop() {
        self.refreshTask?.cancel()
        self.refreshTask = nil
    }

    private func schedule(expiresAt: Int64) {
        self.refreshTask?.cancel()
        if case .sharedAccessSignature = self.connectionString.credential {
            self.logger.warning("the pre-made SharedAccessSignature cannot be renewed; it lapses at \(expiresAt) (Unix time)")
            return
        }
        let jitter = Duration.milliseconds(Int64.random(in: 0...max(0, self.margin.components.seconds * 100)))
        let nowMilliseconds = Int64(Date().timeIntervalSince1970 * 1000)
        let delay = Duration.milliseconds(expiresAt * 1000 - nowMilliseconds) - self.margin - jitter
        self.after(delay)
    }

    private func after(_ delay: Duration) {
        self.refreshTask = Task { [weak self] in
            try? await Task.sleep(for: max(.zero, delay))
            guard !Task.isCancelled else { return }
            await self?.renew()
        }
    }

    private func renew() async {
        do {
            let token = try self.connectionString.token(for: self.audience, lifetime: self.lifetime)
            try await self.cbs.putToken(token, audience: self.audience)
            self.logger.debug("token for \(self.audience) renewed until \(token.expiresAt)")
            self.schedule(expiresAt: token.expiresAt)
        } catch {
            self.logger.warning("token renewal for \(self.audience) failed: \(error); trying again")
            self.after(min(Duration.seconds(30), self.margin / 4))
        }
    }
}
