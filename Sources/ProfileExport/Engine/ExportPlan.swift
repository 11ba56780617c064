// Hubcast — the configuration compiled for fast decisions: lookups by id, attribute tries.

/// What reads under one top-level attribute name (see ``ExportPlan/readersByTopName``).
struct TopNameReaders: Sendable {
    var rules: [Int] = []
    var mapped: [Int] = []
}

/// A dataflow with everything the engine needs at hand (a class: handed around without copying).
final class DataflowPlan: Sendable {
    let dataflow: Dataflow
    let destination: Destination
    /// Mapped attribute paths as a tree, in the order first mapped.
    let attributes: AttributeTree
    /// The mapped audiences in mapping order, as their payload entries.
    let mappedList: [AudienceEntry]
    /// Configured audiences this dataflow does not map (candidates: docs/payload.md#unmapped-audiences), as their
    /// payload entries, by audience slot (see ``ExportPlan/audienceSlots``).
    let unmapped: [AudienceEntry?]
    /// For each mapped attribute, its index in the plan's `mappedPaths`.
    let attributeIndexes: [Int]
    /// The dataflow's position in the configuration.
    let index: Int
    /// Trigger lists that decisions and exports share, so a common decision allocates none (and the
    /// profile's next update frees none, from memory it has not touched since): by mapped audience
    /// id (an id not here is not mapped), one membership trigger per status (in
    /// `MembershipStatus.allCases` order)…
    let membershipTriggers: NameTable<[[ExportTrigger]]>
    /// …and one attribute trigger per set of the dataflow's mapped attributes (bit `i`: its `i`th
    /// attribute), when it maps at most ``maxSharedAttributes`` attributes (2^8 lists).
    let attributeTriggers: [[ExportTrigger]]
    static let maxSharedAttributes = 8

    init(
        dataflow: Dataflow, destination: Destination, attributes: AttributeTree,
        mappedList: [AudienceEntry], unmapped: [AudienceEntry?], attributeIndexes: [Int], index: Int
    ) {
        self.dataflow = dataflow
        self.destination = destination
        self.attributes = attributes
        self.mappedList = mappedList
        self.unmapped = unmapped
        self.attributeIndexes = attributeIndexes
        self.index = index
        membershipTriggers = NameTable(
            dataflow.audiences.map { audience in
                (audience.id, MembershipStatus.allCases.map { [ExportTrigger.membership(audienceId: audience.id, status: $0)] })
            })
        let paths = dataflow.attributes
        attributeTriggers =
            paths.count > Self.maxSharedAttributes
            ? []
            : (0..<(1 << paths.count)).map { set in
                [.attribute(paths: paths.indices.filter { set & (1 << $0) != 0 }.map { paths[$0] })]
            }
    }

    /// The attribute trigger for the mapped attributes whose indexes (in the plan's `mappedPaths`)
    /// `changed` holds, or `nil` when it holds none of this dataflow's.
    func attributeTrigger(_ changed: SmallBitSet) -> [ExportTrigger]? {
        if attributeTriggers.isEmpty {
            var mine: [AttributePath] = []
            for (position, index) in attributeIndexes.enumerated() where changed.contains(index) {
                mine.append(dataflow.attributes[position])
            }
            return mine.isEmpty ? nil : [.attribute(paths: mine)]
        }
        var set = 0
        for (position, index) in attributeIndexes.enumerated() where changed.contains(index) { set |= 1 << position }
        return set == 0 ? nil : attributeTriggers[set]
    }
}

/// The mapped attribute paths of a dataflow as a tree, so a payload is written in one walk.
struct AttributeTree: Sendable {
    struct Node: Sendable {
        var name: String
        /// `"name":`, as JSON.
        var key: [UInt8]
        /// True when this node's path is itself mapped (then its whole value is written).
        var isMapped = false
        var children: [Node] = []
    }

    var roots: [Node] = []

    init(_ paths: [AttributePath]) {
        for path in paths { Self.insert(path.components[...], into: &roots) }
    }

