// Hubcast — deep-merging attribute writes and removals into a profile (spec §9, §11).

import OrderedCollections

extension ProfileEngine {
    /// Applies an update's attribute writes (every leaf is a write, `null` removes), then its
    /// removals, and returns the mapped attribute paths (of any dataflow) that were touched:
    /// a write at or inside a mapped path counts even when the value is the same (spec §3.3); a
    /// write or removal that replaces a mapped path's parent counts when the profile had it; a
    /// removal of an attribute the profile lacks does nothing. Also returns the top-level names of
    /// everything written or removed, so only the rules reading under them need evaluating.
    func applyAttributes(_ update: ProfileUpdate, to profile: inout Profile) -> ChangedAttributes {
        guard !update.attributes.isEmpty || !update.removeAttributes.isEmpty else { return ChangedAttributes() }
        var touched: [Touch] = []
        var prefix: [String] = []
        Self.merge(update.attributes, into: &profile.attributes, prefix: &prefix, touched: &touched)
        for path in update.removeAttributes {
            if let old = Self.remove(path.components[...], from: &profile.attributes) {
                touched.append(Touch(path: path.components, replaced: old))
            }
        }
        var result = ChangedAttributes()
        for touch in touched where !result.topNames.contains(touch.path[0]) { result.topNames.append(touch.path[0]) }
        for (index, mapped) in plan.mappedPaths.enumerated() where result.topNames.contains(mapped.components[0]) {
            for touch in touched where touch.touches(mapped.components) {
                if result.mapped.isEmpty { result.mapped = [Bool](repeating: false, count: plan.mappedPaths.count) }
                result.mapped[index] = true
                break
            }
        }
        return result
    }

    /// What an update's attribute writes touched.
    struct ChangedAttributes {
        /// Indexed like `plan.mappedPaths`: whether that mapped path changed. Empty when none did.
        var mapped: [Bool] = []
        /// The top-level names written or removed under, each once.
        var topNames: [String] = []

        func changed(_ index: Int) -> Bool { !mapped.isEmpty && mapped[index] }
    }

    /// A path written or removed, with the object it replaced there (when it replaced one).
    struct Touch {
        var path: [String]
        var replaced: JSONValue?

        /// Whether this write or removal changes the attribute at `mapped`: it is at or inside it, or
        /// it replaced an object that held something at `mapped`.
        func touches(_ mapped: [String]) -> Bool {
            if path.count >= mapped.count { return path.starts(with: mapped) }
            guard mapped.starts(with: path), case .object(let old)? = replaced else { return false }
            return JSONValue.object(old).value(at: AttributePath(components: Array(mapped[path.count...]))) != nil
        }
    }

    /// Deep-merges `writes` into `object`, recording each leaf written (a `null` leaf removes and is
    /// recorded only when something was there).
    private static func merge(_ writes: JSONObject, into object: inout JSONObject, prefix: inout [String],
                              touched: inout [Touch]) {
        for (name, value) in writes {
            prefix.append(name)
            defer { prefix.removeLast() }
            switch value {
            case .null:
                if let old = object.removeValue(forKey: name) { touched.append(Touch(path: prefix, replaced: old)) }
            case .object(let members) where members.isEmpty:
                continue  // deep-merging an empty object changes nothing
            case .object(let members):
                if let index = object.index(forKey: name), case .object(let existing) = object.values[index] {
                    object.values[index] = .null  // drop the second reference so the child mutates in place
                    var child = existing
                    merge(members, into: &child, prefix: &prefix, touched: &touched)
                    if child.isEmpty, !existing.isEmpty {
                        object.remove(at: index)  // its last member was removed
                    } else {
                        object.values[index] = .object(child)
                    }
                } else {
                    // Nothing, or a plain value, is there: the writes make a new object, which
                    // replaces the plain value only when something is written into it.
                    var child = JSONObject()
                    merge(members, into: &child, prefix: &prefix, touched: &touched)
                    if !child.isEmpty { object[name] = .object(child) }
                }
            default:
                let old = object.updateValue(value, forKey: name)
                if case .object? = old {
                    touched.append(Touch(path: prefix, replaced: old))
                } else {
                    touched.append(Touch(path: prefix, replaced: nil))
                }
            }
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
