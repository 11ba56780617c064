// Hubcast — deep-merging attribute writes and removals into a profile (spec §9, §11).

import OrderedCollections

extension ProfileEngine {
    /// Applies an update's attribute writes (every leaf is a write, `null` removes), then its
    /// removals, and returns the mapped attribute paths (of any dataflow) that were touched:
    /// a write at or inside a mapped path counts even when the value is the same (spec §3.3); a
    /// write or removal that replaces a mapped path's parent counts when the profile had it; a
    /// removal of an attribute the profile lacks does nothing. Also returns the top-level names of
    /// everything written or removed, so only the rules reading under them need evaluating.
    func applyAttributes(_ update: ProfileUpdate, to profile: inout Profile) -> (mapped: Set<AttributePath>, topNames: Set<String>) {
        guard !update.attributes.isEmpty || !update.removeAttributes.isEmpty else { return ([], []) }
        let before = JSONValue.object(profile.attributes)
        var touched: [(path: [String], removal: Bool)] = []
        var prefix: [String] = []
        Self.merge(update.attributes, into: &profile.attributes, prefix: &prefix, touched: &touched)
        for path in update.removeAttributes where Self.remove(path.components[...], from: &profile.attributes) {
            touched.append((path.components, true))
        }
        var changed = Set<AttributePath>()
        let topNames = Set(touched.map { $0.path[0] })
        for mapped in plan.mappedPaths where topNames.contains(mapped.components[0]) {
            for (path, _) in touched {
                let written = AttributePath(components: path)
                if written.isWithin(mapped) || (mapped.isWithin(written) && before.value(at: mapped) != nil) {
                    changed.insert(mapped)
                    break
                }
            }
        }
        return (changed, topNames)
    }

    /// Deep-merges `writes` into `object`, recording each leaf written (a `null` leaf removes and is
    /// recorded only when something was there).
    private static func merge(_ writes: JSONObject, into object: inout JSONObject, prefix: inout [String],
                              touched: inout [(path: [String], removal: Bool)]) {
        for (name, value) in writes {
            prefix.append(name)
            defer { prefix.removeLast() }
            switch value {
            case .null:
                if object.removeValue(forKey: name) != nil { touched.append((prefix, true)) }
            case .object(let members) where !members.isEmpty:
                var child: JSONObject
                if let index = object.index(forKey: name), case .object(let existing) = object.values[index] {
                    object.values[index] = .null  // drop the second reference so the child mutates in place
                    child = existing
                } else {
                    child = [:]
                }
                merge(members, into: &child, prefix: &prefix, touched: &touched)
                if child.isEmpty {
                    object.removeValue(forKey: name)
                } else {
                    object[name] = .object(child)
                }
            default:
                object[name] = value
                touched.append((prefix, false))
            }
        }
    }

    /// Removes the value at `path`; returns whether there was one. Empty parents are removed too.
    private static func remove(_ path: ArraySlice<String>, from object: inout JSONObject) -> Bool {
        guard let head = path.first, let index = object.index(forKey: head) else { return false }
        if path.count == 1 {
            object.remove(at: index)
            return true
        }
        guard case .object(var child) = object.values[index] else { return false }
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
