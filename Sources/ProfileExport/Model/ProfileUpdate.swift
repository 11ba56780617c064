// Hubcast — profile updates, the input of the rules engine (docs/input.md).

/// One profile update: identities to add and remove, attribute writes and removals, and
/// memberships evaluated upstream.
public struct ProfileUpdate: Sendable, Hashable {
    public var profileId: String?
    /// The update's time; `nil` means the time it is applied.
    public var timestamp: Timestamp?
    /// Identities to add, in the order written.
    public var identities: [Identity] = []
    public var removeIdentities: [Identity] = []
    /// Attribute writes: every leaf is a write to its path; a `null` leaf removes the attribute.
    public var attributes = JSONObject()
    public var removeAttributes: [AttributePath] = []
    /// Statuses evaluated upstream, for audiences with no rule or upload here.
    public var memberships: [UpstreamMembership] = []

    public init(profileId: String? = nil, timestamp: Timestamp? = nil) {
        self.profileId = profileId
        self.timestamp = timestamp
    }

    /// Parses one JSON line (docs/input.md#update-lines). Errors name the field and what is wrong with it.
    public init(jsonLine: String) throws(ProfileExportError) {
        var line = jsonLine
        try self.init(json: line.withUTF8 { bytes in Result { () throws(ProfileExportError) in try JSONParser.parse(bytes: bytes) } }.get())
    }

    /// Reads an update from a parsed JSON object.
    public init(json: JSONValue) throws(ProfileExportError) {
        guard let object = json.object else { throw Self.invalid("an update is a JSON object") }
        // More optional fields may be added (docs/input.md#fields): unknown keys are ignored.
        switch object["profileId"] {
        case nil, .null?: break
        case .string(let id)? where !id.isEmpty:
            guard !id.utf8.contains(0) else { throw Self.invalid("'profileId' contains a NUL character (\\u0000)") }
            profileId = id
        default: throw Self.invalid("'profileId' must be a non-empty string")
        }
        switch object["timestamp"] {
        case nil, .null?: break
        case .string(let text)?:
            guard let parsed = Timestamp.parse(text) else { throw Self.invalid("'timestamp' is not ISO 8601: '\(text.prefix(40))'") }
            timestamp = parsed
        default: throw Self.invalid("'timestamp' must be an ISO 8601 string")
        }
        identities = try Self.identities(object["identities"], field: "identities")
        removeIdentities = try Self.identities(object["removeIdentities"], field: "removeIdentities")
        switch object["attributes"] {
        case nil, .null?: break
        case .object(let members)?: attributes = members
        default: throw Self.invalid("'attributes' must be an object")
        }
        switch object["removeAttributes"] {
        case nil, .null?: break
        case .array(let items)?:
            for item in items {
                guard case .string(let text) = item, let path = try? AttributePath(text) else {
                    throw Self.invalid("'removeAttributes' must list dotted attribute paths")
                }
                removeAttributes.append(path)
            }
        default: throw Self.invalid("'removeAttributes' must be an array of attribute paths")
        }
        switch object["segmentMembership"] {
        case nil, .null?: break
        case .object(let membership)?:
            switch membership["ups"] {
            case nil, .null?: break
            case .object(let audiences)?:
                for (audienceId, entry) in audiences {
                    guard case .object(let fields) = entry, case .string(let statusText)? = fields["status"],
                        let status = MembershipStatus(rawValue: statusText)
                    else {
                        throw Self.invalid("'segmentMembership.ups.\(audienceId)' needs a status of realized, existing or exited")
                    }
                    var time: Timestamp?
                    switch fields["lastQualificationTime"] {
                    case nil, .null?: break
                    case .string(let text)?:
                        guard let parsed = Timestamp.parse(text) else {
                            throw Self.invalid("'segmentMembership.ups.\(audienceId).lastQualificationTime' is not ISO 8601")
                        }
                        time = parsed
                    default: throw Self.invalid("'segmentMembership.ups.\(audienceId).lastQualificationTime' must be a string")
                    }
                    memberships.append(UpstreamMembership(audienceId: audienceId, status: status, time: time))
                }
            default: throw Self.invalid("'segmentMembership.ups' must be an object keyed by audience id")
            }
        default: throw Self.invalid("'segmentMembership' must be an object")
        }
        if profileId == nil, identities.isEmpty, removeIdentities.isEmpty {
            throw Self.invalid("an update needs a 'profileId' or at least one identity")
        }
    }

    private static func invalid(_ message: String) -> ProfileExportError {
        ProfileExportError(.invalidUpdate, message)
    }

    private static func identities(_ value: JSONValue?, field: String) throws(ProfileExportError) -> [Identity] {
        switch value {
        case nil, .null?: return []
        case .object(let namespaces)?:
            var result: [Identity] = []
            for (namespace, ids) in namespaces {
                guard !namespace.isEmpty else { throw invalid("'\(field)' has an empty namespace") }
                // Ids are stored as SQLite text, which ends at a NUL: "a\u0000b" would become "a".
                guard !namespace.utf8.contains(0) else { throw invalid("'\(field)' has a namespace with a NUL character (\\u0000)") }
                func add(_ id: String) throws(ProfileExportError) {
                    guard !id.utf8.contains(0) else { throw invalid("'\(field).\(namespace)' has an id with a NUL character (\\u0000)") }
                    result.append(Identity(namespace: namespace, id: id))
                }
                switch ids {
                case .string(let id) where !id.isEmpty: try add(id)
                case .array(let items):
                    for item in items {
                        guard case .string(let id) = item, !id.isEmpty else {
                            throw invalid("'\(field).\(namespace)' must hold non-empty id strings")
                        }
                        try add(id)
                    }
                default: throw invalid("'\(field).\(namespace)' must be an array of id strings")
                }
            }
            return result
        default: throw invalid("'\(field)' must be an object of namespace → [id]")
        }
    }
}

/// A membership status evaluated upstream and carried by an update (docs/input.md#upstream-memberships).
public struct UpstreamMembership: Sendable, Hashable {
    public var audienceId: String
    public var status: MembershipStatus
    /// `nil` means the update's time.
    public var time: Timestamp?

    public init(audienceId: String, status: MembershipStatus, time: Timestamp? = nil) {
        self.audienceId = audienceId
        self.status = status
        self.time = time
    }
}
