// Hubcast — AMQP 1.0 values.

/// A symbol: an ASCII name from a constrained domain (AMQP 1.0 §1.6.21), such as `amqp:not-found`.
public struct AMQPSymbol: Hashable, Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
    /// The symbol's text.
    public var name: String

    /// Makes a symbol from its text.
    public init(_ name: String) { self.name = name }

    public init(stringLiteral value: String) { self.name = value }

    public var description: String { self.name }
}

/// An AMQP 1.0 value of any type in the type system (AMQP 1.0 part 1).
///
/// Maps keep their order as read from the wire, as a list of key-value pairs.
public enum AMQPValue: Hashable, Sendable {
    case null
    case bool(Bool)
    case ubyte(UInt8)
    case ushort(UInt16)
    case uint(UInt32)
    case ulong(UInt64)
    case byte(Int8)
    case short(Int16)
    case int(Int32)
    case long(Int64)
    case float(Float)
    case double(Double)
    case char(Unicode.Scalar)
    /// Milliseconds since the Unix epoch.
    case timestamp(Int64)
    /// The 16 bytes of a UUID, in network order.
    case uuid(UUIDBytes)
    case binary([UInt8])
    case string(String)
    case symbol(AMQPSymbol)
    indirect case list([AMQPValue])
    /// An ordered map; keys may be any value (Event Hubs uses symbols and strings).
    indirect case map([(AMQPValue, AMQPValue)])
    /// An array: every element has the same type.
    indirect case array([AMQPValue])
    /// A described value: a descriptor (usually a symbol or an unsigned long) and the value.
    indirect case described(descriptor: AMQPValue, value: AMQPValue)

    /// The 16 bytes of a UUID.
    public struct UUIDBytes: Hashable, Sendable {
        /// The bytes in network order.
        public var bytes: [UInt8]

        /// Makes a UUID from 16 bytes; other lengths are padded or cut to 16.
        public init(_ bytes: [UInt8]) {
            self.bytes = Array((bytes + [UInt8](repeating: 0, count: 16)).prefix(16))
        }
    }

    public static func == (lhs: AMQPValue, rhs: AMQPValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.ubyte(a), .ubyte(b)): return a == b
        case let (.ushort(a), .ushort(b)): return a == b
        case let (.uint(a), .uint(b)): return a == b
        case let (.ulong(a), .ulong(b)): return a == b
        case let (.byte(a), .byte(b)): return a == b
        case let (.short(a), .short(b)): return a == b
        case let (.int(a), .int(b)): return a == b
        case let (.long(a), .long(b)): return a == b
        case let (.float(a), .float(b)): return a.bitPattern == b.bitPattern
        case let (.double(a), .double(b)): return a.bitPattern == b.bitPattern
        case let (.char(a), .char(b)): return a == b
        case let (.timestamp(a), .timestamp(b)): return a == b
        case let (.uuid(a), .uuid(b)): return a == b
        case let (.binary(a), .binary(b)): return a == b
        case let (.string(a), .string(b)): return a == b
        case let (.symbol(a), .symbol(b)): return a == b
        case let (.list(a), .list(b)): return a == b
        case let (.array(a), .array(b)): return a == b
        case let (.map(a), .map(b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        case let (.described(d1, v1), .described(d2, v2)): return d1 == d2 && v1 == v2
        default: return false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .map(let pairs):
            hasher.combine(pairs.count)
            for (key, value) in pairs {
                hasher.combine(key)
                hasher.combine(value)
            }
        case .string(let text): hasher.combine(text)
        case .symbol(let symbol): hasher.combine(symbol)
        case .ulong(let number): hasher.combine(number)
        case .long(let number): hasher.combine(number)
        case .binary(let bytes): hasher.combine(bytes)
        default: hasher.combine(String(describing: self))
        }
    }
}

extension AMQPValue {
    /// The text of a string or symbol value, else nil.
    public var text: String? {
        switch self {
        case .string(let text): return text
        case .symbol(let symbol): return symbol.name
        default: return nil
        }
    }

    /// The value as a signed 64-bit integer when it is any integer type that fits, else nil.
    public var integer: Int64? {
        switch self {
        case .ubyte(let n): return Int64(n)
        case .ushort(let n): return Int64(n)
        case .uint(let n): return Int64(n)
        case .ulong(let n): return n <= UInt64(Int64.max) ? Int64(n) : nil
        case .byte(let n): return Int64(n)
        case .short(let n): return Int64(n)
        case .int(let n): return Int64(n)
        case .long(let n): return n
        case .timestamp(let n): return n
        default: return nil
        }
    }

    /// The value looked up under `key` when this is a map, else nil.
    public subscript(key: AMQPValue) -> AMQPValue? {
        guard case .map(let pairs) = self else { return nil }
        return pairs.first { $0.0 == key }?.1
    }
}

extension AMQPValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByNilLiteral
{
    /// A string literal is an AMQP string.
    public init(stringLiteral value: String) { self = .string(value) }
    /// An integer literal is an AMQP long.
    public init(integerLiteral value: Int64) { self = .long(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(nilLiteral: ()) { self = .null }
}
