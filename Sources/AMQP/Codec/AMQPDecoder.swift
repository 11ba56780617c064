// Hubcast — AMQP 1.0 type decoding (AMQP 1.0 part 1, §1.6).

/// Reads AMQP values from a byte buffer. Malformed input throws ``AMQPError/Code/decodingFailed``;
/// it never traps.
struct AMQPDecoder {
    private let bytes: [UInt8]
    private(set) var index: Int
    private let end: Int
    /// How deeply described values and compounds may nest: deeper input is refused rather than
    /// allowed to exhaust the stack (a peer could otherwise crash the process).
    static let maxDepth = 64
    private var depth = 0

    init(_ bytes: [UInt8], from start: Int = 0, to end: Int? = nil) {
        self.bytes = bytes
        self.index = start
        self.end = end ?? bytes.count
    }

    var isAtEnd: Bool { self.index >= self.end }

    private func failure(_ what: String) -> AMQPError {
        AMQPError(.decodingFailed, "\(what) at byte \(self.index)")
    }

    mutating func readByte() throws -> UInt8 {
        guard self.index < self.end else { throw self.failure("unexpected end of data") }
        defer { self.index += 1 }
        return self.bytes[self.index]
    }

    mutating func readBytes(_ count: Int) throws -> ArraySlice<UInt8> {
        guard count >= 0, self.end - self.index >= count else { throw self.failure("length \(count) overruns the data") }
        defer { self.index += count }
        return self.bytes[self.index..<self.index + count]
    }

    mutating func readBigEndian<T: FixedWidthInteger>(_: T.Type) throws -> T {
        let size = MemoryLayout<T>.size
        let slice = try self.readBytes(size)
        var value: T = 0
        for byte in slice { value = (value << 8) | T(byte) }
        return value
    }

    mutating func readValue() throws -> AMQPValue {
        let constructor = try self.readByte()
        if constructor == 0x00 {
            guard self.depth < Self.maxDepth else { throw self.failure("values nested deeper than \(Self.maxDepth) levels") }
            self.depth += 1
            defer { self.depth -= 1 }
            let descriptor = try self.readValue()
            let value = try self.readValue()
            return .described(descriptor: descriptor, value: value)
        }
        return try self.readValue(constructor: constructor)
    }

    private mutating func readLength(wide: Bool) throws -> Int {
        wide ? Int(try self.readBigEndian(UInt32.self)) : Int(try self.readByte())
    }

    private mutating func readString(wide: Bool) throws -> String {
        let count = try self.readLength(wide: wide)
        let slice = try self.readBytes(count)
        guard let text = String(validating: slice, as: UTF8.self) else { throw self.failure("invalid UTF-8") }
        return text
    }

    // swiftlint:disable:next cyclomatic_complexity function_body_length
    mutating func readValue(constructor: UInt8) throws -> AMQPValue {
        guard self.depth < Self.maxDepth else { throw self.failure("values nested deeper than \(Self.maxDepth) levels") }
        self.depth += 1
        defer { self.depth -= 1 }
        switch constructor {
        case 0x40: return .null
        case 0x41: return .bool(true)
        case 0x42: return .bool(false)
        case 0x56: return .bool(try self.readByte() != 0)
        case 0x50: return .ubyte(try self.readByte())
        case 0x60: return .ushort(try self.readBigEndian(UInt16.self))
        case 0x70: return .uint(try self.readBigEndian(UInt32.self))
        case 0x52: return .uint(UInt32(try self.readByte()))
        case 0x43: return .uint(0)
        case 0x80: return .ulong(try self.readBigEndian(UInt64.self))
        case 0x53: return .ulong(UInt64(try self.readByte()))
        case 0x44: return .ulong(0)
        case 0x51: return .byte(Int8(bitPattern: try self.readByte()))
        case 0x61: return .short(try self.readBigEndian(Int16.self))
        case 0x71: return .int(try self.readBigEndian(Int32.self))
        case 0x54: return .int(Int32(Int8(bitPattern: try self.readByte())))
        case 0x81: return .long(try self.readBigEndian(Int64.self))
        case 0x55: return .long(Int64(Int8(bitPattern: try self.readByte())))
        case 0x72: return .float(Float(bitPattern: try self.readBigEndian(UInt32.self)))
        case 0x82: return .double(Double(bitPattern: try self.readBigEndian(UInt64.self)))
        case 0x73:
            guard let scalar = Unicode.Scalar(try self.readBigEndian(UInt32.self)) else {
                throw self.failure("invalid char")
            }
            return .char(scalar)
        case 0x83: return .timestamp(try self.readBigEndian(Int64.self))
        case 0x98: return .uuid(.init(Array(try self.readBytes(16))))
        case 0x74: return .binary(Array(try self.readBytes(4)))  // decimal32, kept as bytes
        case 0x84: return .binary(Array(try self.readBytes(8)))  // decimal64
        case 0x94: return .binary(Array(try self.readBytes(16)))  // decimal128
        case 0xa0, 0xb0:
            let count = try self.readLength(wide: constructor == 0xb0)
            return .binary(Array(try self.readBytes(count)))
        case 0xa1, 0xb1: return .string(try self.readString(wide: constructor == 0xb1))
        case 0xa3, 0xb3: return .symbol(AMQPSymbol(try self.readString(wide: constructor == 0xb3)))
        case 0x45: return .list([])
        case 0xc0, 0xd0:
            let (count, limit) = try self.readCompoundHeader(wide: constructor == 0xd0)
            var items: [AMQPValue] = []
            items.reserveCapacity(min(count, 1024))
            for _ in 0..<count { items.append(try self.readValue()) }
            try self.checkCompoundEnd(limit)
            return .list(items)
        case 0xc1, 0xd1:
            let (count, limit) = try self.readCompoundHeader(wide: constructor == 0xd1)
            guard count % 2 == 0 else { throw self.failure("map with an odd number of items") }
            var pairs: [(AMQPValue, AMQPValue)] = []
            for _ in 0..<count / 2 { pairs.append((try self.readValue(), try self.readValue())) }
            try self.checkCompoundEnd(limit)
            return .map(pairs)
        case 0xe0, 0xf0:
            let (count, limit) = try self.readCompoundHeader(wide: constructor == 0xf0)
            var element = try self.readByte()
            var descriptor: AMQPValue?
            if element == 0x00 {
                descriptor = try self.readValue()
                element = try self.readByte()
            }
            var items: [AMQPValue] = []
            for _ in 0..<count {
                let item = try self.readValue(constructor: element)
                items.append(descriptor.map { .described(descriptor: $0, value: item) } ?? item)
            }
            try self.checkCompoundEnd(limit)
            return .array(items)
        default:
            throw self.failure("unknown type constructor 0x\(String(constructor, radix: 16))")
        }
    }

