// Hubcast — AMQP 1.0 type encoding (AMQP 1.0 part 1, §1.6).

/// Writes AMQP values in their most compact encodings into a byte buffer.
struct AMQPEncoder {
    var bytes: [UInt8]

    init(capacity: Int = 256) {
        self.bytes = []
        self.bytes.reserveCapacity(capacity)
    }

    mutating func append(_ value: AMQPValue) {
        switch value {
        case .null: self.bytes.append(0x40)
        case .bool(let flag): self.bytes.append(flag ? 0x41 : 0x42)
        case .ubyte(let n): self.bytes += [0x50, n]
        case .ushort(let n): self.bytes.append(0x60); self.appendBigEndian(n)
        case .uint(let n):
            if n == 0 {
                self.bytes.append(0x43)
            } else if n < 256 {
                self.bytes += [0x52, UInt8(n)]
            } else {
                self.bytes.append(0x70); self.appendBigEndian(n)
            }
        case .ulong(let n): self.appendULong(n)
        case .byte(let n): self.bytes += [0x51, UInt8(bitPattern: n)]
        case .short(let n): self.bytes.append(0x61); self.appendBigEndian(n)
        case .int(let n):
            if n >= -128 && n <= 127 { self.bytes += [0x54, UInt8(bitPattern: Int8(n))] } else { self.bytes.append(0x71); self.appendBigEndian(n) }
        case .long(let n):
            if n >= -128 && n <= 127 { self.bytes += [0x55, UInt8(bitPattern: Int8(n))] } else { self.bytes.append(0x81); self.appendBigEndian(n) }
        case .float(let x): self.bytes.append(0x72); self.appendBigEndian(x.bitPattern)
        case .double(let x): self.bytes.append(0x82); self.appendBigEndian(x.bitPattern)
        case .char(let scalar): self.bytes.append(0x73); self.appendBigEndian(scalar.value)
        case .timestamp(let ms): self.bytes.append(0x83); self.appendBigEndian(ms)
        case .uuid(let uuid): self.bytes.append(0x98); self.bytes += uuid.bytes
        case .binary(let data): self.appendVariable(data, small: 0xa0, large: 0xb0)
        case .string(let text): self.appendUTF8(text, small: 0xa1, large: 0xb1)
        case .symbol(let symbol): self.appendUTF8(symbol.name, small: 0xa3, large: 0xb3)
        case .list(let items): self.appendList(items)
        case .map(let pairs): self.appendMap(pairs)
        case .array(let items): self.appendArray(items)
        case .described(let descriptor, let inner):
            self.bytes.append(0x00)
            self.append(descriptor)
            self.append(inner)
        }
    }

    mutating func appendULong(_ n: UInt64) {
        if n == 0 {
            self.bytes.append(0x44)
        } else if n < 256 {
            self.bytes += [0x53, UInt8(n)]
        } else {
            self.bytes.append(0x80); self.appendBigEndian(n)
        }
    }

    /// Writes a described-type header with a numeric descriptor (`0x00 0x53 code`).
    mutating func appendDescriptor(_ code: UInt64) {
        self.bytes.append(0x00)
        self.appendULong(code)
    }

    mutating func appendBinary(_ data: some Collection<UInt8>) {
        if data.count < 256 {
            self.bytes += [0xa0, UInt8(data.count)]
        } else {
            self.bytes.append(0xb0)
            self.appendBigEndian(UInt32(data.count))
        }
        self.bytes.append(contentsOf: data)
    }

    /// Writes a string, or null when absent.
    mutating func appendString(_ text: String?) {
        guard let text else { return self.bytes.append(0x40) }
        self.appendUTF8(text, small: 0xa1, large: 0xb1)
    }

    /// Writes a symbol, or null when absent.
    mutating func appendSymbol(_ name: String?) {
        guard let name else { return self.bytes.append(0x40) }
        self.appendUTF8(name, small: 0xa3, large: 0xb3)
    }