    private static func insert(_ components: ArraySlice<String>, into nodes: inout [Node]) {
        guard let head = components.first else { return }
        let index: Int
        if let existing = nodes.firstIndex(where: { $0.name == head }) {
            index = existing
        } else {
            var key = JSONWriter(capacity: head.utf8.count + 3)
            key.key(head)
            nodes.append(Node(name: head, key: key.bytes))
            index = nodes.count - 1
        }
        if components.count == 1 {
            nodes[index].isMapped = true
        } else {
            insert(components.dropFirst(), into: &nodes[index].children)
        }
    }
}

/// An audience's `segmentMembership.ups` entry for one dataflow, as JSON put together beforehand:
/// `head` is `"id":{"lastQualificationTime":"`, the time follows, then the tail for the status
/// (`","status":"…"`, the timestamps and name the destination asks for, and `}`).
struct AudienceEntry: Sendable {
    let id: String
    /// The audience's slot (see ``ExportPlan/audienceSlots``).
    let slot: Int
    /// The audience's merge policy (see `AudienceInfo`); `nil` for an audience the configuration does not define.
    let mergePolicy: Int?
    let head: [UInt8]
    /// Indexed like `MembershipStatus.allCases`.
    let tails: [[UInt8]]

    init(id: String, slot: Int, info: AudienceInfo?, mapping: MappedAudience?, names: Bool, times: Bool) {
        self.id = id
        self.slot = slot
        mergePolicy = info?.mergePolicy
        var head = JSONWriter(capacity: id.utf8.count + 32)
        head.beginObject()
        head.key(id)
        head.beginObject()
        head.key("lastQualificationTime")
        self.head = Array(head.bytes.dropFirst()) + [0x22]
        tails = MembershipStatus.allCases.map { status in
            var tail = JSONWriter(capacity: 128)
            tail.beginObject()
            tail.key("status")
            tail.value(status.rawValue)
            if times {
                if let createdAt = info?.createdAt { tail.key("createdAt"); tail.value(createdAt) }
                if let updatedAt = info?.updatedAt { tail.key("updatedAt"); tail.value(updatedAt) }
                if let created = mapping?.mappingCreatedAt { tail.key("mappingCreatedAt"); tail.value(created.milliseconds) }
                if let updated = mapping?.mappingUpdatedAt { tail.key("mappingUpdatedAt"); tail.value(updated.milliseconds) }
            }
            if names, let name = info?.name {
                tail.key("name")
                tail.value(name)
            }
            tail.endObject()
            return [0x22, 0x2C] + tail.bytes.dropFirst()
        }
    }

    func tail(_ status: MembershipStatus) -> [UInt8] { tails[status.ordinal] }
}

/// What a payload needs of an audience, looked up once.
final class AudienceInfo: Sendable {
    /// The audience's merge policy, as its position among the configuration's merge policies.
    let mergePolicy: Int
    let name: String?
    let createdAt: Int64?
    let updatedAt: Int64?

    init(_ audience: AudienceDefinition, mergePolicy: Int) {
        self.mergePolicy = mergePolicy
        name = audience.name
        createdAt = audience.createdAt?.milliseconds
        updatedAt = audience.updatedAt?.milliseconds
    }
}

/// The whole configuration, compiled.
struct ExportPlan: Sendable {
    let configuration: ExportConfiguration
    let dataflows: [DataflowPlan]
    /// Audience id → what payloads need of it.
    let audienceInfo: [String: AudienceInfo]
    /// Rule audiences, in configuration order.
    let rules: [(id: String, rule: AudienceRule)]
    /// Audiences Hubcast evaluates itself (rule or upload): upstream statuses for them are ignored.
    let evaluatedHere: Set<String>
    /// Every attribute path mapped by any dataflow, each once.
    let mappedPaths: [AttributePath]
    /// Audience id → a small number for every audience the configuration defines or a dataflow
    /// maps, so that a profile's memberships are looked up by id once per update (see
    /// `MembershipIndex`) and then by number.
    let audienceSlots: NameTable<Int>
    /// Audience slot → the positions (in ``dataflows``) of the dataflows that map it.
    let dataflowsMapping: [[Int]]
    /// Rule audience id → its index in ``rules``.
    let ruleIndex: NameTable<Int>
    /// Top-level attribute name → what reads under it: the indexes of the rules (in ``rules``) and
    /// of the mapped paths (in ``mappedPaths``). A name no rule or dataflow reads is not there.
    let readersByTopName: NameTable<TopNameReaders>
    /// A fingerprint of the rule audiences (ids and texts); never 0.
    let ruleVersion: Int64

