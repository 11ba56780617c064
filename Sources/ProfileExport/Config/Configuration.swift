// Hubcast — the configuration: destinations, audiences, dataflows.

/// Everything `hubcast run` is configured with, loaded from one YAML file
/// (``ExportConfiguration/load(file:environment:)``).
public struct ExportConfiguration: Sendable {
    /// The folder of the embedded durable store (relative paths are relative to the file's folder).
    public var store: String
    /// The durable store's page cache, in MiB (`storeCacheMiB`; see ``SQLiteProfileStore``).
    public var storeCacheMiB: Int
    public var destinations: [Destination]
    public var audiences: [AudienceDefinition]
    public var dataflows: [Dataflow]
    public var retry: RetrySettings

    public init(
        store: String, destinations: [Destination], audiences: [AudienceDefinition],
        dataflows: [Dataflow], retry: RetrySettings = RetrySettings(),
        storeCacheMiB: Int = SQLiteProfileStore.defaultCacheMiB
    ) {
        self.store = store
        self.storeCacheMiB = storeCacheMiB
        self.destinations = destinations
        self.audiences = audiences
        self.dataflows = dataflows
        self.retry = retry
    }

    /// The destination with `id`.
    public func destination(_ id: String) -> Destination? { destinations.first { $0.id == id } }
    /// The audience with `id`.
    public func audience(_ id: String) -> AudienceDefinition? { audiences.first { $0.id == id } }
}

/// One Event Hubs destination. Its description never shows the key.
public struct Destination: Sendable, CustomStringConvertible {
    /// How to reach the hub: an Azure connection string, or the seed's separate fields.
    public enum Connection: Sendable {
        case connectionString(String, eventHubName: String?)
        case fields(namespace: String, sasKeyName: String, sasKey: String, eventHubName: String)
    }

    public var id: String
    public var name: String
    public var description: String { "destination \(id) (\(name))" }
    /// The `description` key of the file.
    public var details: String
    public var connection: Connection
    /// Adds each audience's `name` to the `segmentMembership.ups` entries.
    public var includeSegmentNames: Bool
    /// Adds `createdAt`/`updatedAt` (and mapping times for mapped audiences), epoch milliseconds.
    public var includeSegmentTimestamps: Bool
    /// The `${NAME}`s of the connection settings that were not set when the configuration was
    /// loaded for inspection (``ExportConfiguration/LoadMode/inspection``): they are still written
    /// as `${NAME}` in ``connection``. Empty when the connection is complete.
    public var unresolvedVariables: [String] = []

    /// The connection, or an error naming the unset variables when it was left unresolved: for
    /// whatever needs to reach the hub from a configuration loaded for inspection.
    public func resolvedConnection() throws(ProfileExportError) -> Connection {
        guard unresolvedVariables.isEmpty else {
            let names = unresolvedVariables.map { "${\($0)}" }.joined(separator: ", ")
            throw ProfileExportError(
                .invalidConfiguration,
                "its connection settings use \(names), which \(unresolvedVariables.count == 1 ? "is" : "are") not set in the environment",
                at: .init(key: "destinations.\(id)"))
        }
        return connection
    }

    public init(
        id: String, name: String? = nil, details: String = "", connection: Connection,
        includeSegmentNames: Bool = false, includeSegmentTimestamps: Bool = false
    ) {
        self.id = id
        self.name = name ?? id
        self.details = details
        self.connection = connection
        self.includeSegmentNames = includeSegmentNames
        self.includeSegmentTimestamps = includeSegmentTimestamps
    }
}

/// An audience: evaluated from a rule, listed by an upload, or evaluated upstream (neither).
public struct AudienceDefinition: Sendable {
    public enum Origin: Sendable {
        /// Hubcast evaluates the rule on every update.
        case rule(AudienceRule)
        /// Members are the identities listed in a CSV file (absolute path).
        case upload(file: String)
        /// Statuses arrive with updates (`segmentMembership`).
        case upstream
    }

    public var id: String
    public var name: String?
    public var mergePolicy: String
    public var origin: Origin
    public var createdAt: Timestamp?
    public var updatedAt: Timestamp?

    public init(
        id: String, name: String? = nil, mergePolicy: String = "default", origin: Origin,
        createdAt: Timestamp? = nil, updatedAt: Timestamp? = nil
    ) {
        self.id = id
        self.name = name
        self.mergePolicy = mergePolicy
        self.origin = origin
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// An audience mapped to a dataflow, with the mapping's times.
public struct MappedAudience: Sendable, Hashable {
    public var id: String
    public var mappingCreatedAt: Timestamp?
    public var mappingUpdatedAt: Timestamp?

    public init(id: String, mappingCreatedAt: Timestamp? = nil, mappingUpdatedAt: Timestamp? = nil) {
        self.id = id
        self.mappingCreatedAt = mappingCreatedAt
        self.mappingUpdatedAt = mappingUpdatedAt
    }
}

/// A dataflow (activation): a destination, mapped audiences and mapped attributes.
public struct Dataflow: Sendable {
    public var id: String
    public var destination: String
    public var audiences: [MappedAudience]
    public var attributes: [AttributePath]
    /// The identity namespace whose first id keys the partition; `nil` uses the profile id.
    public var partitionKey: String?

    public init(
        id: String, destination: String, audiences: [MappedAudience], attributes: [AttributePath],
        partitionKey: String? = nil
    ) {
        self.id = id
        self.destination = destination
        self.audiences = audiences
        self.attributes = attributes
        self.partitionKey = partitionKey
    }
}

/// The retry settings (the product promises two retries).
public struct RetrySettings: Sendable, Hashable {
    public var retries: Int

    public init(retries: Int = 2) { self.retries = retries }
}
