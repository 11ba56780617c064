// Hubcast — a small, strict JSON parser over UTF-8 bytes (RFC 8259).

/// Parses JSON text into a ``JSONValue``.
///
/// Strict: one value, optional whitespace around it, no comments or trailing commas. Integers that
/// fit in `Int64` stay `int`; other numbers become `double`. Nesting is limited to 128 levels so
/// hostile input cannot exhaust the stack. Errors say what was expected and at which column.
package enum JSONParser {
    /// Parses `text`; throws ``ProfileExportError/Code/invalidJSON`` with the column of the problem.
    package static func parse(_ text: String) throws(ProfileExportError) -> JSONValue {
        var text = text
        return try text.withUTF8 { bytes in Result { () throws(ProfileExportError) in try parse(bytes: bytes) } }.get()
    }

    /// Parses UTF-8 bytes.
    package static func parse(bytes: UnsafeBufferPointer<UInt8>) throws(ProfileExportError) -> JSONValue {
        var reader = Reader(bytes: bytes)
        reader.skipWhitespace()
        let value = try reader.value(depth: 0)
        reader.skipWhitespace()
        guard reader.index == bytes.count else { throw reader.failure("expected the end of the JSON text") }
        return value
    }
}

private struct Reader {
    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0

    init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    func failure(_ expectation: String) -> ProfileExportError {
        let found: String
        if index >= bytes.count {
            found = "the end of the text"
        } else {
            let end = min(bytes.count, index + 12)
            found = "'" + String(decoding: UnsafeBufferPointer(rebasing: bytes[index..<end]), as: UTF8.self) + "'"
        }
        return ProfileExportError(.invalidJSON, "\(expectation), found \(found)", at: .init(column: index + 1))
    }

    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    mutating func value(depth: Int) throws(ProfileExportError) -> JSONValue {
        guard depth < 128 else { throw failure("nesting deeper than 128 levels") }
        guard index < bytes.count else { throw failure("expected a value") }
        switch bytes[index] {
        case 0x7B: return try object(depth: depth)
        case 0x5B: return try array(depth: depth)
        case 0x22: return .string(try string())
        case 0x74: try literal("true"); return .bool(true)
        case 0x66: try literal("false"); return .bool(false)
        case 0x6E: try literal("null"); return .null
        case 0x2D, 0x30...0x39: return try number()
        default: throw failure("expected a value")
        }
    }

