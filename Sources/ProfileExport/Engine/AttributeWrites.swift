// Hubcast — deep-merging attribute writes and removals into a profile (spec §9, §11).

import OrderedCollections

extension ProfileEngine {
    /// Applies an update's attribute writes (every leaf is a write, `null` removes), then its
    /// removals, and returns the mapped attribute paths (of any dataflow) that were touched:
    /// a write at or inside a mapped path counts even when the value is the same (spec §3.3); a
    /// write or removal that replaces a mapped path's parent counts when the profile had it; a
    /// removal of an attribute the profile lacks does nothing. Also returns the rules that read under
    /// the top-level names written or removed, so only those need evaluating.
    func applyAttributes(_ update: ProfileUpdate, to profile: inout Profile) -> ChangedAttributes {
        guard !update.attributes.isEmpty || !update.removeAttributes.isEmpty else { return ChangedAttributes() }
        var changed = ChangedAttributes()
        var path = scratchPath
        var anchors = scratchAnchors
        scratchPath = []
        scratchAnchors = []
        defer {
            path.removeAll(keepingCapacity: true)
            anchors.removeAll(keepingCapacity: true)
            scratchPath = path
            scratchAnchors = anchors
        }
        Self.merge(update.attributes, into: &profile.document, path: &path, anchors: &anchors, plan: plan, changed: &changed)
        for removal in update.removeAttributes {
            removal.encoded.withUnsafeBufferPointer { path in
                var none: [Anchor] = []
                Self.remove(path, from: &profile.document, anchors: &none, plan: plan, changed: &changed)
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

        /// Records a write or removal at `path`: the rules reading under its top-level name, and
        /// the mapped paths it lies within (or is).
        mutating func noteWritten(_ path: UnsafeBufferPointer<UInt8>, plan: ExportPlan) {
            let top = UnsafeBufferPointer(rebasing: path[..<EncodedPath.step(path, at: 0).next])
            for entry in plan.rulesByTopStep {
                let same = entry.step.withUnsafeBufferPointer { EncodedPath.equal($0, top) }
                if same {
                    for index in entry.rules { rules.insert(index) }
                    break
                }
            }
            for index in plan.mappedPaths.indices where !mapped.contains(index) {
                if plan.mappedPaths[index].encoded.withUnsafeBufferPointer({ EncodedPath.starts(path, with: $0) }) {
                    mapped.insert(index)
                }
            }
        }

        /// Records that `leaf` went with the object at a path of `depth` bytes that a write or removal
        /// replaced: the mapped paths inside that object that the leaf was at or in changed.
        mutating func noteRemoved(_ leaf: UnsafeBufferPointer<UInt8>, insideDepth depth: Int, plan: ExportPlan) {
            for index in plan.mappedPaths.indices where !mapped.contains(index) {
                let inside = plan.mappedPaths[index].encoded.withUnsafeBufferPointer { mapped in
                    mapped.count > depth && EncodedPath.starts(leaf, with: mapped)
                }
                if inside { mapped.insert(index) }
            }
        }
    }

    /// Where an object being merged into was: an object whose members are all removed and then
    /// written again within one merge keeps its place (it is emptied, not removed). Found only when
    /// the merge first removes something (before that, writes never move an object's first leaf).
    struct Anchor {
        /// How many steps the object's path has.
        var steps: Int
        /// How many bytes of the path being merged are the object's path.
        var bytes: Int
        /// Whether ``index`` was looked up.
        var known = false
        /// The index of its first leaf (or of a plain value where it is), if it had any.
        var index: Int?
    }

    /// Deep-merges `writes` into the document: each leaf written is set (a `null` leaf removes);
    /// an empty object writes nothing.
    private static func merge(_ writes: JSONObject, into document: inout AttributeDocument, path: inout [UInt8],
                              anchors: inout [Anchor], plan: ExportPlan, changed: inout ChangedAttributes) {
        for (name, value) in writes {
            let mark = path.count
            EncodedPath.append(name, to: &path)
            defer { path.removeSubrange(mark...) }
            switch value {
            case .null:
                path.withUnsafeBufferPointer { remove($0, from: &document, anchors: &anchors, plan: plan, changed: &changed) }
            case .object(let members) where members.isEmpty:
                continue
            case .object(let members):
                anchors.append(Anchor(steps: (anchors.last?.steps ?? 0) + 1, bytes: path.count))
                merge(members, into: &document, path: &path, anchors: &anchors, plan: plan, changed: &changed)
                anchors.removeLast()
            default:
                path.withUnsafeBufferPointer { write(value, at: $0, into: &document, anchors: anchors, plan: plan, changed: &changed) }
            }
        }
    }

    /// Sets the leaf at `path`: in place of the same leaf, of an object there, or of a plain value
    /// where the path needs an object; otherwise as the last member of the deepest object it shares
    /// (or, when an object it is in was emptied during this merge, where that object was).
    private static func write(_ value: JSONValue, at path: UnsafeBufferPointer<UInt8>, into document: inout AttributeDocument,
                              anchors: [Anchor], plan: ExportPlan, changed: inout ChangedAttributes) {
        var location = document.locate(path)
        if let anchor = anchors.last(where: { $0.steps > location.shared && $0.index != nil }), let index = anchor.index {
            location.insertion = index
        }
        if let exact = location.exact {
            document.setValue(value, at: exact)
        } else if let inside = location.inside {
            for index in inside {
                document.withPath(index) { changed.noteRemoved($0, insideDepth: path.count, plan: plan) }
            }
            document.replace(inside, with: path, value)
        } else if let above = location.above {
            document.replace(above..<(above + 1), with: path, value)
        } else {
            document.insert(path, value, at: location.insertion)
        }
        changed.noteWritten(path, plan: plan)
    }

    /// Removes the value at `path` (a leaf, or every leaf of an object); nothing when there is none.
    private static func remove(_ path: UnsafeBufferPointer<UInt8>, from document: inout AttributeDocument,
                               anchors: inout [Anchor], plan: ExportPlan, changed: inout ChangedAttributes) {
        let location = document.locate(path)
        if location.exact != nil || location.inside != nil {
            for position in anchors.indices where !anchors[position].known {
                let object = document.locate(UnsafeBufferPointer(rebasing: path[..<anchors[position].bytes]))
                anchors[position].index = object.exact ?? object.inside?.lowerBound ?? object.above
                anchors[position].known = true
            }
        }
        if let exact = location.exact {
            document.remove(exact..<(exact + 1))
        } else if let inside = location.inside {
            for index in inside {
                document.withPath(index) { changed.noteRemoved($0, insideDepth: path.count, plan: plan) }
            }
            document.remove(inside)
        } else {
            return
        }
        changed.noteWritten(path, plan: plan)
    }
}
