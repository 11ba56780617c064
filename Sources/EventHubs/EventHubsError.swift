// Hubcast — errors of the Event Hubs client.

/// The error type of the Event Hubs client. Match on ``code``; messages never contain keys or tokens.
public struct EventHubsError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of failure this is. New codes may be added: switch with a `default`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Base: String, Hashable, Sendable {
            case invalidConnectionString = "invalid connection string"
            case invalidToken = "invalid SAS token"
            case tokenExpired = "SAS token expired"
            case unauthorized = "unauthorized"
            case notFound = "not found"
            case authorizationFailed = "authorization failed"
        }

        fileprivate let base: Base

        /// A connection string, or one of the separate fields, is malformed or incomplete.
        public static let invalidConnectionString = Code(base: .invalidConnectionString)
        /// A pre-made `SharedAccessSignature` cannot be read.
        public static let invalidToken = Code(base: .invalidToken)
        /// A pre-made `SharedAccessSignature` has expired (or expires too soon to be used).
        public static let tokenExpired = Code(base: .tokenExpired)
        /// The service refused the credential (wrong key, unknown rule, missing right, expired token).
        public static let unauthorized = Code(base: .unauthorized)
        /// The event hub or partition does not exist.
        public static let notFound = Code(base: .notFound)
        /// Claims-based authorization on `$cbs` failed for another reason (bad request, no answer).
        public static let authorizationFailed = Code(base: .authorizationFailed)

        public var description: String { self.base.rawValue }
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

    public var description: String { "Event Hubs \(self.code): \(self.message)" }
}
