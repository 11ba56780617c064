// Hubcast — the event body (docs/payload.md).

/// Builds the JSON event for one profile and one dataflow, exactly as docs/payload.md says:
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

    /// `changes`: the membership changes of this update; those that flipped (joined or left) are
    /// written even when the profile is no longer a member (docs/payload.md#segment-membership).
    /// `memberships`: where the profile has each audience slot.
    func payload(for profile: Profile, dataflow: DataflowPlan, changes: [MembershipChange], memberships index: MembershipIndex) -> [UInt8] {
        var writer = JSONWriter(capacity: 480)  // with the array header, 512 bytes: a malloc size class of its own
        writer.beginObject()
        writeAttributes(dataflow.attributes.roots, in: profile.attributes, to: &writer)

        writer.key("segmentMembership")
        writer.beginObject()
        writer.key("ups")
        writer.beginObject()
        // The merge policies of the mapped audiences written (few: usually one).
        var policies = SmallBitSet()
        let memberships = profile.memberships.values
        for entry in dataflow.mappedList {
            let position = index.position(of: entry.slot)
            guard position >= 0 else { continue }
            let membership = memberships[position]
            guard membership.status.isMember || changes.contains(where: { $0.isTransition && $0.audienceId == entry.id }) else { continue }
            if let policy = entry.mergePolicy { policies.insert(policy) }
            writer.member(entry.head, membership.lastQualificationTime, entry.tail(membership.status))
        }
        if !policies.isEmpty {
            for position in memberships.indices where memberships[position].status.isMember {
                let membership = memberships[position], slot = index.slot(at: position)
                guard slot >= 0, let entry = dataflow.unmapped[slot], let policy = entry.mergePolicy,
                    policies.contains(policy)
                else { continue }
                writer.member(entry.head, membership.lastQualificationTime, entry.tail(membership.status))
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

    /// Writes the mapped attributes the profile has; a branch with none of them is left out.
    private func writeAttributes(_ nodes: [AttributeTree.Node], in object: JSONObject, to writer: inout JSONWriter) {
        for node in nodes {
            guard let index = object.index(forKey: node.name) else { continue }
            if node.isMapped {
                let value = object.values[index]
                if value == .null { continue }
                writer.encodedKey(node.key)
                writer.value(value)
            } else if case .object(let members) = object.values[index] {
                // Written, then taken back when none of the branch's mapped attributes is there.
                let mark = writer.mark
                writer.encodedKey(node.key)
                writer.beginObject()
                let before = writer.mark.count
                writeAttributes(node.children, in: members, to: &writer)
                if writer.mark.count == before {
                    writer.rewind(to: mark)
                } else {
                    writer.endObject()
                }
            }
        }
    }
}