    private mutating func appendUTF8(_ text: String, small: UInt8, large: UInt8) {
        let count = text.utf8.count
        if count < 256 {
            self.bytes += [small, UInt8(count)]
        } else {
            self.bytes.append(large)
            self.appendBigEndian(UInt32(count))
        }
        self.bytes.append(contentsOf: text.utf8)
    }

    mutating func appendBigEndian<T: FixedWidthInteger>(_ n: T) {
        withUnsafeBytes(of: n.bigEndian) { self.bytes.append(contentsOf: $0) }
    }

    private mutating func appendVariable(_ data: [UInt8], small: UInt8, large: UInt8) {
        if data.count < 256 {
            self.bytes += [small, UInt8(data.count)]
        } else {
            self.bytes.append(large)
            self.appendBigEndian(UInt32(data.count))
        }
        self.bytes += data
    }

    /// Writes a compound (list or map) in place: constructor, size and count, then the items that
    /// `items` appends. Starts with the 8-bit form and widens it if the body turns out too large.
    mutating func appendCompound(count: Int, small: UInt8, large: UInt8, items: (inout AMQPEncoder) -> Void) {
        let start = self.bytes.count
        self.bytes += [small, 0, 0]
        items(&self)
        let bodySize = self.bytes.count - start - 3
        if bodySize + 1 < 256 && count < 256 {
            self.bytes[start + 1] = UInt8(bodySize + 1)
            self.bytes[start + 2] = UInt8(count)
            return
        }
        var header: [UInt8] = [large]
        withUnsafeBytes(of: UInt32(bodySize + 4).bigEndian) { header += $0 }
        withUnsafeBytes(of: UInt32(count).bigEndian) { header += $0 }
        self.bytes.replaceSubrange(start..<start + 3, with: header)
    }

    mutating func appendList(_ items: [AMQPValue]) {
        if items.isEmpty {
            self.bytes.append(0x45)
            return
        }
        self.appendCompound(count: items.count, small: 0xc0, large: 0xd0) { body in
            for item in items { body.append(item) }
        }
    }

    /// Writes a list of optional fields, leaving out trailing absent ones (AMQP composite types).
    mutating func appendFields(_ fields: [AMQPValue?]) {
        var count = fields.count
        while count > 0 && (fields[count - 1] == nil || fields[count - 1] == .null) { count -= 1 }
        if count == 0 {
            self.bytes.append(0x45)
            return
        }
        self.appendCompound(count: count, small: 0xc0, large: 0xd0) { body in
            for index in 0..<count { body.append(fields[index] ?? .null) }
        }
    }

    mutating func appendMap(_ pairs: [(AMQPValue, AMQPValue)]) {
        self.appendCompound(count: pairs.count * 2, small: 0xc1, large: 0xd1) { body in
            for (key, value) in pairs {
                body.append(key)
                body.append(value)
            }
        }
    }

    /// Arrays use the 32-bit form and the wide constructor of the first element's type. All elements
    /// must have that type (and, for described elements, the same descriptor); an array that mixes
    /// types cannot be an AMQP array and is written as a list instead.
    mutating func appendArray(_ items: [AMQPValue]) {
        guard let first = items.first else {
            self.bytes.append(0xf0)
            self.appendBigEndian(UInt32(5))
            self.appendBigEndian(UInt32(0))
            self.bytes.append(0x40)
            return
        }
        var descriptor: AMQPValue?
        var inner: [AMQPValue] = items
        if case .described(let firstDescriptor, _) = first {
            descriptor = firstDescriptor
            inner = []
            for item in items {
                guard case .described(let d, let value) = item, d == firstDescriptor else { return self.appendList(items) }
                inner.append(value)
            }
        }
        let constructor = Self.arrayConstructor(inner[0])
        guard constructor != 0x00, inner.allSatisfy({ Self.arrayConstructor($0) == constructor }) else {
            return self.appendList(items)
        }
        var body = AMQPEncoder(capacity: 64)
        if let descriptor {
            body.bytes.append(0x00)
            body.append(descriptor)
        }
        body.bytes.append(constructor)
        for item in inner { body.appendArrayElement(item, constructor: constructor) }
        self.bytes.append(0xf0)
        self.appendBigEndian(UInt32(body.bytes.count + 4))
        self.appendBigEndian(UInt32(items.count))
        self.bytes += body.bytes
    }

