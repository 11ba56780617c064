// Hubcast — an ordered dictionary in one array: a profile's small maps cost one allocation each.

/// An ordered dictionary kept as one array of key–value pairs, in the order keys were first
/// inserted.
///
/// A profile holds a dozen small maps (its attribute objects, memberships, decisions, identity
/// namespaces), and with millions of profiles each one read is a cache miss. `OrderedDictionary`
/// keeps keys and values in two allocations (three above 15 members); this keeps one, and finds a
/// key by comparing keys in order, which for the few members of a profile's objects is as quick as
/// hashing. Past ``indexedCount`` members a hash table of positions is kept beside the array, so
/// large objects from input stay linear to build and constant to search.
///
/// Equality is order-sensitive, as for `OrderedDictionary`: equal maps write byte-equal JSON.
public struct FlatDictionary<Key: Hashable, Value> {
    public typealias Element = (key: Key, value: Value)

    /// The storage of `elements`.
    @usableFromInline var members: ContiguousArray<Element>
    /// The members, in insertion order.
    @inlinable public var elements: ContiguousArray<Element> { members }
    /// Key → position in `members`, kept only when there are more than `indexedCount` members
    /// (empty otherwise: an empty dictionary allocates nothing).
    @usableFromInline var positions: [Key: Int] = [:]

    /// Up to this many members, keys are found by comparing them in order.
    public static var indexedCount: Int { 16 }

    @inlinable
    public init() { members = [] }

    /// A dictionary of `elements`, whose keys the caller knows to be distinct (a repeated key is a
    /// programming error: it traps when the positions are built, above ``indexedCount`` members).
    @inlinable
    public init(uncheckedUniqueElements elements: ContiguousArray<Element>) {
        members = elements
        reindex()
    }

    /// A dictionary of `keys` and `values` in step, keys known by the caller to be distinct.
    @inlinable
    public init(uncheckedUniqueKeys keys: some Sequence<Key>, values: some Sequence<Value>) {
        self.init(uncheckedUniqueElements: ContiguousArray(zip(keys, values).lazy.map { (key: $0, value: $1) }))
    }

    @inlinable
    public var count: Int { members.count }
    @inlinable
    public var isEmpty: Bool { members.isEmpty }

    /// The position of `key`, or `nil`.
    @inlinable
    public func index(forKey key: Key) -> Int? {
        if !positions.isEmpty { return positions[key] }
        return members.withUnsafeBufferPointer { buffer in
            var position = 0
            while position < buffer.count {
                if buffer[position].key == key { return position }
                position += 1
            }
            return nil
        }
    }

    @inlinable
    public subscript(key: Key) -> Value? {
        get { index(forKey: key).map { members[$0].value } }
        set {
            if let newValue { updateValue(newValue, forKey: key) } else { removeValue(forKey: key) }
        }
    }

    /// The value of `key`; a missing key is added (at the end) with `defaultValue` when written to.
    @inlinable
    public subscript(key: Key, default defaultValue: @autoclosure () -> Value) -> Value {
        get { index(forKey: key).map { members[$0].value } ?? defaultValue() }
        _modify {
            let position = index(forKey: key) ?? append(key, defaultValue())
            yield &members[position].value
        }
    }

    /// Sets the value of `key` (added at the end when new); returns the value it replaced.
    @inlinable
    @discardableResult
    public mutating func updateValue(_ value: Value, forKey key: Key) -> Value? {
        guard let position = index(forKey: key) else {
            append(key, value)
            return nil
        }
        return swapValue(at: position, with: value)
    }

    /// Removes `key`; returns its value, or `nil` when it was missing.
    @inlinable
    @discardableResult
    public mutating func removeValue(forKey key: Key) -> Value? {
        guard let position = index(forKey: key) else { return nil }
        return remove(at: position).value
    }

    /// Removes the member at `position` (later members move up one).
    @inlinable
    @discardableResult
    public mutating func remove(at position: Int) -> Element {
        let removed = members.remove(at: position)
        if !positions.isEmpty {
            if members.count <= Self.indexedCount {
                positions = [:]
            } else {
                // Only the members after it moved.
                positions[removed.key] = nil
                for later in position..<members.count { positions[members[later].key] = later }
            }
        }
        return removed
    }