    mutating func literal(_ word: StaticString) throws(ProfileExportError) {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw failure("expected '\(word)'") }
        for offset in 0..<count where bytes[index + offset] != word.utf8Start[offset] {
            throw failure("expected '\(word)'")
        }
        index += count
    }

    mutating func object(depth: Int) throws(ProfileExportError) -> JSONValue {
        index += 1
        var members = JSONObject()
        skipWhitespace()
        if index < bytes.count, bytes[index] == 0x7D {
            index += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == 0x22 else { throw failure("expected a member name in quotes") }
            let key = try string()
            skipWhitespace()
            guard index < bytes.count, bytes[index] == 0x3A else { throw failure("expected ':' after a member name") }
            index += 1
            skipWhitespace()
            members[key] = try value(depth: depth + 1)
            skipWhitespace()
            guard index < bytes.count else { throw failure("expected ',' or '}'") }
            if bytes[index] == 0x2C { index += 1; continue }
            if bytes[index] == 0x7D { index += 1; return .object(members) }
            throw failure("expected ',' or '}'")
        }
    }

    mutating func array(depth: Int) throws(ProfileExportError) -> JSONValue {
        index += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == 0x5D {
            index += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try value(depth: depth + 1))
            skipWhitespace()
            guard index < bytes.count else { throw failure("expected ',' or ']'") }
            if bytes[index] == 0x2C { index += 1; continue }
            if bytes[index] == 0x5D { index += 1; return .array(elements) }
            throw failure("expected ',' or ']'")
        }
    }

    mutating func string() throws(ProfileExportError) -> String {
        index += 1
        let start = index
        // Fast path: no escapes; plain ASCII (the usual case) needs no UTF-8 check.
        var ascii = true
        while index < bytes.count {
            let byte = bytes[index]
            if byte == 0x22 {
                let text: String
                let content = UnsafeBufferPointer(rebasing: bytes[start..<index])
                if ascii {
                    text = String(unsafeUninitializedCapacity: content.count) { target in target.initialize(from: content).1 }
                } else {
                    guard let valid = String(validating: content, as: UTF8.self) else {
                        index = start
                        throw failure("expected a string of valid UTF-8")
                    }
                    text = valid
                }
                index += 1
                return text
            }
            if byte == 0x5C { break }
            if byte < 0x20 { throw failure("expected no control characters inside a string") }
            if byte >= 0x80 { ascii = false }
            index += 1
        }
        var scalars = Array(UnsafeBufferPointer(rebasing: bytes[start..<index]))
        while index < bytes.count {
            let byte = bytes[index]
            if byte == 0x22 {
                guard let text = String(validating: scalars, as: UTF8.self) else {
                    index = start
                    throw failure("expected a string of valid UTF-8")
                }
                index += 1
                return text
            }
            if byte < 0x20 { throw failure("expected no control characters inside a string") }
            if byte != 0x5C {
                scalars.append(byte)
                index += 1
                continue
            }
            index += 1
            guard index < bytes.count else { break }
            let escape = bytes[index]
            index += 1
            switch escape {
            case 0x22, 0x5C, 0x2F: scalars.append(escape)
            case 0x62: scalars.append(0x08)
            case 0x66: scalars.append(0x0C)
            case 0x6E: scalars.append(0x0A)
            case 0x72: scalars.append(0x0D)
            case 0x74: scalars.append(0x09)
            case 0x75:
                var code = try hex4()
                if (0xD800..<0xDC00).contains(code) {
                    guard index + 1 < bytes.count, bytes[index] == 0x5C, bytes[index + 1] == 0x75 else {
                        throw failure("expected a low surrogate after a high surrogate")
                    }
                    index += 2
                    let low = try hex4()
                    guard (0xDC00..<0xE000).contains(low) else { throw failure("expected a low surrogate") }
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00..<0xE000).contains(code) {
                    throw failure("expected no lone low surrogate")
                }
                scalars.append(contentsOf: String(Character(Unicode.Scalar(code)!)).utf8)
            default:
                index -= 1
                throw failure("expected a valid escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)")
            }
        }
        throw failure("expected '\"' to close the string")
    }

    mutating func hex4() throws(ProfileExportError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw failure("expected four hex digits") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt32
            switch byte {
            case 0x30...0x39: digit = UInt32(byte - 0x30)
            case 0x41...0x46: digit = UInt32(byte - 0x41 + 10)
            case 0x61...0x66: digit = UInt32(byte - 0x61 + 10)
            default: throw failure("expected four hex digits")
            }
            value = value << 4 | digit
            index += 1
        }
        return value
    }

    mutating func number() throws(ProfileExportError) -> JSONValue {
        let start = index
        var isInteger = true
        if bytes[index] == 0x2D { index += 1 }
        guard index < bytes.count, (0x30...0x39).contains(bytes[index]) else { throw failure("expected a digit") }
        if bytes[index] == 0x30 {
            index += 1
        } else {
            while index < bytes.count, (0x30...0x39).contains(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] == 0x2E {
            isInteger = false
            index += 1
            guard index < bytes.count, (0x30...0x39).contains(bytes[index]) else { throw failure("expected a digit after '.'") }
            while index < bytes.count, (0x30...0x39).contains(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] == 0x65 || bytes[index] == 0x45 {
            isInteger = false
            index += 1
            if index < bytes.count, bytes[index] == 0x2B || bytes[index] == 0x2D { index += 1 }
            guard index < bytes.count, (0x30...0x39).contains(bytes[index]) else { throw failure("expected a digit in the exponent") }
            while index < bytes.count, (0x30...0x39).contains(bytes[index]) { index += 1 }
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        if isInteger, let value = Int64(text) { return .int(value) }
        guard let value = Double(text), value.isFinite else { throw failure("expected a number in range") }
        return .double(value)
    }
}
