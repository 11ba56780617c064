// Hubcast — AMQP 1.0 messages (AMQP 1.0 part 3, §3.2).

/// An AMQP message: header, annotations, properties, application properties, body and footer.
public struct AMQPMessage: Hashable, Sendable {
    /// The message body.
    public enum Body: Hashable, Sendable {
        /// No body section.
        case empty
        /// One or more `data` sections (opaque bytes). Event Hubs events use one.
        case data([[UInt8]])
        /// One `amqp-value` section.
        case value(AMQPValue)
        /// One or more `amqp-sequence` sections.
        case sequence([[AMQPValue]])

        /// A body of a single data section.
        public static func bytes(_ bytes: [UInt8]) -> Body { .data([bytes]) }
    }

    /// The header section (AMQP 1.0 §3.2.1).
    public struct Header: Hashable, Sendable {
        public var durable: Bool = false
        public var priority: UInt8 = 4
        /// Time to live in milliseconds.
        public var ttl: UInt32?
        public var firstAcquirer: Bool = false
        public var deliveryCount: UInt32 = 0

        public init(durable: Bool = false, priority: UInt8 = 4, ttl: UInt32? = nil) {
            self.durable = durable
            self.priority = priority
            self.ttl = ttl
        }
    }

    /// The properties section (AMQP 1.0 §3.2.4).
    public struct Properties: Hashable, Sendable {
        public var messageID: AMQPValue?
        public var userID: [UInt8]?
        public var to: String?
        public var subject: String?
        public var replyTo: String?
        public var correlationID: AMQPValue?
        public var contentType: String?
        public var contentEncoding: String?
        /// Milliseconds since the Unix epoch.
        public var absoluteExpiryTime: Int64?
        /// Milliseconds since the Unix epoch.
        public var creationTime: Int64?
        public var groupID: String?
        public var groupSequence: UInt32?
        public var replyToGroupID: String?

        public init() {}

        /// How many leading fields are written: up to the last one present.
        var fieldCount: Int {
            if self.replyToGroupID != nil { return 13 }
            if self.groupSequence != nil { return 12 }
            if self.groupID != nil { return 11 }
            if self.creationTime != nil { return 10 }
            if self.absoluteExpiryTime != nil { return 9 }
            if self.contentEncoding != nil { return 8 }
            if self.contentType != nil { return 7 }
            if self.correlationID != nil { return 6 }
            if self.replyTo != nil { return 5 }
            if self.subject != nil { return 4 }
            if self.to != nil { return 3 }
            if self.userID != nil { return 2 }
            return self.messageID != nil ? 1 : 0
        }
    }

    /// The sections other than the body, shared between copies until one of them changes
    /// (copy on write): a message is cheap to pass around.
    private final class Sections: @unchecked Sendable {
        // @unchecked: an instance is changed only while uniquely referenced (see `unique`).
        var header: Header?
        var deliveryAnnotations: [(AMQPSymbol, AMQPValue)] = []
        var messageAnnotations: [(AMQPSymbol, AMQPValue)] = []
        var properties = Properties()
        var applicationProperties: [(String, AMQPValue)] = []
        var footer: [(AMQPSymbol, AMQPValue)] = []

        init() {}

        func copy() -> Sections {
            let copy = Sections()
            if self === Sections.empty { return copy }
            copy.header = self.header
            copy.deliveryAnnotations = self.deliveryAnnotations
            copy.messageAnnotations = self.messageAnnotations
            copy.properties = self.properties
            copy.applicationProperties = self.applicationProperties
            copy.footer = self.footer
            return copy
        }

        /// Shared by every message that has only a body.
        static let empty = Sections()
    }

    private var sections: Sections
    /// The message body.
    public var body: Body

    private var unique: Sections {
        mutating get {
            if !isKnownUniquelyReferenced(&self.sections) { self.sections = self.sections.copy() }
            return self.sections
        }
    }

    /// The header section, or nil when the message has none.
    public var header: Header? {
        get { self.sections.header }
        _modify { yield &self.unique.header }
    }
    /// Delivery annotations (symbol keys), for the next hop only.
    public var deliveryAnnotations: [(AMQPSymbol, AMQPValue)] {
        get { self.sections.deliveryAnnotations }
        _modify { yield &self.unique.deliveryAnnotations }
    }
    /// Message annotations (symbol keys), such as `x-opt-partition-key`.
    public var messageAnnotations: [(AMQPSymbol, AMQPValue)] {
        get { self.sections.messageAnnotations }
        _modify { yield &self.unique.messageAnnotations }
    }
    /// The properties section (message id, content type, …).
    public var properties: Properties {
        get { self.sections.properties }
        _modify { yield &self.unique.properties }
    }
    /// Application properties: string keys, simple values.
    public var applicationProperties: [(String, AMQPValue)] {
        get { self.sections.applicationProperties }
        _modify { yield &self.unique.applicationProperties }
    }
    /// The footer (symbol keys).
    public var footer: [(AMQPSymbol, AMQPValue)] {
        get { self.sections.footer }
        _modify { yield &self.unique.footer }
    }

