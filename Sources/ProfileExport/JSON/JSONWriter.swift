// Hubcast — compact JSON output with a stable key order.

/// Writes compact JSON into a byte buffer.
///
/// Object members of a ``JSONValue`` are written in their stored order (first written first), so
/// equal inputs give byte-equal text. Callers that need another order (the payload builder) write
/// keys themselves with ``key(_:)`` between ``beginObject()`` and ``endObject()``.
package struct JSONWriter: Sendable {
    /// The text written so far, UTF-8.
    package private(set) var bytes: [UInt8] = []
    private var needsComma = false

    package init(capacity: Int = 512) { bytes.reserveCapacity(capacity) }

    /// The text written so far.
    package var text: String {
        // What the writer writes is valid UTF-8 (it comes from Swift strings): copied in, not decoded.
        String(unsafeUninitializedCapacity: bytes.count) { target in target.initialize(from: bytes).1 }
    }

    package mutating func beginObject() { separate(); bytes.append(0x7B); needsComma = false }
    package mutating func endObject() { bytes.append(0x7D); needsComma = true }
    package mutating func beginArray() { separate(); bytes.append(0x5B); needsComma = false }
    package mutating func endArray() { bytes.append(0x5D); needsComma = true }

    /// Writes a member name and the colon; the next value written is its value.
    package mutating func key(_ name: String) {
        separate()
        string(name)
        bytes.append(0x3A)
        needsComma = false
    }

    package mutating func value(_ text: String) { separate(); string(text); needsComma = true }
    package mutating func value(_ number: Int64) { separate(); integer(number); needsComma = true }
    package mutating func value(_ flag: Bool) {
        separate()
        if flag { bytes.append(contentsOf: [0x74, 0x72, 0x75, 0x65]) } else { bytes.append(contentsOf: [0x66, 0x61, 0x6C, 0x73, 0x65]) }
        needsComma = true
    }

    /// Writes a timestamp as its `YYYY-MM-DDTHH:MM:SSZ` string.
    package mutating func value(_ time: Timestamp) {
        separate()
        bytes.append(0x22)
        time.write(to: &bytes)
        bytes.append(0x22)
        needsComma = true
    }

    /// Writes a member name already encoded as JSON with its colon (`"name":`).
    mutating func encodedKey(_ key: [UInt8]) {
        separate()
        bytes.append(contentsOf: key)
        needsComma = false
    }

    /// Writes a member whose JSON is put together beforehand around a timestamp: `head`, the
    /// time's digits, `tail`.
    mutating func member(_ head: [UInt8], _ time: Timestamp, _ tail: [UInt8]) {
        separate()
        bytes.append(contentsOf: head)
        time.write(to: &bytes)
        bytes.append(contentsOf: tail)
        needsComma = true
    }

    /// Empties the writer, keeping its buffer, to write another text.
    package mutating func clear() {
        bytes.removeAll(keepingCapacity: true)
        needsComma = false
    }

    /// Where the writer is, to go back to with ``rewind(to:)``.
    var mark: (count: Int, needsComma: Bool) { (bytes.count, needsComma) }

    /// Drops what was written since `mark`.
    mutating func rewind(to mark: (count: Int, needsComma: Bool)) {
        bytes.removeLast(bytes.count - mark.count)
        needsComma = mark.needsComma
    }

    /// Writes text that is already JSON, as one value.
    package mutating func raw(_ json: [UInt8]) { separate(); bytes.append(contentsOf: json); needsComma = true }

    /// Writes any value.
    package mutating func value(_ json: JSONValue) {
        switch json {
        case .null: separate(); bytes.append(contentsOf: [0x6E, 0x75, 0x6C, 0x6C]); needsComma = true
        case .bool(let flag): value(flag)
        case .int(let number): value(number)
        case .double(let number):
            separate()
            if number.rounded() == number, abs(number) < 1e15 {
                integer(Int64(number))
                bytes.append(contentsOf: [0x2E, 0x30])
            } else {
                bytes.append(contentsOf: number.description.utf8)
            }
            needsComma = true
        case .string(let text): value(text)
        case .array(let elements):
            beginArray()
            for element in elements { value(element) }
            endArray()
        case .object(let members):
            beginObject()
            for (name, member) in members {
                key(name)
                value(member)
            }
            endObject()
        }
    }

    private mutating func separate() {
        if needsComma { bytes.append(0x2C) }
    }

    private mutating func integer(_ number: Int64) {
        if number == 0 { bytes.append(0x30); return }
        var magnitude = number.magnitude
        if number < 0 { bytes.append(0x2D) }
        var digits:
            (
                UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8
            ) =
                (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            while magnitude > 0 {
                buffer[count] = UInt8(0x30 + magnitude % 10)
                magnitude /= 10
                count += 1
            }
            for position in stride(from: count - 1, through: 0, by: -1) { bytes.append(buffer[position]) }
        }
    }

    private mutating func string(_ text: String) {
        bytes.append(0x22)
        var text = text
        let plain = text.withUTF8 { utf8 in
            for byte in utf8 where byte < 0x20 || byte == 0x22 || byte == 0x5C { return false }
            bytes.append(contentsOf: utf8)
            return true
        }
        if plain {
            bytes.append(0x22)
            return
        }
        for byte in text.utf8 {
            switch byte {
            case 0x22: bytes.append(0x5C); bytes.append(0x22)
            case 0x5C: bytes.append(0x5C); bytes.append(0x5C)
            case 0x0A: bytes.append(0x5C); bytes.append(0x6E)
            case 0x0D: bytes.append(0x5C); bytes.append(0x72)
            case 0x09: bytes.append(0x5C); bytes.append(0x74)
            case 0..<0x20:
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                bytes.append(contentsOf: [0x5C, 0x75, 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
            default: bytes.append(byte)
            }
        }
        bytes.append(0x22)
    }
}
