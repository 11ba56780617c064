// Hubcast — a profile's attribute document, kept flat: its leaves in document order.

import OrderedCollections

/// A profile's attribute document as its leaves — every value that is not an object with members —
/// each with its path (see ``EncodedPath``), in document order: depth first, an object's members in
/// the order first written.
///
/// An object exists only through the leaves inside it, so an object whose last member goes goes
/// with it (spec §11), and the leaves of one object are always next to each other. Reading or
/// changing a profile touches two arrays instead of a tree of dictionaries: the engine finds a path
/// by comparing bytes, reads a value where it is stored (see ``ValueBytes``), and a store writes
/// and reads the leaves as they are.
struct AttributeDocument: Sendable {
    /// Where a leaf's path and its value (not an object with members: an empty object stays a
    /// leaf) are in ``paths``.
    struct Leaf: Sendable {
        var pathStart: Int32
        var pathEnd: Int32
        var valueStart: Int32
        var valueEnd: Int32
    }

    /// The leaves' paths and values, one after another, with the gaps left by leaves removed or
    /// changed (see ``compact()``).
    private(set) var paths: [UInt8] = []
    private(set) var leaves: [Leaf] = []
    /// Bytes of ``paths`` no leaf uses.
    private var unused = 0

    init() {}

    /// The document of a nested object: its leaves in member order.
    init(_ object: JSONObject) {
        var prefix: [UInt8] = []
        flatten(object, prefix: &prefix)
    }

    private mutating func flatten(_ object: JSONObject, prefix: inout [UInt8]) {
        for (name, value) in object {
            let mark = prefix.count
            EncodedPath.append(name, to: &prefix)
            if case .object(let members) = value, !members.isEmpty {
                flatten(members, prefix: &prefix)
            } else {
                prefix.withUnsafeBufferPointer { path in append(path, value) }
            }
            prefix.removeSubrange(mark...)
        }
    }

    var isEmpty: Bool { leaves.isEmpty }

    /// The document as nested objects.
    var object: JSONObject {
        paths.withUnsafeBufferPointer { all in nest(leaves.indices, skipping: 0, all) }
    }

    /// The object made of the leaves in `range`, whose paths all share their first `skip` bytes.
    private func nest(_ range: Range<Int>, skipping skip: Int, _ all: UnsafeBufferPointer<UInt8>) -> JSONObject {
        var object = JSONObject()
        var index = range.lowerBound
        while index < range.upperBound {
            let path = self.path(index, all)
            let (name, next) = EncodedPath.step(path, at: skip)
            let key = String(decoding: UnsafeBufferPointer(rebasing: path[name]), as: UTF8.self)
            if next == path.count {
                object[key] = ValueBytes.decode(value(index, all))
                index += 1
                continue
            }
            let step = UnsafeBufferPointer(rebasing: path[skip..<next])
            var end = index + 1
            while end < range.upperBound {
                let other = self.path(end, all)
                // (Longer than the step: a record read from disk is not trusted to keep leaves apart.)
                guard other.count > next, EncodedPath.starts(UnsafeBufferPointer(rebasing: other[skip...]), with: step) else { break }
                end += 1
            }
            object[key] = .object(nest(index..<end, skipping: next, all))
            index = end
        }
        return object
    }