    /// Makes a message with the given body and no other sections.
    public init(body: Body = .empty) {
        self.sections = .empty
        self.body = body
    }

    /// Makes a message whose body is one data section.
    public init(bytes: [UInt8]) { self.init(body: .data([bytes])) }

    /// Makes a message whose body is an `amqp-value` string.
    public init(text: String) { self.init(body: .value(.string(text))) }

    /// The first message annotation named `key`.
    public func annotation(_ key: AMQPSymbol) -> AMQPValue? {
        self.messageAnnotations.first { $0.0 == key }?.1
    }

    /// The first application property named `key`.
    public func applicationProperty(_ key: String) -> AMQPValue? {
        self.applicationProperties.first { $0.0 == key }?.1
    }

    /// The bytes of the first data section, if the body has one.
    public var bodyBytes: [UInt8]? {
        if case .data(let sections) = self.body { return sections.first }
        return nil
    }

    public static func == (lhs: AMQPMessage, rhs: AMQPMessage) -> Bool {
        lhs.encoded() == rhs.encoded()
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(self.encoded()) }
}

// MARK: - Encoding

extension AMQPMessage {
    enum Section: UInt64 {
        case header = 0x70, deliveryAnnotations, messageAnnotations, properties, applicationProperties
        case data, sequence, value, footer
    }

    /// Encodes the message as its bare sequence of sections, as carried in a transfer.
    public func encoded() -> [UInt8] {
        var encoder = AMQPEncoder(capacity: 64 + (self.bodyBytes?.count ?? 64))
        self.encode(into: &encoder)
        return encoder.bytes
    }

    func encode(into encoder: inout AMQPEncoder) {
        let sections = self.sections
        if let header = sections.header {
            encoder.appendDescriptor(Section.header.rawValue)
            encoder.appendFields([
                header.durable ? .bool(true) : nil,
                header.priority == 4 ? nil : .ubyte(header.priority),
                header.ttl.map(AMQPValue.uint),
                header.firstAcquirer ? .bool(true) : nil,
                header.deliveryCount == 0 ? nil : .uint(header.deliveryCount),
            ])
        }
        Self.appendAnnotations(sections.deliveryAnnotations, section: .deliveryAnnotations, into: &encoder)
        Self.appendAnnotations(sections.messageAnnotations, section: .messageAnnotations, into: &encoder)
        let fieldCount = sections.properties.fieldCount
        if fieldCount > 0 {
            let p = sections.properties
            encoder.appendDescriptor(Section.properties.rawValue)
            // Written field by field (no temporary array): this runs once per message sent.
            encoder.appendCompound(count: fieldCount, small: 0xc0, large: 0xd0) { body in
                body.append(p.messageID ?? .null)
                guard fieldCount > 1 else { return }
                body.append(p.userID.map(AMQPValue.binary) ?? .null)
                guard fieldCount > 2 else { return }
                body.appendString(p.to)
                guard fieldCount > 3 else { return }
                body.appendString(p.subject)
                guard fieldCount > 4 else { return }
                body.appendString(p.replyTo)
                guard fieldCount > 5 else { return }
                body.append(p.correlationID ?? .null)
                guard fieldCount > 6 else { return }
                body.appendSymbol(p.contentType)
                guard fieldCount > 7 else { return }
                body.appendSymbol(p.contentEncoding)
                guard fieldCount > 8 else { return }
                body.append(p.absoluteExpiryTime.map(AMQPValue.timestamp) ?? .null)
                guard fieldCount > 9 else { return }
                body.append(p.creationTime.map(AMQPValue.timestamp) ?? .null)
                guard fieldCount > 10 else { return }
                body.appendString(p.groupID)
                guard fieldCount > 11 else { return }
                body.append(p.groupSequence.map(AMQPValue.uint) ?? .null)
                guard fieldCount > 12 else { return }
                body.appendString(p.replyToGroupID)
            }
        }
        if !sections.applicationProperties.isEmpty {
            encoder.appendDescriptor(Section.applicationProperties.rawValue)
            encoder.appendMap(sections.applicationProperties.map { (.string($0.0), $0.1) })
        }
        switch self.body {
        case .empty:
            break
        case .data(let sections):
            for section in sections {
                encoder.appendDescriptor(Section.data.rawValue)
                encoder.appendBinary(section)
            }
        case .value(let value):
            encoder.appendDescriptor(Section.value.rawValue)
            encoder.append(value)
        case .sequence(let sections):
            for section in sections {
                encoder.appendDescriptor(Section.sequence.rawValue)
                encoder.appendList(section)
            }
        }
        Self.appendAnnotations(sections.footer, section: .footer, into: &encoder)
    }