    init(_ configuration: ExportConfiguration) {
        self.configuration = configuration
        var rules: [(id: String, rule: AudienceRule)] = []
        var evaluated = Set<String>()
        for audience in configuration.audiences {
            switch audience.origin {
            case .rule(let rule):
                rules.append((audience.id, rule))
                evaluated.insert(audience.id)
            case .upload: evaluated.insert(audience.id)
            case .upstream: break
            }
        }
        var policies: [String] = []
        for audience in configuration.audiences where !policies.contains(audience.mergePolicy) { policies.append(audience.mergePolicy) }
        audienceInfo = Dictionary(
            configuration.audiences.map { ($0.id, AudienceInfo($0, mergePolicy: policies.firstIndex(of: $0.mergePolicy)!)) },
            uniquingKeysWith: { first, _ in first })
        self.rules = rules
        self.evaluatedHere = evaluated
        var byTopName: [String: [Int]] = [:]
        var fingerprint = Fingerprint()
        for (index, (id, rule)) in rules.enumerated() {
            for name in Set(rule.paths.map { $0.components[0] }) { byTopName[name, default: []].append(index) }
            fingerprint.add((id + "\u{1}" + rule.description + "\u{2}").utf8)
        }
        ruleIndex = NameTable(rules.enumerated().map { ($1.id, $0) })
        ruleVersion = Int64(bitPattern: fingerprint.value | 1)
        var paths: [AttributePath] = []
        let infos = audienceInfo
        for dataflow in configuration.dataflows {
            for path in dataflow.attributes where !paths.contains(path) { paths.append(path) }
        }
        let allPaths = paths
        var readers = byTopName.mapValues { TopNameReaders(rules: $0, mapped: []) }
        for (index, path) in paths.enumerated() { readers[path.components[0], default: TopNameReaders()].mapped.append(index) }
        readersByTopName = NameTable(readers.map { ($0.key, $0.value) })
        var slots: [String: Int] = [:]
        for id in configuration.audiences.map(\.id) + configuration.dataflows.flatMap({ $0.audiences.map(\.id) }) where slots[id] == nil {
            slots[id] = slots.count
        }
        let slotCount = slots.count, audienceSlots = slots
        dataflows = configuration.dataflows.enumerated().compactMap { position, dataflow in
            guard let destination = configuration.destination(dataflow.destination) else { return nil }
            let mapped = Set(dataflow.audiences.map(\.id))
            let names = destination.includeSegmentNames, times = destination.includeSegmentTimestamps
            var unmapped = [AudienceEntry?](repeating: nil, count: slotCount)
            for (id, info) in infos where !mapped.contains(id) {
                let slot = audienceSlots[id]!
                unmapped[slot] = AudienceEntry(id: id, slot: slot, info: info, mapping: nil, names: names, times: times)
            }
            return DataflowPlan(
                dataflow: dataflow, destination: destination,
                attributes: AttributeTree(dataflow.attributes),
                mappedList: dataflow.audiences.map {
                    AudienceEntry(id: $0.id, slot: audienceSlots[$0.id]!, info: infos[$0.id], mapping: $0, names: names, times: times)
                },
                unmapped: unmapped,
                attributeIndexes: dataflow.attributes.map { allPaths.firstIndex(of: $0)! }, index: position)
        }
        mappedPaths = paths
        var mapping = [[Int]](repeating: [], count: slotCount)
        for (position, dataflow) in configuration.dataflows.enumerated() {
            for audience in dataflow.audiences { mapping[audienceSlots[audience.id]!].append(position) }
        }
        self.audienceSlots = NameTable(audienceSlots.map { ($0.key, $0.value) })
        dataflowsMapping = mapping
    }
}
