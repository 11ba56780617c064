// Hubcast — JSON values, objects and attribute paths.

/// A JSON value as profiles, updates and payloads hold it.
///
/// Numbers keep whether they were written as integers, so `42` is written back as `42` and large
/// ids stay exact; rules compare `int` and `double` by numeric value. Objects keep their members in
/// the order they were first written, so equal inputs give byte-equal output.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// The numeric value of `int` and `double`, `nil` for every other case.
    public var number: Double? {
        switch self {
        case .int(let value): Double(value)
        case .double(let value): value
        default: nil
        }
    }

    /// The members of an object, `nil` for every other case.
    public var object: JSONObject? {
        if case .object(let members) = self { return members }
        return nil
    }

    /// The value at `path` inside nested objects; `nil` when any step is missing or not an object.
    public func value(at path: AttributePath) -> JSONValue? {
        var current = self
        for component in path.components {
            guard case .object(let members) = current, let next = members[component] else { return nil }
            current = next
        }
        return current
    }
}

extension JSONObject {
    /// How many members the object under `name` has (0 when `name` is missing or not an
    /// object), read in place: `ProfileStore.prefetch` reads it to bring the object into cache.
    func memberCount(ofObjectAt name: String) -> Int {
        guard let position = index(forKey: name) else { return 0 }
        return JSONValue.objectCount(members[position].value)
    }
}

extension JSONValue {
    /// The member count of an object, 0 for any other value. The value is borrowed, so matching
    /// it copies nothing (a copy would count the object's references).
    static func objectCount(_ value: borrowing JSONValue) -> Int {
        switch value {
        case .object(let members): members.count
        default: 0
        }
    }
}

/// The members of a JSON object, in the order first written.
public typealias JSONObject = FlatDictionary<String, JSONValue>

/// A dotted attribute path in a profile's attribute document, such as `person.name.firstName`.
public struct AttributePath: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The path's steps, at least one, none empty.
    public let components: [String]

    /// Parses a dotted path; throws when it is empty or has an empty step (`a..b`, `.a`, `a.`).
    public init(_ text: String) throws(ProfileExportError) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard !text.isEmpty, !parts.contains(where: \.isEmpty) else {
            throw ProfileExportError(.invalidPath, "'\(text)' is not an attribute path (dotted names, none empty)")
        }
        components = parts
    }

    /// A path from steps the caller knows to be valid.
    public init(components: [String]) {
        precondition(!components.isEmpty, "an attribute path has at least one step")
        self.components = components
    }

    public var description: String { components.joined(separator: ".") }

    /// Whether `self` is `other` or lies inside it (`a.b.c` is within `a.b`).
    public func isWithin(_ other: AttributePath) -> Bool {
        components.count >= other.components.count && Array(components.prefix(other.components.count)) == other.components
    }

    public static func < (lhs: AttributePath, rhs: AttributePath) -> Bool {
        lhs.components.lexicographicallyPrecedes(rhs.components)
    }
}
