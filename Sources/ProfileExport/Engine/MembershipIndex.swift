// Hubcast — where a profile has each audience of the plan, for deciding and writing payloads.

/// Where a profile has each audience of the plan: built in one pass over its memberships (one
/// lookup by id each), then read by number while deciding and writing payloads. Kept by the engine
/// and cleared after each profile, so it allocates nothing per update.
struct MembershipIndex {
    /// Audience slot → position in the profile's memberships, or -1.
    private var positions: [Int]
    /// Membership position → audience slot, or -1 for an audience the plan does not know.
    private var slots: [Int] = []

    init(slots count: Int) {
        positions = [Int](repeating: -1, count: count)
    }

    mutating func index(_ memberships: FlatDictionary<String, Membership>, plan: ExportPlan) {
        slots.removeAll(keepingCapacity: true)
        for audienceId in memberships.keys {
            let slot = plan.audienceSlots[audienceId] ?? -1
            if slot >= 0 { positions[slot] = slots.count }
            slots.append(slot)
        }
    }

    mutating func clear() {
        for slot in slots where slot >= 0 { positions[slot] = -1 }
        slots.removeAll(keepingCapacity: true)
    }

    func position(of slot: Int) -> Int { positions[slot] }
    func slot(at position: Int) -> Int { slots[position] }
}
