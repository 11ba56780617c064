// Hubcast — evaluating a parsed rule against a profile's attributes.
//
// The hot path: no allocation, no existentials, no closures that escape. Strings are compared by
// their UTF-8 bytes in place.

import OrderedCollections

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
    func order(of value: RuleValue) -> RuleOrder? {
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
            guard let timestamp = Timestamp.parse(bytes: text) else { return nil }
            return RuleOrder(timestamp.seconds, seconds)
        default:
            return nil
        }
    }

    /// How an element of an array value orders against this literal.
    func order(of element: JSONValue) -> RuleOrder? {
        element.withRuleValue { value in value.flatMap(order(of:)) }
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
    func evaluate<Attributes: RuleAttributes>(_ attributes: Attributes) -> Bool {
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
            return attributes.isPresent(at: path)
        case .compare(let path, let comparison, let literal):
            return attributes.withValue(at: path) { value in
                guard let value else { return false }
                return comparison.holds(for: literal.order(of: value))
            }
        case .oneOf(let path, let literals):
            return attributes.withValue(at: path) { value in
                guard let value else { return false }
                for literal in literals where literal.order(of: value) == .equal { return true }
                return false
            }
        case .contains(let path, let literal):
            return attributes.withValue(at: path) { value in
                switch value {
                case .string(let text)?:
                    guard case .string(let part) = literal else { return false }
                    return UTF8Bytes.contains(text, part)
                case .array(let elements)?:
                    for element in elements where literal.order(of: element) == .equal { return true }
                    return false
                default:
                    return false
                }
            }
        case .startsWith(let path, let prefix):
            return attributes.withValue(at: path) { value in
                guard case .string(let text)? = value else { return false }
                return UTF8Bytes.hasPrefix(text, prefix)
            }
        }
    }
}

/// A present attribute value as a rule reads it: its string borrowed from where it is stored, valid
/// only inside the call that hands it over.
enum RuleValue {
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(UnsafeBufferPointer<UInt8>)
    case array([JSONValue])
    case object
}

extension JSONValue {
    /// Calls `body` with this value as a rule reads it (`nil` for `null`).
    func withRuleValue<R>(_ body: (RuleValue?) -> R) -> R {
        switch self {
        case .null: return body(nil)
        case .bool(let flag): return body(.bool(flag))
        case .int(let number): return body(.int(number))
        case .double(let number): return body(.double(number))
        case .string(var text): return text.withUTF8 { body(.string($0)) }
        case .array(let items): return body(.array(items))
        case .object: return body(.object)
        }
    }
}

/// What a rule reads: the values at attribute paths (a nested object, or a profile's flat document).
protocol RuleAttributes {
    /// Calls `body` with the value at `path` (`nil` when missing or `null`).
    func withValue<R>(at path: AttributePath, _ body: (RuleValue?) -> R) -> R
    /// Whether there is a value at `path` that is not `null`.
    func isPresent(at path: AttributePath) -> Bool
}

extension AttributeDocument: RuleAttributes {
    func withValue<R>(at path: AttributePath, _ body: (RuleValue?) -> R) -> R {
        path.encoded.withUnsafeBufferPointer { withRuleValue(at: $0, body) }
    }

    func isPresent(at path: AttributePath) -> Bool {
        path.encoded.withUnsafeBufferPointer { isPresent(at: $0) }
    }
}

extension JSONObject: RuleAttributes {
    func isPresent(at path: AttributePath) -> Bool { presentValue(at: path) != nil }

    func withValue<R>(at path: AttributePath, _ body: (RuleValue?) -> R) -> R {
        guard let value = presentValue(at: path) else { return body(nil) }
        return value.withRuleValue(body)
    }

    /// The value at `path` unless it is missing or `null`.
    func presentValue(at path: AttributePath) -> JSONValue? {
        let components = path.components
        guard var value = self[components[0]] else { return nil }
        var step = 1
        while step < components.count {
            guard case .object(let members) = value, let next = members[components[step]] else { return nil }
            value = next
            step += 1
        }
        if case .null = value { return nil }
        return value
    }
}

/// Byte-wise string operations on UTF-8: a value's bytes (borrowed where they are stored) against a
/// rule's literal.
enum UTF8Bytes {
    static func order(_ left: UnsafeBufferPointer<UInt8>, _ right: String) -> RuleOrder {
        withBytes(right) { right in
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

    static func hasPrefix(_ text: UnsafeBufferPointer<UInt8>, _ prefix: String) -> Bool {
        withBytes(prefix) { prefix in
            prefix.count <= text.count && matches(text, at: 0, prefix)
        }
    }

    static func contains(_ text: UnsafeBufferPointer<UInt8>, _ part: String) -> Bool {
        withBytes(part) { part in
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

    private static func withBytes<Result>(_ text: String, _ body: (UnsafeBufferPointer<UInt8>) -> Result) -> Result {
        var text = text
        return text.withUTF8(body)
    }
}
