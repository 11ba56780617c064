// Hubcast — why the emulator could not start or store an event.

/// An error of the emulator itself (not of a client's request, which it answers on the wire).
public struct EmulatorError: Error, Sendable, CustomStringConvertible {
    /// What went wrong. A struct, so that codes can be added without breaking callers.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: Hashable, Sendable {
            case invalidConfiguration, dataIO, dataDamaged, dataMismatch, dataInUse
        }

        private let backing: Backing
        private init(_ backing: Backing) { self.backing = backing }

        /// A setting is out of range.
        public static let invalidConfiguration = Code(.invalidConfiguration)
        /// The data directory or its log could not be created, read or written.
        public static let dataIO = Code(.dataIO)
        /// The log holds something that is neither a whole record nor a torn last one.
        public static let dataDamaged = Code(.dataDamaged)
        /// The log's hubs do not fit the configuration (a hub missing, or fewer partitions).
        public static let dataMismatch = Code(.dataMismatch)
        /// Another emulator has the data directory open.
        public static let dataInUse = Code(.dataInUse)

        public var description: String {
            switch self.backing {
            case .invalidConfiguration: "invalid configuration"
            case .dataIO: "data directory I/O"
            case .dataDamaged: "damaged data log"
            case .dataMismatch: "data log does not match the configuration"
            case .dataInUse: "data directory in use"
            }
        }
    }

    public var code: Code
    /// What happened, naming the file and offset where there is one.
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { self.message }
}
