// Hubcast — evaluating a parsed rule against a profile's attributes.
//
// The hot path: no allocation, no existentials, no closures that escape. Strings are compared by
// their UTF-8 bytes in place.

/// How an attribute value orders against a literal.
enum RuleOrder: Sendable {
    case less, equal, greater

    init<T: Comparable>(_ left: T, _ right: T) {
        self = left < right ? .less : left == right ? .equal : .greater
    }
}

extension RuleComparison {
    /// Whether the comparison holds for an attribute present in the profile; `order` is `nil` when
    /// the attribute and the literal are of different types (or a number is NaN).
    func holds(for order: RuleOrder?) -> Bool {
        guard let order else { return self == .notEqual }
        switch self {
        case .equal: return order == .equal
        case .notEqual: return order != .equal
        case .less: return order == .less
        case .lessOrEqual: return order != .greater
        case .greater: return order == .greater
        case .greaterOrEqual: return order != .less
        }
    }
}

extension RuleLiteral {
    /// How `value` orders against this literal, or `nil` across types.
    ///
    /// Strings order by UTF-8 bytes (the order of Unicode scalars); numbers by value, `int`
    /// against an integer literal exactly; a string against a date literal as a date when it
    /// parses as ISO 8601; booleans are only equal or not.
    func order(of value: JSONValue) -> RuleOrder? {
        switch (value, self) {
        case (.string(let text), .string(let literal)):
            return UTF8Bytes.order(text, literal)
        case (.int(let number), .number(let literal, let integer)):
            if let integer { return RuleOrder(number, integer) }
            return RuleLiteral.order(Double(number), literal)
        case (.double(let number), .number(let literal, _)):
            return RuleLiteral.order(number, literal)
        case (.bool(let flag), .bool(let literal)):
            return flag == literal ? .equal : flag ? .greater : .less
        case (.string(let text), .date(let seconds, _)):
            guard let timestamp = Timestamp.parse(text) else { return nil }
            return RuleOrder(timestamp.seconds, seconds)
        default:
            return nil
        }
    }

    private static func order(_ left: Double, _ right: Double) -> RuleOrder? {
        if left < right { return .less }
        if left > right { return .greater }
        if left == right { return .equal }
        return nil
    }
}

extension RuleNode {
    /// Whether the profile whose attribute document is `attributes` satisfies this node.
    func evaluate(_ attributes: JSONObject) -> Bool {
        switch self {
        case .all(let nodes):
            for node in nodes where !node.evaluate(attributes) { return false }
            return true
        case .any(let nodes):
            for node in nodes where node.evaluate(attributes) { return true }
            return false
        case .not(let node):
            return !node.evaluate(attributes)
        case .exists(let path):
            return attributes.presentValue(at: path) != nil
        case .compare(let path, let comparison, let literal):
            guard let value = attributes.presentValue(at: path) else { return false }
            return comparison.holds(for: literal.order(of: value))
        case .oneOf(let path, let literals):
            guard let value = attributes.presentValue(at: path) else { return false }
            for literal in literals where literal.order(of: value) == .equal { return true }
            return false
        case .contains(let path, let literal):
            switch attributes.presentValue(at: path) {
            case .string(let text)?:
                guard case .string(let part) = literal else { return false }
                return UTF8Bytes.contains(text, part)
            case .array(let elements)?:
                for element in elements where literal.order(of: element) == .equal { return true }
                return false
            default:
                return false
            }
        case .startsWith(let path, let prefix):
            guard case .string(let text)? = attributes.presentValue(at: path) else { return false }
            return UTF8Bytes.hasPrefix(text, prefix)
        }
    }
}

extension JSONObject {
    /// The value at `path` unless it is missing or `null`. Only that value is copied: the objects
    /// on the way are borrowed (a copy of each would count its references).
    func presentValue(at path: AttributePath) -> JSONValue? {
        let components = path.components
        guard let position = index(forKey: components[0]) else { return nil }
        return Self.presentValue(members[position].value, components, from: 1)
    }

    private static func presentValue(_ value: borrowing JSONValue, _ components: [String], from step: Int) -> JSONValue? {
        guard step < components.count else {
            switch value {
            case .null: return nil
            default: return copy value
            }
        }
        switch value {
        case .object(let object):
            guard let position = object.index(forKey: components[step]) else { return nil }
            return presentValue(object.members[position].value, components, from: step + 1)
        default:
            return nil
        }
    }
}

/// Byte-wise string operations on UTF-8, without copying native strings.
enum UTF8Bytes {
    static func order(_ left: String, _ right: String) -> RuleOrder {
        withBytes(left, right) { left, right in
            let shared = min(left.count, right.count)
            var index = 0
            while index < shared {
                let a = left[index], b = right[index]
                if a != b { return a < b ? .less : .greater }
                index += 1
            }
            return RuleOrder(left.count, right.count)
        }
    }

    static func hasPrefix(_ text: String, _ prefix: String) -> Bool {
        withBytes(text, prefix) { text, prefix in
            prefix.count <= text.count && matches(text, at: 0, prefix)
        }
    }

    static func contains(_ text: String, _ part: String) -> Bool {
        withBytes(text, part) { text, part in
            guard part.count <= text.count else { return false }
            guard let first = part.first else { return true }
            var index = 0
            while index <= text.count - part.count {
                if text[index] == first, matches(text, at: index, part) { return true }
                index += 1
            }
            return false
        }
    }

    /// Whether `part` occurs in `text` at `offset` (which leaves room for it).
    private static func matches(_ text: UnsafeBufferPointer<UInt8>, at offset: Int, _ part: UnsafeBufferPointer<UInt8>) -> Bool {
        var index = 0
        while index < part.count {
            if text[offset + index] != part[index] { return false }
            index += 1
        }
        return true
    }

    private static func withBytes<Result>(
        _ left: String, _ right: String,
        _ body: (UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>) -> Result
    ) -> Result {
        var left = left
        var right = right
        return left.withUTF8 { left in right.withUTF8 { right in body(left, right) } }
    }
}
