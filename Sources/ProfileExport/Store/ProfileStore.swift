// Hubcast — where profiles live between updates.

/// Profiles, their identity index, and small named values (checkpoints, applied uploads, mapped
/// audiences), behind one interface with an in-memory and a durable (SQLite) implementation.
///
/// Not thread-safe: one engine owns a store and calls it from one task at a time. Writes made
/// inside ``batch(_:)`` become durable together when the batch returns.
public protocol ProfileStore: AnyObject {
    /// Runs `body` as one unit of work: a durable store commits everything it wrote at the end,
    /// and rolls it back when `body` throws.
    func batch<T>(_ body: () throws(ProfileExportError) -> T) throws(ProfileExportError) -> T

    /// The profile with store key `key`.
    func profile(key: Int64) throws(ProfileExportError) -> Profile?
    /// The profile with store key `key`, to be changed and saved back with ``save(_:previousIdentities:)``
    /// in the same batch. The memory store hands over its own copy, so changing it copies nothing.
    func checkout(key: Int64) throws(ProfileExportError) -> Profile?
    /// ``checkout(key:)`` for a caller that sets a decision for every configured dataflow before it
    /// saves the profile (the engine applying an update): the store may leave
    /// ``Profile/lastDecisions`` empty rather than read them (the SQLite store does), so decisions
    /// the caller does not set again — those of dataflows no longer configured — are dropped.
    func checkoutReplacingDecisions(key: Int64) throws(ProfileExportError) -> Profile?
    /// Hands back a profile checked out and left unchanged: nothing is written.
    func checkin(_ profile: Profile) throws(ProfileExportError)
    /// The key of the profile with profile id `profileId`.
    func key(profileId: String) throws(ProfileExportError) -> Int64?
    /// The key of the profile that has `identity`.
    func key(identity: Identity) throws(ProfileExportError) -> Int64?
    /// A key no profile has yet.
    func newKey() throws(ProfileExportError) -> Int64
    /// Stores `profile` (new or changed) and indexes its id and identities; `previousIdentities` are
    /// those of the stored version it replaces (`nil` for a new profile), so the index can drop
    /// identities the profile no longer has.
    func save(_ profile: consuming Profile, previousIdentities: IdentityMap?) throws(ProfileExportError)
    /// Stores a checked-out profile whose identities are those it was checked out with: what
    /// ``save(_:previousIdentities:)`` does with them, without reading them (the memory store's
    /// identities of a profile stay where they are, untouched, for an update that names none).
    func saveKeepingIdentities(_ profile: consuming Profile) throws(ProfileExportError)
    /// A hint that `updates` are applied next: a store may read ahead what applying them reads
    /// (the memory store does, all together, so that millions of profiles cost a few waits for
    /// memory per group of updates rather than several per update). Changes nothing.
    func prefetch(_ updates: ArraySlice<ProfileUpdate>)
    /// Calls `body` with every profile, in key order.
    func forEachProfile(_ body: (Profile) throws(ProfileExportError) -> Void) throws(ProfileExportError)
    /// How many profiles there are.
    func profileCount() throws(ProfileExportError) -> Int

    /// A named value; `nil` when unset.
    func value(named name: String) throws(ProfileExportError) -> String?
    /// Sets (or with `nil`, removes) a named value.
    func setValue(_ value: String?, named name: String) throws(ProfileExportError)
}

extension ProfileStore {
    public func prefetch(_ updates: ArraySlice<ProfileUpdate>) {}
    public func checkoutReplacingDecisions(key: Int64) throws(ProfileExportError) -> Profile? { try checkout(key: key) }
    public func checkin(_ profile: Profile) throws(ProfileExportError) { try saveKeepingIdentities(profile) }
    public func saveKeepingIdentities(_ profile: consuming Profile) throws(ProfileExportError) {
        let identities = profile.identities
        try save(profile, previousIdentities: identities)
    }
}

/// A store that keeps everything in memory: fast, and gone when the process ends.
///
/// Millions of profiles make a heap of gigabytes read at random: start the process with
/// `GLIBC_TUNABLES=glibc.malloc.hugetlb=1:glibc.malloc.top_pad=67108864` (what `hubcast run` does)
/// so glibc keeps it in transparent huge pages, which spares most of the TLB misses that reading
/// it at random costs (BENCHMARKS.md).
public final class MemoryProfileStore: ProfileStore {
    /// A profile's place: the profile id it was last saved with beside the profile, so that a
    /// lookup by id checks it where the profile is read next. A checked-out profile's slot has no profile.
    private struct Slot {
        var profileId: String?
        var profile: Profile?
    }

    /// Slots by key (keys are handed out from 1 upwards).
    private var slots: [Slot] = []
    private var byId = IdIndex()
    private var byIdentity: [Identity: Int64] = [:]
    private var values: [String: String] = [:]
    private var count = 0
    /// Scratch for `prefetch`, and where it leaves what it read (so the reads are not optimized away).
    private var prefetchHashes: [UInt64] = []
    private var prefetchSlots: [Int] = []
    private var prefetchSink = 0

