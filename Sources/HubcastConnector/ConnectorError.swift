// Hubcast — errors of the connector.

/// The error type of the connector. Match on ``code``; messages never contain keys or tokens.
public struct ConnectorError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of failure this is. New codes may be added: switch with a `default`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate let name: String

        /// The store (profiles, outbox, failed exports) cannot be read or written.
        public static let store = Code(name: "store")
        /// A destination cannot be used at all (bad connection settings, refused credentials, unknown hub).
        public static let destination = Code(name: "destination")
        /// The input cannot be read, or the configuration does not allow the run.
        public static let input = Code(name: "input")
        /// No failed export has the given id.
        public static let notFound = Code(name: "not found")

        public var description: String { self.name }
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(self.code): \(self.message)" }
}