    @inlinable
    public mutating func removeAll() {
        members.removeAll()
        positions = [:]
    }

    @inlinable
    public mutating func reserveCapacity(_ capacity: Int) { members.reserveCapacity(capacity) }

    /// The keys, in order.
    @inlinable
    public var keys: LazyMapCollection<ContiguousArray<Element>, Key> { members.lazy.map { $0.key } }

    /// The values, in order; writable in place by position.
    @inlinable
    public var values: Values {
        get { Values(elements: members) }
        _modify {
            // The view takes the array, so it is the only reference and changes in place.
            var view = Values(elements: members)
            members = []
            defer { members = view.elements }
            yield &view
        }
    }

    /// Reads a byte of every cache line the members take (to bring them into cache; see
    /// `ProfileStore.prefetch`); returns their sum.
    func readEveryLine() -> Int {
        members.withUnsafeBytes { bytes in
            var sum = 0
            var offset = 0
            while offset < bytes.count {
                sum &+= Int(bytes[offset])
                offset += 64
            }
            // The last line too, when the members do not start on a line boundary.
            if !bytes.isEmpty { sum &+= Int(bytes[bytes.count - 1]) }
            return sum
        }
    }

    /// Adds a member known to be new; returns its position.
    @inlinable
    @discardableResult
    mutating func append(_ key: Key, _ value: Value) -> Int {
        members.append((key: key, value: value))
        let position = members.count - 1
        if !positions.isEmpty {
            positions[key] = position
        } else if members.count > Self.indexedCount {
            reindex()
        }
        return position
    }

    @inlinable
    mutating func swapValue(at position: Int, with value: Value) -> Value {
        var old = value
        swap(&old, &members[position].value)
        return old
    }

    /// Rebuilds the positions (none at or below `indexedCount` members).
    @inlinable
    mutating func reindex() {
        guard members.count > Self.indexedCount else {
            positions = [:]
            return
        }
        var table = [Key: Int](minimumCapacity: members.count)
        for (position, member) in members.enumerated() {
            precondition(table.updateValue(position, forKey: member.key) == nil, "duplicate key \(member.key)")
        }
        positions = table
    }

    /// The values of a ``FlatDictionary``, in order.
    public struct Values: RandomAccessCollection, MutableCollection {
        @usableFromInline var elements: ContiguousArray<(key: Key, value: Value)>
        @inlinable init(elements: ContiguousArray<(key: Key, value: Value)>) { self.elements = elements }
        @inlinable
        public var startIndex: Int { 0 }
        @inlinable
        public var endIndex: Int { elements.count }
        @inlinable
        public subscript(position: Int) -> Value {
            get { elements[position].value }
            _modify { yield &elements[position].value }
        }
    }
}

extension FlatDictionary: Sequence {
    @inlinable
    public func makeIterator() -> ContiguousArray<Element>.Iterator { members.makeIterator() }
    @inlinable
    public var underestimatedCount: Int { elements.count }
}

extension FlatDictionary: ExpressibleByDictionaryLiteral {
    /// Keys must be distinct (a repeated key is a programming error, as in a `Dictionary` literal).
    @inlinable
    public init(dictionaryLiteral members: (Key, Value)...) {
        self.init()
        for (key, value) in members {
            precondition(index(forKey: key) == nil, "duplicate key \(key) in a dictionary literal")
            append(key, value)
        }
    }
}

extension FlatDictionary: Equatable where Value: Equatable {
    @inlinable
    public static func == (lhs: Self, rhs: Self) -> Bool {
        guard lhs.count == rhs.count else { return false }
        for (left, right) in zip(lhs.elements, rhs.elements) where left.key != right.key || left.value != right.value {
            return false
        }
        return true
    }
}

extension FlatDictionary: Hashable where Value: Hashable {
    @inlinable
    public func hash(into hasher: inout Hasher) {
        hasher.combine(count)
        for member in elements {
            hasher.combine(member.key)
            hasher.combine(member.value)
        }
    }
}

extension FlatDictionary: Sendable where Key: Sendable, Value: Sendable {}
extension FlatDictionary.Values: Sendable where Key: Sendable, Value: Sendable {}

extension FlatDictionary: CustomStringConvertible {
    public var description: String {
        elements.isEmpty ? "[:]" : "[" + elements.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + "]"
    }
}
