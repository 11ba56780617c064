// Hubcast — applying profile updates and deciding what is export-worthy (docs/exports.md, payload.md, input.md).

/// The rules engine: applies updates to stored profiles, re-evaluates audiences, decides per
/// dataflow whether the update is export-worthy (with an explanation) and builds the payloads.
///
/// Not thread-safe: one task drives an engine (and its store).
public final class ProfileEngine {
    public let configuration: ExportConfiguration
    public let store: any ProfileStore
    let plan: ExportPlan
    let payloads: PayloadBuilder
    /// Scratch: whether the profile being decided is in a mapped audience of each dataflow.
    private var memberOfDataflow: [Bool]
    /// Scratch: where the profile being decided has each audience slot.
    private var memberships: MembershipIndex

    public init(configuration: ExportConfiguration, store: any ProfileStore) {
        self.configuration = configuration
        self.store = store
        self.plan = ExportPlan(configuration)
        self.payloads = PayloadBuilder(plan: plan)
        self.memberOfDataflow = [Bool](repeating: false, count: configuration.dataflows.count)
        self.memberships = MembershipIndex(slots: plan.audienceSlots.count)
    }

    /// Applies one update and returns its exports, one per dataflow it is export-worthy for.
    /// Call inside ``ProfileStore/batch(_:)`` to group the writes of many updates.
    /// Throws ``ProfileExportError/Code/identityConflict`` (nothing changed) when the update's
    /// profile id and identities point at different profiles.
    public func apply(_ update: ProfileUpdate, receivedAt: Timestamp = .now()) throws(ProfileExportError) -> [ExportItem] {
        let time = update.timestamp ?? receivedAt
        // The identities before the update, for the store's index: read only when the update names
        // identities (a stored profile's are left untouched otherwise, see `saveKeepingIdentities`).
        let namesIdentities = !update.identities.isEmpty || !update.removeIdentities.isEmpty
        var profile: Profile
        let previousIdentities: IdentityMap?
        let isNew: Bool
        if let stored = try resolve(update) {
            previousIdentities = namesIdentities ? stored.identities : nil
            profile = stored  // its last use: moved, not copied
            isNew = false
        } else {
            guard update.profileId != nil || !update.identities.isEmpty else {
                throw ProfileExportError(
                    .invalidUpdate, "no profile has the identities to remove, and the update names no profile id or identity to add")
            }
            profile = Profile(key: try store.newKey(), profileId: update.profileId)
            previousIdentities = nil
            isNew = true
        }
        if profile.profileId == nil { profile.profileId = update.profileId }

        // Identities (docs/exports.md#identity-changes: re-adding or removing an absent one is no change).
        var added: [Identity] = []
        var removed: [Identity] = []
        for identity in update.identities where profile.identities.add(identity) { added.append(identity) }
        for identity in update.removeIdentities where profile.identities.remove(identity) { removed.append(identity) }

        // Attributes: writes, then removals; which mapped paths they touched.
        let changedAttributes = applyAttributes(update, to: &profile)

        // Memberships: upstream statuses, then every rule audience.
        var changes: [MembershipChange] = []
        for given in update.memberships where !plan.evaluatedHere.contains(given.audienceId) {
            let before = profile.memberships[given.audienceId]
            let after = Membership(given.status, at: given.time ?? time)
            profile.memberships[given.audienceId] = after
            changes.append(MembershipChange(audienceId: given.audienceId, from: before?.status, to: after))
        }
        // A rule's result depends only on the attributes it reads: a rule that reads nothing this
        // update wrote gives what it gave last time (the profile's membership), unless the rule set
        // changed since the profile was last fully evaluated.
        let everything = profile.ruleVersion != plan.ruleVersion
        if everything {
            for (audienceId, rule) in plan.rules {
                if let change = Self.evaluate(rule.matches(object: profile.attributes), audienceId, in: &profile, at: time) {
                    changes.append(change)
                }
            }
        } else {
            // Rules that read nothing written keep their result: only `realized` moves to `existing`.
            for position in profile.memberships.values.indices where profile.memberships.values[position].status == .realized {
                let audienceId = profile.memberships.keys[position]
                guard let index = plan.ruleIndex[audienceId], !changedAttributes.rules.contains(index) else { continue }
                let before = profile.memberships.values[position]
                let after = Membership(.existing, at: before.lastQualificationTime)
                profile.memberships.values[position] = after
                changes.append(MembershipChange(audienceId: audienceId, from: .realized, to: after))
            }
            for index in changedAttributes.rules {
                let (audienceId, rule) = plan.rules[index]
                if let change = Self.evaluate(rule.matches(object: profile.attributes), audienceId, in: &profile, at: time) {
                    changes.append(change)
                }
            }
        }
        profile.ruleVersion = plan.ruleVersion

        let items = decide(&profile, time: time, changes: changes, added: added, removed: removed, changedAttributes: changedAttributes)
        // Handed to the store, not copied: a copy would count every reference the profile holds
        // (atomic writes to cache lines this update did not otherwise touch).
        var finished = Profile(key: profile.key)
        swap(&finished, &profile)
        if isNew || namesIdentities {
            try store.save(consume finished, previousIdentities: previousIdentities)
        } else {
            try store.saveKeepingIdentities(consume finished)
        }
        return items
    }