    @inline(__always)
    func path(_ index: Int, _ all: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8> {
        let leaf = leaves[index]
        return UnsafeBufferPointer(rebasing: all[Int(leaf.pathStart)..<Int(leaf.pathEnd)])
    }

    /// The value bytes of leaf `index` (see ``ValueBytes``).
    @inline(__always)
    func value(_ index: Int, _ all: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8> {
        let leaf = leaves[index]
        return UnsafeBufferPointer(rebasing: all[Int(leaf.valueStart)..<Int(leaf.valueEnd)])
    }

    /// Calls `body` with the value bytes of leaf `index`.
    func withValue<R>(_ index: Int, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        paths.withUnsafeBufferPointer { all in body(value(index, all)) }
    }

    /// Calls `body` with the path of leaf `index`.
    func withPath<R>(_ index: Int, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        paths.withUnsafeBufferPointer { all in body(path(index, all)) }
    }

    // MARK: Finding

    /// Where `path` stands in the document.
    struct Location {
        /// The leaf at `path`.
        var exact: Int?
        /// The leaves inside `path` (an object there).
        var inside: Range<Int>?
        /// A leaf at a path that `path` lies within (a plain value where `path` needs an object).
        var above: Int?
        /// Where a new leaf at `path` goes: after the last leaf of the deepest object it shares.
        var insertion: Int
        /// How many steps that object's path has (0: none shared, the leaf goes last).
        var shared = 0
    }

    func locate(_ path: UnsafeBufferPointer<UInt8>) -> Location {
        paths.withUnsafeBufferPointer { all in
            var location = Location(insertion: leaves.count)
            var deepest = 0
            for index in leaves.indices {
                let other = self.path(index, all)
                if other.count == path.count {
                    if EncodedPath.equal(other, path) {
                        location.exact = index
                        return location
                    }
                } else if other.count > path.count {
                    if EncodedPath.starts(other, with: path) {
                        location.inside = (location.inside?.lowerBound ?? index)..<(index + 1)
                        continue
                    }
                } else if EncodedPath.starts(path, with: other) {
                    location.above = index
                    return location
                }
                if location.inside == nil {
                    let shared = EncodedPath.sharedSteps(other, path)
                    if shared > 0, shared >= deepest {
                        deepest = shared
                        location.insertion = index + 1
                        location.shared = shared
                    }
                }
            }
            return location
        }
    }

    /// The value at `path`: a leaf's (`nil` for a stored `null`), or the object the leaves inside
    /// `path` make; `nil` when there is none.
    func presentValue(at path: UnsafeBufferPointer<UInt8>) -> JSONValue? {
        let location = locate(path)
        if let exact = location.exact {
            return withValue(exact) { ValueBytes.isNull($0) ? nil : ValueBytes.decode($0) }
        }
        guard let inside = location.inside else { return nil }
        return .object(paths.withUnsafeBufferPointer { all in nest(inside, skipping: path.count, all) })
    }

    /// Whether ``presentValue(at:)`` is not `nil`, without building an object.
    func isPresent(at path: UnsafeBufferPointer<UInt8>) -> Bool {
        let location = locate(path)
        if let exact = location.exact { return withValue(exact) { !ValueBytes.isNull($0) } }
        return location.inside != nil
    }

    /// The value at `path` as a rule reads it, borrowed for `body` (`nil` when missing or `null`;
    /// an object made of leaves is only `.object`).
    func withRuleValue<R>(at path: UnsafeBufferPointer<UInt8>, _ body: (RuleValue?) -> R) -> R {
        let location = locate(path)
        if let exact = location.exact { return withValue(exact) { body(ValueBytes.ruleValue($0)) } }
        return body(location.inside == nil ? nil : .object)
    }

    // MARK: Changing

    /// Sets the value of leaf `index`: over the old one when it takes as many bytes.
    mutating func setValue(_ value: JSONValue, at index: Int) {
        let start = paths.count
        ValueBytes.encode(value, into: &paths)
        let leaf = leaves[index]
        let length = paths.count - start
        if length == Int(leaf.valueEnd - leaf.valueStart) {
            let old = Int(leaf.valueStart)
            paths.withUnsafeMutableBufferPointer { all in
                for offset in 0..<length { all[old + offset] = all[start + offset] }
            }
            paths.removeLast(length)
        } else {
            unused += Int(leaf.valueEnd - leaf.valueStart)
            leaves[index].valueStart = Int32(start)
            leaves[index].valueEnd = Int32(paths.count)
            compactIfWasteful()
        }
    }

    /// Adds a leaf at the end (the caller keeps document order).
    mutating func append(_ path: UnsafeBufferPointer<UInt8>, _ value: JSONValue) {
        insert(path, value, at: leaves.count)
    }

    /// Adds a leaf at the end whose value is already encoded (a stored record's, checked).
    mutating func append(_ path: UnsafeBufferPointer<UInt8>, encodedValue: UnsafeBufferPointer<UInt8>) {
        let start = paths.count
        paths.append(contentsOf: path)
        paths.append(contentsOf: encodedValue)
        leaves.append(Leaf(pathStart: Int32(start), pathEnd: Int32(start + path.count),
                           valueStart: Int32(start + path.count), valueEnd: Int32(paths.count)))
    }

    mutating func insert(_ path: UnsafeBufferPointer<UInt8>, _ value: JSONValue, at index: Int) {
        leaves.insert(store(path, value), at: index)
    }

    /// Appends a path and a value to ``paths``.
    private mutating func store(_ path: UnsafeBufferPointer<UInt8>, _ value: JSONValue) -> Leaf {
        let start = paths.count
        paths.append(contentsOf: path)
        ValueBytes.encode(value, into: &paths)
        return Leaf(pathStart: Int32(start), pathEnd: Int32(start + path.count),
                    valueStart: Int32(start + path.count), valueEnd: Int32(paths.count))
    }

    /// Puts one leaf at `path` in place of the leaves in `range`.
    mutating func replace(_ range: Range<Int>, with path: UnsafeBufferPointer<UInt8>, _ value: JSONValue) {
        let first = range.lowerBound
        remove(first + 1..<range.upperBound)
        unused += leaves[first].size
        leaves[first] = store(path, value)
        compactIfWasteful()
    }

    mutating func remove(_ range: Range<Int>) {
        guard !range.isEmpty else { return }
        for index in range { unused += leaves[index].size }
        leaves.removeSubrange(range)
        compactIfWasteful()
    }

    private mutating func compactIfWasteful() {
        if unused > 256, unused * 2 > paths.count { compact() }
    }

    /// Rewrites ``paths`` with the leaves' bytes only, in leaf order.
    mutating func compact() {
        var packed: [UInt8] = []
        packed.reserveCapacity(paths.count - unused)
        paths.withUnsafeBufferPointer { all in
            for index in leaves.indices {
                let start = Int32(packed.count)
                packed.append(contentsOf: path(index, all))
                let valueStart = Int32(packed.count)
                packed.append(contentsOf: value(index, all))
                leaves[index] = Leaf(pathStart: start, pathEnd: valueStart, valueStart: valueStart, valueEnd: Int32(packed.count))
            }
        }
        paths = packed
        unused = 0
    }
}

extension AttributeDocument.Leaf {
    /// The bytes the leaf takes in `paths`.
    var size: Int { Int(pathEnd - pathStart) + Int(valueEnd - valueStart) }
}

extension AttributeDocument: Hashable {
    /// Equal documents have the same leaves in the same order, wherever their paths are stored.
    static func == (lhs: AttributeDocument, rhs: AttributeDocument) -> Bool {
        guard lhs.leaves.count == rhs.leaves.count else { return false }
        return lhs.paths.withUnsafeBufferPointer { left in
            rhs.paths.withUnsafeBufferPointer { right in
                for index in lhs.leaves.indices {
                    guard EncodedPath.equal(lhs.path(index, left), rhs.path(index, right)),
                          ValueBytes.decode(lhs.value(index, left)) == ValueBytes.decode(rhs.value(index, right)) else { return false }
                }
                return true
            }
        }
    }

    func hash(into hasher: inout Hasher) {
        hasher.combine(leaves.count)
        paths.withUnsafeBufferPointer { all in
            for index in leaves.indices {
                hasher.combine(bytes: UnsafeRawBufferPointer(path(index, all)))
                hasher.combine(ValueBytes.decode(value(index, all)))
            }
        }
    }
}