    /// Moves past one value without building it. Checks lengths and nesting as ``readValue()`` does,
    /// but not what compounds hold (skipped by their declared size) nor the UTF-8 of strings.
    mutating func skipValue() throws {
        let constructor = try self.readByte()
        guard constructor == 0x00 else { return try self.skipValue(constructor: constructor) }
        guard self.depth < Self.maxDepth else { throw self.failure("values nested deeper than \(Self.maxDepth) levels") }
        self.depth += 1
        defer { self.depth -= 1 }
        try self.skipValue()
        try self.skipValue()
    }

    mutating func skipValue(constructor: UInt8) throws {
        let fixed: Int
        switch constructor {
        case 0x00:
            guard self.depth < Self.maxDepth else { throw self.failure("values nested deeper than \(Self.maxDepth) levels") }
            self.depth += 1
            defer { self.depth -= 1 }
            try self.skipValue()
            try self.skipValue()
            return
        case 0x40, 0x41, 0x42, 0x43, 0x44, 0x45: fixed = 0
        case 0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56: fixed = 1
        case 0x60, 0x61: fixed = 2
        case 0x70, 0x71, 0x72, 0x73, 0x74: fixed = 4
        case 0x80, 0x81, 0x82, 0x83, 0x84: fixed = 8
        case 0x94, 0x98: fixed = 16
        case 0xa0, 0xa1, 0xa3, 0xb0, 0xb1, 0xb3:
            fixed = try self.readLength(wide: constructor >= 0xb0)
        case 0xc0, 0xc1, 0xe0, 0xd0, 0xd1, 0xf0:
            let (_, limit) = try self.readCompoundHeader(wide: constructor == 0xd0 || constructor == 0xd1 || constructor == 0xf0)
            self.index = limit
            return
        default:
            throw self.failure("unknown type constructor 0x\(String(constructor, radix: 16))")
        }
        _ = try self.readBytes(fixed)
    }

    /// Reads a compound's size and count; returns the count and where the compound ends.
    private mutating func readCompoundHeader(wide: Bool) throws -> (count: Int, limit: Int) {
        let size = try self.readLength(wide: wide)
        let start = self.index
        guard size <= self.end - start else { throw self.failure("compound size \(size) overruns the data") }
        let count = try self.readLength(wide: wide)
        // Every item takes at least one byte, so a count beyond the size is malformed.
        guard count <= size else { throw self.failure("compound count \(count) exceeds its size") }
        return (count, start + size)
    }

    private mutating func checkCompoundEnd(_ limit: Int) throws {
        guard self.index <= limit else { throw self.failure("compound overruns its declared size") }
        self.index = limit
    }
}

extension AMQPValue {
    /// Encodes the value in AMQP's binary format.
    public func encoded() -> [UInt8] {
        var encoder = AMQPEncoder()
        encoder.append(self)
        return encoder.bytes
    }

    /// Decodes the value at the start of `bytes` and returns it with the number of bytes it took
    /// (what follows, such as a transfer's payload, is left alone).
    public static func decodePrefix(_ bytes: [UInt8]) throws -> (AMQPValue, Int) {
        var decoder = AMQPDecoder(bytes)
        let value = try decoder.readValue()
        return (value, decoder.index)
    }

    /// Decodes one value from AMQP's binary format; throws ``AMQPError/Code/decodingFailed`` on bad
    /// or trailing bytes.
    public init(decoding bytes: [UInt8]) throws {
        var decoder = AMQPDecoder(bytes)
        self = try decoder.readValue()
        guard decoder.isAtEnd else { throw AMQPError(.decodingFailed, "trailing bytes after the value") }
    }
}
