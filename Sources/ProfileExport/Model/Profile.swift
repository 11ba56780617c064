// Hubcast — a stored profile (docs/exports.md#profiles-and-identities).

/// One person: identities, an attribute document and audience memberships.
public struct Profile: Sendable, Hashable {
    /// The store's key for this profile; stable for its life.
    public var key: Int64
    /// The profile id updates name it by, when one was given.
    public var profileId: String?
    public var identities = IdentityMap()
    /// The attribute document (nested objects, XDM-style paths).
    public var attributes = JSONObject()
    /// Audience id → membership, in the order first set. Exited memberships stay (with their time).
    public var memberships: FlatDictionary<String, Membership> = [:]
    /// The rule set the memberships were last fully evaluated with (see `ProfileEngine`).
    public var ruleVersion: Int64 = 0
    /// Dataflow id → the decision taken for this profile's last update or upload, for `explain`.
    public var lastDecisions: FlatDictionary<String, ExportDecision> = [:]

    public init(key: Int64, profileId: String? = nil) {
        self.key = key
        self.profileId = profileId
    }

    /// Whether the profile is currently a member (`realized` or `existing`) of `audienceId`.
    public func isMember(of audienceId: String) -> Bool {
        memberships[audienceId]?.status.isMember ?? false
    }
}