    /// Writes a fixed-width value in its wide form (the form array elements take).
    private mutating func appendFixedWide(_ value: AMQPValue) {
        switch value {
        case .ubyte(let n): self.bytes += [0x50, n]
        case .ushort(let n): self.bytes.append(0x60); self.appendBigEndian(n)
        case .byte(let n): self.bytes += [0x51, UInt8(bitPattern: n)]
        case .short(let n): self.bytes.append(0x61); self.appendBigEndian(n)
        case .float(let x): self.bytes.append(0x72); self.appendBigEndian(x.bitPattern)
        case .double(let x): self.bytes.append(0x82); self.appendBigEndian(x.bitPattern)
        case .char(let scalar): self.bytes.append(0x73); self.appendBigEndian(scalar.value)
        case .timestamp(let ms): self.bytes.append(0x83); self.appendBigEndian(ms)
        case .uuid(let uuid): self.bytes.append(0x98); self.bytes += uuid.bytes
        default: self.append(value)
        }
    }

    private static func arrayConstructor(_ value: AMQPValue) -> UInt8 {
        switch value {
        case .null: return 0x40
        case .bool: return 0x56
        case .ubyte: return 0x50
        case .ushort: return 0x60
        case .uint: return 0x70
        case .ulong: return 0x80
        case .byte: return 0x51
        case .short: return 0x61
        case .int: return 0x71
        case .long: return 0x81
        case .float: return 0x72
        case .double: return 0x82
        case .char: return 0x73
        case .timestamp: return 0x83
        case .uuid: return 0x98
        case .binary: return 0xb0
        case .string: return 0xb1
        case .symbol: return 0xb3
        case .list: return 0xd0
        case .map: return 0xd1
        case .array: return 0xf0
        case .described: return 0x00
        }
    }

    /// Writes one array element without its constructor, in the wide encoding `constructor` names.
    private mutating func appendArrayElement(_ value: AMQPValue, constructor: UInt8) {
        var scratch = AMQPEncoder(capacity: 16)
        switch value {
        case .bool(let flag): self.bytes.append(flag ? 1 : 0)
        case .uint(let n): self.appendBigEndian(n)
        case .ulong(let n): self.appendBigEndian(n)
        case .int(let n): self.appendBigEndian(n)
        case .long(let n): self.appendBigEndian(n)
        case .binary(let data): self.appendBigEndian(UInt32(data.count)); self.bytes += data
        case .string(let text): self.appendBigEndian(UInt32(text.utf8.count)); self.bytes += Array(text.utf8)
        case .symbol(let s): self.appendBigEndian(UInt32(s.name.utf8.count)); self.bytes += Array(s.name.utf8)
        case .list(let items):
            for item in items { scratch.append(item) }
            self.appendBigEndian(UInt32(scratch.bytes.count + 4))
            self.appendBigEndian(UInt32(items.count))
            self.bytes += scratch.bytes
        case .map(let pairs):
            for (key, item) in pairs { scratch.append(key); scratch.append(item) }
            self.appendBigEndian(UInt32(scratch.bytes.count + 4))
            self.appendBigEndian(UInt32(pairs.count * 2))
            self.bytes += scratch.bytes
        case .null: break
        case .array(let items):
            // The element's own array encoding without its 0xf0 constructor.
            scratch.appendArray(items)
            self.bytes += scratch.bytes.dropFirst()
        default:
            // Fixed-width types: their full (wide) encoding minus the one-byte constructor.
            scratch.appendFixedWide(value)
            self.bytes += scratch.bytes.dropFirst()
        }
    }
}
