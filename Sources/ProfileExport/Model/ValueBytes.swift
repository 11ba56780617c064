// Hubcast — attribute values as bytes: how a flat document and a stored record hold them.

import OrderedCollections

/// A JSON value as bytes (integers LEB128 varints, signed ones zig-zag encoded; a string is its
/// UTF-8 length then its bytes):
///
///     value = 0 null | 1 false | 2 true | 3 int:signed | 4 double:8 bytes little endian
///           | 5 string | 6 count value… | 7 count (key:string value)…
///
/// A profile's attribute leaves keep their values this way, so reading one for a rule or a payload
/// borrows its bytes (no string or array is copied, retained or freed) and a store copies them
/// as they are. Everything but ``end(of:at:depth:)`` expects a well-formed value: one this file
/// encoded, or one that `end` accepted.
enum ValueBytes {
    enum Tag {
        static let null: UInt8 = 0
        static let `false`: UInt8 = 1
        static let `true`: UInt8 = 2
        static let int: UInt8 = 3
        static let double: UInt8 = 4
        static let string: UInt8 = 5
        static let array: UInt8 = 6
        static let object: UInt8 = 7
    }

    static func encode(_ value: JSONValue, into bytes: inout [UInt8]) {
        switch value {
        case .null: bytes.append(Tag.null)
        case .bool(let flag): bytes.append(flag ? Tag.true : Tag.false)
        case .int(let number):
            bytes.append(Tag.int)
            varint(UInt64(bitPattern: (number &<< 1) ^ (number >> 63)), into: &bytes)
        case .double(let number):
            bytes.append(Tag.double)
            withUnsafeBytes(of: number.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
        case .string(let text):
            bytes.append(Tag.string)
            string(text, into: &bytes)
        case .array(let items):
            bytes.append(Tag.array)
            varint(UInt64(items.count), into: &bytes)
            for item in items { encode(item, into: &bytes) }
        case .object(let members):
            bytes.append(Tag.object)
            varint(UInt64(members.count), into: &bytes)
            for (key, member) in members {
                string(key, into: &bytes)
                encode(member, into: &bytes)
            }
        }
    }

    private static func string(_ text: String, into bytes: inout [UInt8]) {
        var text = text
        text.withUTF8 { utf8 in
            varint(UInt64(utf8.count), into: &bytes)
            bytes.append(contentsOf: utf8)
        }
    }

    private static func varint(_ value: UInt64, into bytes: inout [UInt8]) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(truncatingIfNeeded: value))
    }

    /// Where the value that starts at `offset` ends, when it is well formed (every length within
    /// the bytes, known tags, nested at most `ProfileRecord.maximumDepth` deep); `nil` otherwise.
    static func end(of bytes: UnsafeBufferPointer<UInt8>, at offset: Int, depth: Int = 0) -> Int? {
        var cursor = Cursor(bytes: bytes, index: offset)
        return cursor.skipChecked(depth: depth) ? cursor.index : nil
    }

    /// The value, decoded.
    static func decode(_ bytes: UnsafeBufferPointer<UInt8>) -> JSONValue {
        var cursor = Cursor(bytes: bytes, index: 0)
        return cursor.value()
    }

    /// Writes the value as JSON.
    static func writeJSON(_ bytes: UnsafeBufferPointer<UInt8>, to writer: inout JSONWriter) {
        var cursor = Cursor(bytes: bytes, index: 0)
        cursor.writeJSON(to: &writer)
    }

    /// Whether the value is `null`.
    static func isNull(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool { bytes[0] == Tag.null }

    /// The value as a rule reads it (its string borrowed from `bytes`); `nil` for `null`.
    static func ruleValue(_ bytes: UnsafeBufferPointer<UInt8>) -> RuleValue? {
        var cursor = Cursor(bytes: bytes, index: 1)
        switch bytes[0] {
        case Tag.null: return nil
        case Tag.false: return .bool(false)
        case Tag.true: return .bool(true)
        case Tag.int: return .int(cursor.signed())
        case Tag.double: return .double(cursor.double())
        case Tag.string: return .string(cursor.stringBytes())
        case Tag.array:
            guard case .array(let items) = decode(bytes) else { return nil }
            return .array(items)
        default: return .object
        }
    }

    /// Reads values from bytes.
    private struct Cursor {
        let bytes: UnsafeBufferPointer<UInt8>
        var index: Int

        mutating func varint() -> UInt64 {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                let byte = bytes[index]
                index += 1
                value |= UInt64(byte & 0x7F) << shift
                if byte < 0x80 { return value }
                shift += 7
            }
        }

        mutating func signed() -> Int64 {
            let zigzag = varint()
            return Int64(bitPattern: (zigzag >> 1) ^ (0 &- (zigzag & 1)))
        }

        mutating func double() -> Double {
            let bits = UnsafeRawPointer(bytes.baseAddress! + index).loadUnaligned(as: UInt64.self)
            index += 8
            return Double(bitPattern: UInt64(littleEndian: bits))
        }

        mutating func stringBytes() -> UnsafeBufferPointer<UInt8> {
            let length = Int(varint())
            defer { index += length }
            return UnsafeBufferPointer(rebasing: bytes[index..<(index + length)])
        }

        mutating func string() -> String {
            let utf8 = stringBytes()
            return String(unsafeUninitializedCapacity: utf8.count) { target in target.initialize(from: utf8).1 }
        }

        mutating func value() -> JSONValue {
            let tag = bytes[index]
            index += 1
            switch tag {
            case Tag.null: return .null
            case Tag.false: return .bool(false)
            case Tag.true: return .bool(true)
            case Tag.int: return .int(signed())
            case Tag.double: return .double(double())
            case Tag.string: return .string(string())
            case Tag.array:
                let count = Int(varint())
                var items: [JSONValue] = []
                items.reserveCapacity(count)
                for _ in 0..<count { items.append(value()) }
                return .array(items)
            default:
                let count = Int(varint())
                var members = JSONObject()
                for _ in 0..<count {
                    let key = string()
                    members[key] = value()
                }
                return .object(members)
            }
        }

        mutating func writeJSON(to writer: inout JSONWriter) {
            let tag = bytes[index]
            index += 1
            switch tag {
            case Tag.null: writer.value(.null)
            case Tag.false: writer.value(false)
            case Tag.true: writer.value(true)
            case Tag.int: writer.value(signed())
            case Tag.double: writer.value(.double(double()))
            case Tag.string: writer.value(utf8: stringBytes())
            case Tag.array:
                let count = Int(varint())
                writer.beginArray()
                for _ in 0..<count { writeJSON(to: &writer) }
                writer.endArray()
            default:
                let count = Int(varint())
                writer.beginObject()
                for _ in 0..<count {
                    writer.key(utf8: stringBytes())
                    writeJSON(to: &writer)
                }
                writer.endObject()
            }
        }

        /// Skips one value, checking it; false when it is not well formed.
        mutating func skipChecked(depth: Int) -> Bool {
            guard depth <= ProfileRecord.maximumDepth, index < bytes.count else { return false }
            let tag = bytes[index]
            index += 1
            switch tag {
            case Tag.null, Tag.false, Tag.true: return true
            case Tag.int: return checkedVarint() != nil
            case Tag.double:
                guard bytes.count - index >= 8 else { return false }
                index += 8
                return true
            case Tag.string: return skipCheckedString()
            case Tag.array, Tag.object:
                guard let count = checkedVarint(), count <= UInt64(bytes.count - index) else { return false }
                for _ in 0..<count {
                    if tag == Tag.object, !skipCheckedString() { return false }
                    if !skipChecked(depth: depth + 1) { return false }
                }
                return true
            default: return false
            }
        }

        private mutating func skipCheckedString() -> Bool {
            guard let length = checkedVarint(), length <= UInt64(bytes.count - index) else { return false }
            index += Int(length)
            return true
        }

        private mutating func checkedVarint() -> UInt64? {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while index < bytes.count {
                let byte = bytes[index]
                index += 1
                guard shift < 63 || (shift == 63 && byte <= 1) else { return nil }
                value |= UInt64(byte & 0x7F) << shift
                if byte < 0x80 { return value }
                shift += 7
            }
            return nil
        }
    }
}