    /// A hint that `updates` are applied next: the store may read ahead, together, what applying
    /// them reads (see ``ProfileStore/prefetch(_:)``); groups of ``prefetchGroup`` updates suit the
    /// memory store. Changes nothing.
    public func prefetch(_ updates: ArraySlice<ProfileUpdate>) { store.prefetch(updates) }

    /// How many updates to hand to ``prefetch(_:)`` at a time.
    public static let prefetchGroup = 16

    /// Checks out the profile an update is about, or `nil` for a new one; refuses conflicts (docs/input.md#conflicts):
    /// identities of two profiles, or a profile id and an identity of a profile with another id. A
    /// profile with no id yet (made by an upload, or by updates with identities only) takes the
    /// update's profile id: that names it, it merges nothing.
    private func resolve(_ update: ProfileUpdate) throws(ProfileExportError) -> Profile? {
        var owner: Int64?
        // What named the owner, put into words only for a conflict.
        var ownerWitness: Identity?
        func witness() -> String {
            if let ownerWitness { return "identity \(ownerWitness)" }
            return "profileId '\(update.profileId ?? "")'"
        }
        if let profileId = update.profileId, let key = try store.key(profileId: profileId) {
            owner = key
        }
        // Each identity that a profile has names that profile; two different ones are a conflict.
        func claim(_ identities: [Identity], conflict: (Identity) -> String) throws(ProfileExportError) {
            for identity in identities {
                guard let key = try store.key(identity: identity) else { continue }
                if let owner, owner != key { throw ProfileExportError(.identityConflict, conflict(identity)) }
                owner = key
                ownerWitness = identity
            }
        }
        try claim(update.identities) { "identity \($0) belongs to another profile than \(witness())" }
        // Identities to remove only find the profile when nothing else does: once the profile is
        // known, removing an identity it lacks is no change (docs/exports.md#identity-changes), whoever has it.
        if owner == nil {
            try claim(update.removeIdentities) { "identities to remove belong to two profiles (\(witness()), identity \($0))" }
        }
        guard let owner else { return nil }
        // `apply` decides every dataflow: the stored decisions need not be read.
        guard let profile = try store.checkoutReplacingDecisions(key: owner) else {
            throw ProfileExportError(.store, "the index names profile \(owner), which is missing")
        }
        if let profileId = update.profileId, let existing = profile.profileId, existing != profileId {
            try store.checkin(profile)
            throw ProfileExportError(.identityConflict, "\(witness()) belongs to profile '\(existing)', not '\(profileId)'")
        }
        return profile
    }

    /// Re-evaluates one audience (docs/exports.md#membership-statuses): newly qualified → `realized` at `time`; still
    /// qualified → `existing` keeping its time; no longer qualified → `exited` at `time`.
    static func evaluate(_ qualifies: Bool, _ audienceId: String, in profile: inout Profile, at time: Timestamp) -> MembershipChange? {
        let before = profile.memberships[audienceId]
        let after: Membership
        switch (qualifies, before?.status) {
        case (true, nil), (true, .exited?): after = Membership(.realized, at: time)
        case (true, .realized?): after = Membership(.existing, at: before!.lastQualificationTime)
        case (true, .existing?): return nil
        case (false, .realized?), (false, .existing?): after = Membership(.exited, at: time)
        case (false, nil), (false, .exited?): return nil
        }
        profile.memberships[audienceId] = after
        return MembershipChange(audienceId: audienceId, from: before?.status, to: after)
    }

