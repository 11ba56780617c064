// Hubcast — errors of the rules engine.

/// The error type of the rules engine. Match on ``code``; ``location`` says where in which input.
public struct ProfileExportError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of failure this is. New codes may be added: switch with a `default`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Base: String, Hashable, Sendable {
            case invalidJSON = "invalid JSON"
            case invalidPath = "invalid attribute path"
            case invalidTimestamp = "invalid timestamp"
            case invalidRule = "invalid rule"
            case invalidUpdate = "invalid profile update"
            case identityConflict = "identity conflict"
            case invalidConfiguration = "invalid configuration"
            case invalidUpload = "invalid upload"
            case store = "store failure"
            case unreadableInput = "unreadable input"
        }

        fileprivate let base: Base

        /// Text that is not JSON.
        public static let invalidJSON = Code(base: .invalidJSON)
        /// A dotted attribute path with an empty step.
        public static let invalidPath = Code(base: .invalidPath)
        /// A timestamp that is not ISO 8601.
        public static let invalidTimestamp = Code(base: .invalidTimestamp)
        /// An audience rule that does not parse (``location`` has its line and column).
        public static let invalidRule = Code(base: .invalidRule)
        /// A profile update that is not of the shape of docs/input.md#update-lines.
        public static let invalidUpdate = Code(base: .invalidUpdate)
        /// An update whose profile id and identities point at different profiles.
        public static let identityConflict = Code(base: .identityConflict)
        /// A configuration file that cannot be used (``location`` names file, line and key).
        public static let invalidConfiguration = Code(base: .invalidConfiguration)
        /// An audience upload (CSV) that cannot be read at all.
        public static let invalidUpload = Code(base: .invalidUpload)
        /// The profile store failed (disk, database).
        public static let store = Code(base: .store)
        /// The input of updates cannot be opened or read (a directory, an I/O error).
        public static let unreadableInput = Code(base: .unreadableInput)

        public var description: String { self.base.rawValue }
    }

    /// Where the problem is: a file, a line, a column, a key; each part optional.
    public struct Location: Hashable, Sendable, CustomStringConvertible {
        public var file: String?
        public var line: Int?
        public var column: Int?
        public var key: String?

        public init(file: String? = nil, line: Int? = nil, column: Int? = nil, key: String? = nil) {
            self.file = file
            self.line = line
            self.column = column
            self.key = key
        }

        public var description: String {
            var parts: [String] = []
            if let file { parts.append(file) }
            if let line { parts.append("line \(line)") }
            if let column { parts.append("column \(column)") }
            if let key { parts.append("key '\(key)'") }
            return parts.joined(separator: ", ")
        }
    }

    /// What kind of failure this is.
    public var code: Code
    /// What happened, in words.
    public var message: String
    /// Where it happened, when known.
    public var location: Location?

    /// Makes an error.
    public init(_ code: Code, _ message: String, at location: Location? = nil) {
        self.code = code
        self.message = message
        self.location = location
    }

    public var description: String {
        if let location, !location.description.isEmpty { return "\(location): \(self.code): \(self.message)" }
        return "\(self.code): \(self.message)"
    }
}
