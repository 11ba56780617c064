// Hubcast — the event body of spec §4.

import OrderedCollections

/// Builds the JSON event for one profile and one dataflow, exactly as spec §4 says:
/// mapped attributes nested at their paths, `segmentMembership.ups`, then `identityMap`.
///
/// Key order is fixed so equal inputs give byte-equal JSON: mapped attributes in the order the
/// dataflow maps them (a value's own members in the order first written); `ups` entries for the
/// mapped audiences in mapping order, then the unmapped ones in the order the profile first got a
/// status in them; each entry as
/// `lastQualificationTime`, `status`, `createdAt`, `updatedAt`, `mappingCreatedAt`,
/// `mappingUpdatedAt`, `name`; identity namespaces and ids in the order added.
struct PayloadBuilder {
    let plan: ExportPlan

    /// `changed`: audiences whose membership flipped in this update (spec §4 (a)).
    func payload(for profile: Profile, dataflow: DataflowPlan, changed: Set<String>) -> [UInt8] {
        var writer = JSONWriter(capacity: 1024)
        writer.beginObject()
        writeAttributes(dataflow.attributes.roots, in: profile.attributes, to: &writer)

        writer.key("segmentMembership")
        writer.beginObject()
        writer.key("ups")
        writer.beginObject()
        var policies: [String] = []
        let names = dataflow.destination.includeSegmentNames
        let times = dataflow.destination.includeSegmentTimestamps
        for (audienceId, info, mapping) in dataflow.mappedList {
            guard let membership = profile.memberships[audienceId],
                  membership.status.isMember || changed.contains(audienceId) else { continue }
            if let policy = info?.mergePolicy, !policies.contains(policy) { policies.append(policy) }
            writeEntry(audienceId, membership, info: info, mapping: mapping, names: names, times: times, to: &writer)
        }
        if !policies.isEmpty {
            for (audienceId, membership) in profile.memberships where membership.status.isMember {
                guard let info = dataflow.unmapped[audienceId], policies.contains(info.mergePolicy) else { continue }
                writeEntry(audienceId, membership, info: info, mapping: nil, names: names, times: times, to: &writer)
            }
        }
        writer.endObject()
        writer.endObject()

        writer.key("identityMap")
        writer.beginObject()
        for (namespace, ids) in profile.identities.namespaces {
            writer.key(namespace)
            writer.beginArray()
            for id in ids {
                writer.beginObject()
                writer.key("id")
                writer.value(id)
                writer.endObject()
            }
            writer.endArray()
        }
        writer.endObject()
        writer.endObject()
        return writer.bytes
    }

    private func writeEntry(_ audienceId: String, _ membership: Membership, info: AudienceInfo?, mapping: MappedAudience?,
                            names: Bool, times: Bool, to writer: inout JSONWriter) {
        writer.key(audienceId)
        writer.beginObject()
        writer.key("lastQualificationTime")
        writer.value(membership.lastQualificationTime)
        writer.key("status")
        writer.value(membership.status.rawValue)
        if times {
            if let createdAt = info?.createdAt { writer.key("createdAt"); writer.value(createdAt) }
            if let updatedAt = info?.updatedAt { writer.key("updatedAt"); writer.value(updatedAt) }
            if let created = mapping?.mappingCreatedAt { writer.key("mappingCreatedAt"); writer.value(created.milliseconds) }
            if let updated = mapping?.mappingUpdatedAt { writer.key("mappingUpdatedAt"); writer.value(updated.milliseconds) }
        }
        if names, let name = info?.name {
            writer.key("name")
            writer.value(name)
        }
        writer.endObject()
    }

    /// Writes the mapped attributes the profile has; a branch with none of them is left out.
    private func writeAttributes(_ nodes: [AttributeTree.Node], in object: JSONObject, to writer: inout JSONWriter) {
        for node in nodes {
            guard let value = object[node.name], value != .null else { continue }
            if node.isMapped {
                writer.key(node.name)
                writer.value(value)
            } else if case .object(let members) = value, Self.hasAny(node.children, in: members) {
                writer.key(node.name)
                writer.beginObject()
                writeAttributes(node.children, in: members, to: &writer)
                writer.endObject()
            }
        }
    }

    private static func hasAny(_ nodes: [AttributeTree.Node], in object: JSONObject) -> Bool {
        for node in nodes {
            guard let value = object[node.name], value != .null else { continue }
            if node.isMapped { return true }
            if case .object(let members) = value, hasAny(node.children, in: members) { return true }
        }
        return false
    }
}
