// Hubcast — deep-merging attribute writes and removals into a profile (docs/input.md#attribute-writes).

extension ProfileEngine {
    /// Applies an update's attribute writes (every leaf is a write, `null` removes), then its
    /// removals, and returns the mapped attribute paths (of any dataflow) that were touched:
    /// a write at or inside a mapped path counts even when the value is the same (docs/exports.md#attribute-changes); a
    /// write or removal that replaces a mapped path's parent counts when the profile had it; a
    /// removal of an attribute the profile lacks does nothing. Also returns the rules that read under
    /// the top-level names written or removed, so only those need evaluating.
    func applyAttributes(_ update: ProfileUpdate, to profile: inout Profile) -> ChangedAttributes {
        guard !update.attributes.isEmpty || !update.removeAttributes.isEmpty else { return ChangedAttributes() }
        var changed = ChangedAttributes()
        var prefix: [String] = []
        prefix.reserveCapacity(8)
        Self.merge(update.attributes, into: &profile.attributes, prefix: &prefix, plan: plan, changed: &changed)
        for path in update.removeAttributes {
            if let old = Self.remove(path.components[...], from: &profile.attributes) {
                changed.note(path.components, replaced: old, plan: plan)
            }
        }
        return changed
    }

    /// What an update's attribute writes touched.
    struct ChangedAttributes {
        /// Indexes (in `plan.mappedPaths`) of the mapped paths that changed.
        var mapped = SmallBitSet()
        /// Indexes (in `plan.rules`) of the rules that read under a top-level name written or removed.
        var rules = SmallBitSet()

        /// Records a write or removal at `path` (which replaced `replaced` there): the rules reading
        /// under its top-level name, and the mapped paths it changes — those at or above it, and those
        /// inside an object it replaced.
        mutating func note(_ path: [String], replaced: JSONValue?, plan: ExportPlan) {
            guard let readers = plan.readersByTopName[path[0]] else { return }
            for index in readers.rules { rules.insert(index) }
            for index in readers.mapped where !mapped.contains(index) {
                let components = plan.mappedPaths[index].components
                let touches: Bool
                if path.count >= components.count {
                    touches = path.starts(with: components)
                } else if components.starts(with: path), case .object(let old)? = replaced {
                    touches = JSONValue.object(old).value(at: AttributePath(components: Array(components[path.count...]))) != nil
                } else {
                    touches = false
                }
                if touches { mapped.insert(index) }
            }
        }
    }

    /// Deep-merges `writes` into `object`, recording each leaf written (a `null` leaf removes and is
    /// recorded only when something was there). The update's values are borrowed: only the leaves
    /// stored in the profile are copied.
    private static func merge(
        _ writes: borrowing JSONObject, into object: inout JSONObject, prefix: inout [String],
        plan: ExportPlan, changed: inout ChangedAttributes
    ) {
        for position in 0..<writes.count {
            let name = writes.members[position].key
            prefix.append(name)
            defer { prefix.removeLast() }
            write(writes.members[position].value, named: name, into: &object, prefix: &prefix, plan: plan, changed: &changed)
        }
    }

    /// Writes one member of an update's object into `object`.
    private static func write(
        _ value: borrowing JSONValue, named name: String, into object: inout JSONObject,
        prefix: inout [String], plan: ExportPlan, changed: inout ChangedAttributes
    ) {
        switch value {
        case .null:
            if let old = object.removeValue(forKey: name) { changed.note(prefix, replaced: old, plan: plan) }
        case .object(let members):
            guard !members.isEmpty else { return }  // deep-merging an empty object changes nothing
            if let index = object.index(forKey: name), case .object = object.members[index].value {
                // The child is moved out of the document (swapped with `null`: no reference
                // count touched), so it is the only reference and changes in place.
                var taken = JSONValue.null
                swap(&taken, &object.members[index].value)
                guard case .object(var child) = consume taken else { preconditionFailure("checked above") }
                let hadMembers = !child.isEmpty
                merge(members, into: &child, prefix: &prefix, plan: plan, changed: &changed)
                if child.isEmpty, hadMembers {
                    object.remove(at: index)  // its last member was removed
                } else {
                    object.members[index].value = .object(child)
                }
            } else {
                // Nothing, or a plain value, is there: the writes make a new object, which
                // replaces the plain value only when something is written into it.
                var child = JSONObject()
                merge(members, into: &child, prefix: &prefix, plan: plan, changed: &changed)
                if !child.isEmpty { object[name] = .object(child) }
            }
        default:
            changed.note(prefix, replaced: object.updateValue(copy value, forKey: name), plan: plan)
        }
    }

    /// Removes the value at `path` and returns it (`nil` when there was none). Empty parents go too.
    private static func remove(_ path: ArraySlice<String>, from object: inout JSONObject) -> JSONValue? {
        guard let head = path.first, let index = object.index(forKey: head) else { return nil }
        if path.count == 1 { return object.remove(at: index).value }
        guard case .object(var child) = object.values[index] else { return nil }
        object.values[index] = .null
        let removed = remove(path.dropFirst(), from: &child)
        if child.isEmpty {
            object.remove(at: index)
        } else {
            object.values[index] = .object(child)
        }
        return removed
    }
}
