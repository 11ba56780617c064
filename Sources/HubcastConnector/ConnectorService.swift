// Hubcast — the connector as a service of swift-service-lifecycle.

public import ServiceLifecycle

/// A ``Connector`` as a `Service`, to run in a `ServiceGroup` beside the other long-lived parts of
/// a process (an HTTP server, a metrics exporter) with one graceful shutdown for all of them.
///
/// ``run()`` runs the connector on ``input`` and returns when the connector is done (a finite input
/// consumed and everything settled). When the group shuts down gracefully, or the task is
/// cancelled, it stops the connector as ``Connector/stop()`` does (sends in flight settle within
/// ``ConnectorOptions/drainTimeout``, the rest stays in the outbox for the next run) and returns
/// once it has stopped. The final report goes to the `onReport` given at creation; an error of the
/// run (``ConnectorError``) is thrown, which ends the group.
public struct ConnectorService: Service {
    public let connector: Connector
    /// The input file (`-` for stdin), or nil to send what waits in the outbox and run until stopped.
    public let input: String?
    private let onReport: @Sendable (ConnectorReport) -> Void

    public init(_ connector: Connector, input: String? = nil, onReport: @escaping @Sendable (ConnectorReport) -> Void = { _ in }) {
        self.connector = connector
        self.input = input
        self.onReport = onReport
    }

    public func run() async throws {
        let connector = self.connector
        let report = try await withTaskCancellationOrGracefulShutdownHandler {
            try await connector.run(input: self.input)
        } onCancelOrGracefulShutdown: {
            connector.stop()
        }
        self.onReport(report)
    }
}
