// Hubcast — attribute paths as bytes, for the flat attribute document.

/// An attribute path as bytes: each step as its UTF-8 length (LEB128) followed by its UTF-8 bytes.
///
/// With the lengths in front, one path lies within another (`a.b.c` within `a.b`) exactly when its
/// bytes start with the other's, and two paths are equal exactly when their bytes are; no step can
/// be mistaken for another, whatever characters names hold (dots included).
enum EncodedPath {
    /// Appends one step.
    static func append(_ component: String, to bytes: inout [UInt8]) {
        var component = component
        component.withUTF8 { utf8 in append(utf8, to: &bytes) }
    }

    /// Appends one step given as UTF-8.
    static func append(_ utf8: UnsafeBufferPointer<UInt8>, to bytes: inout [UInt8]) {
        var length = UInt(utf8.count)
        while length >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: length) | 0x80)
            length >>= 7
        }
        bytes.append(UInt8(length))
        bytes.append(contentsOf: utf8)
    }

    static func encode(_ components: [String]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(components.reduce(0) { $0 + $1.utf8.count + 1 })
        for component in components { append(component, to: &bytes) }
        return bytes
    }

    /// The step that starts at `offset`: where its UTF-8 bytes are, and where the next step starts.
    /// The caller passes a step boundary of a well-formed path.
    @inline(__always)
    static func step(_ path: UnsafeBufferPointer<UInt8>, at offset: Int) -> (name: Range<Int>, next: Int) {
        var index = offset
        var length = 0
        var shift = 0
        while true {
            let byte = path[index]
            index += 1
            length |= Int(byte & 0x7F) << shift
            if byte < 0x80 { break }
            shift += 7
        }
        return (index..<(index + length), index + length)
    }

    /// Whether `bytes` are a well-formed path: at least one step, every length within the bytes.
    static func isWellFormed(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard !bytes.isEmpty else { return false }
        var index = 0
        while index < bytes.count {
            var length = 0
            var shift = 0
            while true {
                guard index < bytes.count, shift < 28 else { return false }
                let byte = bytes[index]
                index += 1
                length |= Int(byte & 0x7F) << shift
                if byte < 0x80 { break }
                shift += 7
            }
            guard length <= bytes.count - index else { return false }
            index += length
        }
        return true
    }

    /// The steps, as strings.
    static func components(_ path: UnsafeBufferPointer<UInt8>) -> [String] {
        var result: [String] = []
        var offset = 0
        while offset < path.count {
            let (name, next) = step(path, at: offset)
            result.append(String(decoding: UnsafeBufferPointer(rebasing: path[name]), as: UTF8.self))
            offset = next
        }
        return result
    }

    /// How many leading steps two paths share.
    static func sharedSteps(_ left: UnsafeBufferPointer<UInt8>, _ right: UnsafeBufferPointer<UInt8>) -> Int {
        var shared = 0
        var offset = 0
        while offset < left.count, offset < right.count {
            let (name, next) = step(left, at: offset)
            guard next <= right.count, step(right, at: offset).next == next, equal(left, right, name) else { break }
            shared += 1
            offset = next
        }
        return shared
    }

    /// Whether `path` starts with all of `prefix` (so lies within it, or is it).
    @inline(__always)
    static func starts(_ path: UnsafeBufferPointer<UInt8>, with prefix: UnsafeBufferPointer<UInt8>) -> Bool {
        prefix.count <= path.count && equal(path, prefix, 0..<prefix.count)
    }

    @inline(__always)
    static func equal(_ left: UnsafeBufferPointer<UInt8>, _ right: UnsafeBufferPointer<UInt8>) -> Bool {
        left.count == right.count && equal(left, right, 0..<left.count)
    }

    /// Whether both hold the same bytes in `range`.
    @inline(__always)
    private static func equal(_ left: UnsafeBufferPointer<UInt8>, _ right: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Bool {
        var index = range.lowerBound
        while index + 8 <= range.upperBound {
            let a = UnsafeRawPointer(left.baseAddress! + index).loadUnaligned(as: UInt64.self)
            let b = UnsafeRawPointer(right.baseAddress! + index).loadUnaligned(as: UInt64.self)
            if a != b { return false }
            index += 8
        }
        while index < range.upperBound {
            if left[index] != right[index] { return false }
            index += 1
        }
        return true
    }
}
