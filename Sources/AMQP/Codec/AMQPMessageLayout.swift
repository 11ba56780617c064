// Hubcast — where the sections of an encoded message lie, without decoding them.

/// The sections of an encoded message, found by skipping over their values rather than decoding
/// them: a broker that keeps messages as they arrived can read one section (the message
/// annotations, say) without paying for the rest.
///
/// Scanning checks that the bytes are a sequence of known sections, each a whole value of the
/// right kind (data sections binary, annotation sections maps); it does not check what the
/// sections hold. Decode with ``AMQPMessage/init(decoding:)`` for that.
public struct AMQPMessageLayout: Sendable, Hashable {
    /// The message-annotations map, as a byte range of the scanned bytes.
    public private(set) var messageAnnotations: Range<Int>?
    /// The payload of each data section (the bytes inside the binary), in order.
    public private(set) var dataSections: [Range<Int>] = []

    /// Scans `bytes`; throws ``AMQPError/Code/decodingFailed`` when they are not a sequence of
    /// message sections.
    public init(scanning bytes: [UInt8]) throws {
        var decoder = AMQPDecoder(bytes)
        while !decoder.isAtEnd {
            guard try decoder.readByte() == 0x00 else {
                throw AMQPError(.decodingFailed, "a message section must be a described type")
            }
            let descriptor = try decoder.readValue()
            guard let code = AMQPMessage.sectionCode(descriptor), let section = AMQPMessage.Section(rawValue: code) else {
                throw AMQPError(.decodingFailed, "unknown message section \(descriptor)")
            }
            let start = decoder.index
            let constructor = try decoder.readByte()
            switch section {
            case .data:
                guard constructor == 0xa0 || constructor == 0xb0 else {
                    throw AMQPError(.decodingFailed, "malformed data section")
                }
                try decoder.skipValue(constructor: constructor)
                let header = constructor == 0xa0 ? 2 : 5
                self.dataSections.append(start + header..<decoder.index)
            case .messageAnnotations, .deliveryAnnotations, .applicationProperties, .footer:
                guard constructor == 0xc1 || constructor == 0xd1 else {
                    throw AMQPError(.decodingFailed, "malformed \(section) section")
                }
                try decoder.skipValue(constructor: constructor)
                if section == .messageAnnotations { self.messageAnnotations = start..<decoder.index }
            case .header, .properties, .sequence:
                guard constructor == 0x45 || constructor == 0xc0 || constructor == 0xd0 else {
                    throw AMQPError(.decodingFailed, "malformed \(section) section")
                }
                try decoder.skipValue(constructor: constructor)
            case .value:
                try decoder.skipValue(constructor: constructor)
            }
        }
    }

    /// Decodes the message annotations only (empty when the message has none).
    public func messageAnnotations(of bytes: [UInt8]) throws -> [(AMQPSymbol, AMQPValue)] {
        guard let range = self.messageAnnotations else { return [] }
        var decoder = AMQPDecoder(bytes, from: range.lowerBound, to: range.upperBound)
        return try AMQPMessage.decodeAnnotations(decoder.readValue())
    }
}
