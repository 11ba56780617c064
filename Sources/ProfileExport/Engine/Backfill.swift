// Hubcast — historical backfill: profiles that already qualified for newly mapped audiences (docs/exports.md#backfill).

public import OrderedCollections

extension ProfileEngine {
    /// Per dataflow, the mapped audiences that were not mapped when this store last recorded the
    /// dataflow's mappings (``recordMappings()``). A dataflow the store has never seen has all of
    /// its audiences new.
    public func newlyMappedAudiences() throws(ProfileExportError) -> OrderedDictionary<String, [String]> {
        var result: OrderedDictionary<String, [String]> = [:]
        for dataflow in configuration.dataflows {
            let known = Set((try store.value(named: "dataflow.\(dataflow.id).audiences") ?? "").split(separator: "\n").map(String.init))
            let new = dataflow.audiences.map(\.id).filter { !known.contains($0) }
            if !new.isEmpty { result[dataflow.id] = new }
        }
        return result
    }

    /// Remembers every dataflow's mapped audiences, so the next ``newlyMappedAudiences()`` is empty.
    public func recordMappings() throws(ProfileExportError) {
        for dataflow in configuration.dataflows {
            try store.setValue(dataflow.audiences.map(\.id).joined(separator: "\n"), named: "dataflow.\(dataflow.id).audiences")
        }
    }

    /// The keys of the profiles that are members of any of `audiences` now, in key order.
    public func backfillCandidates(audiences: [String]) throws(ProfileExportError) -> [Int64] {
        var keys: [Int64] = []
        try store.forEachProfile { profile in
            if audiences.contains(where: profile.isMember(of:)) { keys.append(profile.key) }
        }
        return keys
    }

    /// The export of one profile for `dataflowId` because it already qualified for `audiences`
    /// (trigger `backfill`); `nil` when it no longer qualifies. Records the decision.
    public func backfillExport(
        profileKey: Int64, dataflowId: String, audiences: [String],
        at time: Timestamp = .now()
    ) throws(ProfileExportError) -> ExportItem? {
        guard let stored = try store.profile(key: profileKey) else { return nil }
        let qualified = audiences.filter(stored.isMember(of:))
        guard !qualified.isEmpty else { return nil }
        var profile = stored
        let items = decide(
            &profile, time: time, changes: [], added: [], removed: [], changedAttributes: ChangedAttributes(),
            backfill: [dataflowId: qualified], only: dataflowId)
        try store.save(profile, previousIdentities: stored.identities)
        return items.first
    }

    /// Every backfill export due now, then the mappings recorded: the simple, all-at-once form
    /// (`hubcast run --dry-run` uses it; the connector streams it at a rate).
    public func backfill(at time: Timestamp = .now()) throws(ProfileExportError) -> [ExportItem] {
        try store.batch { () throws(ProfileExportError) in
            var items: [ExportItem] = []
            for (dataflowId, audiences) in try newlyMappedAudiences() {
                for key in try backfillCandidates(audiences: audiences) {
                    if let item = try backfillExport(profileKey: key, dataflowId: dataflowId, audiences: audiences, at: time) {
                        items.append(item)
                    }
                }
            }
            try recordMappings()
            return items
        }
    }
}
