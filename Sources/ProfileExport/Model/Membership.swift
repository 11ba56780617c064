// Hubcast — audience membership statuses (docs/exports.md#membership-statuses).

/// Where a profile stands with one audience.
public enum MembershipStatus: String, Sendable, Hashable, CaseIterable {
    /// Newly qualified at the update that set it.
    case realized
    /// Still qualified at a later evaluation.
    case existing
    /// Left the audience.
    case exited

    /// `realized` and `existing` are members; `exited` is not.
    public var isMember: Bool { self != .exited }

    /// The position in `allCases`.
    var ordinal: Int {
        switch self {
        case .realized: 0
        case .existing: 1
        case .exited: 2
        }
    }
}

/// A profile's status in one audience and when it last qualified (or exited).
public struct Membership: Sendable, Hashable {
    public var status: MembershipStatus
    /// For `realized`/`existing`: when the profile qualified; for `exited`: when it left.
    public var lastQualificationTime: Timestamp

    public init(_ status: MembershipStatus, at time: Timestamp) {
        self.status = status
        self.lastQualificationTime = time
    }
}

/// One change of a profile's membership in an audience, caused by an update or an upload.
public struct MembershipChange: Sendable, Hashable {
    public var audienceId: String
    /// The status before; `nil` when the profile had none.
    public var from: MembershipStatus?
    public var to: Membership

    /// Whether the profile joined or left (the only changes that trigger exports: docs/exports.md#membership-changes).
    public var isTransition: Bool { (from?.isMember ?? false) != to.status.isMember }
}