    public init() {}

    public func batch<T>(_ body: () throws(ProfileExportError) -> T) throws(ProfileExportError) -> T { try body() }

    public func profile(key: Int64) -> Profile? {
        key >= 1 && key <= slots.count ? slots[Int(key - 1)].profile : nil
    }

    public func checkout(key: Int64) -> Profile? {
        guard key >= 1, key <= slots.count else { return nil }
        return slots[Int(key - 1)].profile.take()
    }

    public func key(profileId: String) -> Int64? {
        slots.withUnsafeBufferPointer { slots in
            slot(of: profileId, hash: IdIndex.hash(profileId), in: slots).map { Int64($0 + 1) }
        }
    }

    /// The slot of the profile with id `id` (whose ``IdIndex/hash(_:)`` is `hash`), checked
    /// against the id the slot holds.
    private func slot(of id: String, hash: UInt64, in slots: UnsafeBufferPointer<Slot>) -> Int? {
        byId.slot(hash: hash) { slots[$0].profileId == id }
    }

    public func key(identity: Identity) -> Int64? { byIdentity[identity] }

    /// Reads what applying `updates` reads first, in rounds: every update's index entry, then
    /// every profile's slot, then every line of its attribute, membership and decision arrays,
    /// then the attribute objects the update writes into. The reads of a round do not depend on one another, so the processor
    /// waits for memory about once per round rather than once per read. Nothing is copied: a
    /// copy would count references, and those atomic writes wait for each miss in turn.
    public func prefetch(_ updates: ArraySlice<ProfileUpdate>) {
        var sink = 0
        prefetchHashes.removeAll(keepingCapacity: true)
        for position in updates.indices {
            // An update without a profile id gets a hash it never uses.
            let hash = updates[position].profileId.map(IdIndex.hash) ?? 0
            prefetchHashes.append(hash)
            sink &+= Int(truncatingIfNeeded: byId.firstEntry(hash: hash))
        }
        prefetchSlots.removeAll(keepingCapacity: true)
        slots.withUnsafeBufferPointer { slots in
            for (round, position) in updates.indices.enumerated() {
                let found = updates[position].profileId.flatMap { self.slot(of: $0, hash: prefetchHashes[round], in: slots) }
                prefetchSlots.append(found ?? -1)
            }
            for slot in prefetchSlots where slot >= 0 {
                let attributes: Int = slots[slot].profile?.attributes.readEveryLine() ?? 0
                let memberships: Int = slots[slot].profile?.memberships.readEveryLine() ?? 0
                let decisions: Int = slots[slot].profile?.lastDecisions.readEveryLine() ?? 0
                let identities: Int = slots[slot].profile?.identities.namespaces.count ?? 0
                sink &+= attributes &+ memberships &+ decisions &+ identities
            }
            for (round, position) in updates.indices.enumerated() where prefetchSlots[round] >= 0 {
                for name in updates[position].attributes.keys {
                    sink &+= slots[prefetchSlots[round]].profile?.attributes.memberCount(ofObjectAt: name) ?? 0
                }
            }
        }
        prefetchSink = sink
    }

    public func newKey() -> Int64 {
        slots.append(Slot())
        return Int64(slots.count)
    }

    public func save(_ profile: consuming Profile, previousIdentities: IdentityMap?) {
        if previousIdentities != profile.identities {
            if let previousIdentities {
                for identity in previousIdentities.all where !profile.identities.contains(identity) {
                    byIdentity[identity] = nil
                }
            }
            for (namespace, ids) in profile.identities.namespaces {
                for id in ids { byIdentity[Identity(namespace: namespace, id: id)] = profile.key }
            }
        }
        place(profile, isNew: previousIdentities == nil)
    }

    public func saveKeepingIdentities(_ profile: consuming Profile) {
        place(profile, isNew: false)
    }

    /// Puts `profile` in its slot (moved there: its references are not counted again) and indexes
    /// its profile id.
    private func place(_ profile: consuming Profile, isNew: Bool) {
        let slot = Int(profile.key - 1)
        precondition(slot >= 0 && slot < slots.count, "profile keys come from newKey()")
        if slots[slot].profileId != profile.profileId {
            if let old = slots[slot].profileId { byId.remove(old, slot: slot) }
            if let profileId = profile.profileId { byId.insert(profileId, slot: slot) }
            slots[slot].profileId = profile.profileId
        }
        if slots[slot].profile == nil, isNew { count += 1 }
        slots[slot].profile = consume profile
    }

    public func forEachProfile(_ body: (Profile) throws(ProfileExportError) -> Void) throws(ProfileExportError) {
        for slot in slots { if let profile = slot.profile { try body(profile) } }
    }

    public func profileCount() -> Int { count }
    public func value(named name: String) -> String? { values[name] }
    public func setValue(_ value: String?, named name: String) { values[name] = value }
}