    private static func appendAnnotations(
        _ pairs: [(AMQPSymbol, AMQPValue)], section: Section, into encoder: inout AMQPEncoder
    ) {
        guard !pairs.isEmpty else { return }
        encoder.appendDescriptor(section.rawValue)
        encoder.appendMap(pairs.map { (.symbol($0.0), $0.1) })
    }
}

// MARK: - Decoding

extension AMQPMessage {
    /// Decodes a message from the bytes of a transfer (a sequence of sections).
    ///
    /// Throws ``AMQPError/Code/decodingFailed`` when the bytes are not a valid message.
    public init(decoding bytes: [UInt8]) throws {
        self.init()
        var decoder = AMQPDecoder(bytes)
        var dataSections: [[UInt8]] = []
        var sequenceSections: [[AMQPValue]] = []
        while !decoder.isAtEnd {
            guard case .described(let descriptor, let value) = try decoder.readValue() else {
                throw AMQPError(.decodingFailed, "a message section must be a described type")
            }
            guard let code = Self.sectionCode(descriptor), let section = Section(rawValue: code) else {
                throw AMQPError(.decodingFailed, "unknown message section \(descriptor)")
            }
            switch section {
            case .header: self.header = try Self.decodeHeader(value)
            case .deliveryAnnotations: self.deliveryAnnotations = try Self.decodeAnnotations(value)
            case .messageAnnotations: self.messageAnnotations = try Self.decodeAnnotations(value)
            case .properties: self.properties = try Self.decodeProperties(value)
            case .applicationProperties:
                guard case .map(let pairs) = value else { throw Self.bad("application-properties") }
                self.applicationProperties = try pairs.map { key, item in
                    guard case .string(let name) = key else { throw Self.bad("application-properties key") }
                    return (name, item)
                }
            case .data:
                guard case .binary(let data) = value else { throw Self.bad("data") }
                dataSections.append(data)
            case .sequence:
                guard case .list(let items) = value else { throw Self.bad("amqp-sequence") }
                sequenceSections.append(items)
            case .value: self.body = .value(value)
            case .footer: self.footer = try Self.decodeAnnotations(value)
            }
        }
        if !dataSections.isEmpty { self.body = .data(dataSections) }
        if !sequenceSections.isEmpty { self.body = .sequence(sequenceSections) }
    }

    static func sectionCode(_ descriptor: AMQPValue) -> UInt64? {
        switch descriptor {
        case .ulong(let code): return code
        case .symbol(let name):
            let names = [
                "amqp:header:list": Section.header, "amqp:delivery-annotations:map": .deliveryAnnotations,
                "amqp:message-annotations:map": .messageAnnotations, "amqp:properties:list": .properties,
                "amqp:application-properties:map": .applicationProperties, "amqp:data:binary": .data,
                "amqp:amqp-sequence:list": .sequence, "amqp:amqp-value:*": .value, "amqp:footer:map": .footer,
            ]
            return names[name.name]?.rawValue
        default: return nil
        }
    }

    private static func bad(_ section: String) -> AMQPError {
        AMQPError(.decodingFailed, "malformed \(section) section")
    }

    private static func decodeHeader(_ value: AMQPValue) throws -> Header {
        guard case .list(let f) = value else { throw Self.bad("header") }
        var header = Header()
        func field(_ i: Int) -> AMQPValue { i < f.count ? f[i] : .null }
        if case .bool(let flag) = field(0) { header.durable = flag }
        if case .ubyte(let n) = field(1) { header.priority = n }
        if case .uint(let n) = field(2) { header.ttl = n }
        if case .bool(let flag) = field(3) { header.firstAcquirer = flag }
        if case .uint(let n) = field(4) { header.deliveryCount = n }
        return header
    }

    static func decodeAnnotations(_ value: AMQPValue) throws -> [(AMQPSymbol, AMQPValue)] {
        guard case .map(let pairs) = value else { throw Self.bad("annotations") }
        return try pairs.map { key, item in
            switch key {
            case .symbol(let symbol): return (symbol, item)
            case .string(let text): return (AMQPSymbol(text), item)
            default: throw Self.bad("annotations key")
            }
        }
    }

    private static func decodeProperties(_ value: AMQPValue) throws -> Properties {
        guard case .list(let f) = value else { throw Self.bad("properties") }
        func field(_ i: Int) -> AMQPValue? {
            guard i < f.count, f[i] != .null else { return nil }
            return f[i]
        }
        var p = Properties()
        p.messageID = field(0)
        if case .binary(let bytes)? = field(1) { p.userID = bytes }
        p.to = field(2)?.text
        p.subject = field(3)?.text
        p.replyTo = field(4)?.text
        p.correlationID = field(5)
        p.contentType = field(6)?.text
        p.contentEncoding = field(7)?.text
        p.absoluteExpiryTime = field(8)?.integer
        p.creationTime = field(9)?.integer
        p.groupID = field(10)?.text
        if case .uint(let n)? = field(11) { p.groupSequence = n }
        p.replyToGroupID = field(12)?.text
        return p
    }
}