    /// Decides every dataflow for a changed profile, records the decisions, builds the items.
    func decide(
        _ profile: inout Profile, time: Timestamp, changes: [MembershipChange], added: [Identity],
        removed: [Identity], changedAttributes: ChangedAttributes, backfill: [String: [String]] = [:],
        only: String? = nil
    ) -> [ExportItem] {
        var items: [ExportItem] = []
        let flipped = changes.contains { $0.isTransition }
        // The engine's scratch, taken for the call: locals need no run-time exclusivity checks.
        var memberships = MembershipIndex(slots: 0), memberOfDataflow: [Bool] = []
        swap(&memberships, &self.memberships)
        swap(&memberOfDataflow, &self.memberOfDataflow)
        // One pass over its memberships: where each audience is, and which dataflows the profile is
        // in a mapped audience of.
        memberships.index(profile.memberships, plan: plan)
        for position in profile.memberships.values.indices where profile.memberships.values[position].status.isMember {
            let slot = memberships.slot(at: position)
            guard slot >= 0 else { continue }
            for dataflow in plan.dataflowsMapping[slot] { memberOfDataflow[dataflow] = true }
        }
        defer {
            for position in memberOfDataflow.indices { memberOfDataflow[position] = false }
            memberships.clear()
            swap(&memberships, &self.memberships)
            swap(&memberOfDataflow, &self.memberOfDataflow)
        }
        for dataflow in plan.dataflows where only == nil || dataflow.dataflow.id == only {
            // A decision with one trigger shares the plan's list for it (see `DataflowPlan`); a
            // second one makes the list its own.
            var triggers: [ExportTrigger] = []
            func add(_ more: [ExportTrigger]) {
                if triggers.isEmpty { triggers = more } else { triggers += more }
            }
            if flipped {
                for change in changes where change.isTransition {
                    guard let shared = dataflow.membershipTriggers[change.audienceId] else { continue }
                    add(shared[change.to.status.ordinal])
                }
            }
            let isMember = memberOfDataflow[dataflow.index]
            if let audiences = backfill[dataflow.dataflow.id], !audiences.isEmpty {
                add([.backfill(audienceIds: audiences)])
            }
            if isMember {
                if !added.isEmpty || !removed.isEmpty { add([.identity(added: added, removed: removed)]) }
                if !changedAttributes.mapped.isEmpty, let shared = dataflow.attributeTrigger(changedAttributes.mapped) {
                    add(shared)
                }
            }
            let decision: ExportDecision
            if triggers.isEmpty {
                // What `explain` needs beyond the profile itself (whose memberships are those after this
                // update): the mapped audiences that stayed qualified. Usually none: no allocation.
                var stayed: [String] = []
                if isMember {
                    for change in changes where !change.isTransition && dataflow.membershipTriggers[change.audienceId] != nil {
                        stayed.append(change.audienceId)
                    }
                }
                decision = ExportDecision(exported: false, time: time, triggers: [], stayed: stayed)
            } else {
                items.append(
                    ExportItem(
                        dataflow: dataflow.dataflow.id, destination: dataflow.destination.id,
                        partitionKey: Self.partitionKey(of: profile, namespace: dataflow.dataflow.partitionKey),
                        triggers: triggers, payload: payloads.payload(for: profile, dataflow: dataflow, changes: changes, memberships: memberships),
                        profileKey: profile.key, time: time))
                decision = ExportDecision(exported: true, time: time, triggers: triggers)
            }
            // Decisions sit in dataflow order: replace in place when the slot is there.
            let slot = dataflow.index
            if slot < profile.lastDecisions.count, profile.lastDecisions.keys[slot] == dataflow.dataflow.id {
                profile.lastDecisions.values[slot] = decision
            } else {
                profile.lastDecisions[dataflow.dataflow.id] = decision
            }
        }
        return items
    }

    /// The decision on the profile's last update for `dataflowId`, in words (for `hubcast explain`).
    public func explanation(of profile: Profile, dataflow dataflowId: String) -> String? {
        guard let decision = profile.lastDecisions[dataflowId],
            let dataflow = configuration.dataflows.first(where: { $0.id == dataflowId })
        else { return nil }
        return decision.reason(memberOf: dataflow.audiences.map(\.id).filter(profile.isMember(of:)))
    }

    /// docs/payload.md#partition-key: the first id of `namespace`, else the profile id, else the first identity.
    static func partitionKey(of profile: Profile, namespace: String?) -> String {
        if let namespace, let id = profile.identities.first(in: namespace) { return id }
        if let profileId = profile.profileId { return profileId }
        if let first = profile.identities.first { return first.id }
        return "profile-\(profile.key)"
    }
}
