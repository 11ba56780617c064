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
        /// A ``ConnectorOptions`` setting is out of range.
        public static let invalidOptions = Code(name: "invalid options")
        /// Another connector runs on the same store.
        public static let storeInUse = Code(name: "store in use")

        public var description: String { self.name }
    }

    /// What kind of failure this is.
    public var code: Code
    /// What happened, in words; never contains a key or a token.
    public var message: String

    /// Makes an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(self.code): \(self.message)" }
}
