import AMQP
import Testing

/// A value of every AMQP type, including nested compounds.
let everyValue: [AMQPValue] = [
    .null, .bool(true), .bool(false), .ubyte(200), .ushort(65000), .uint(0), .uint(7), .uint(4_000_000_000),
    .ulong(0), .ulong(9), .ulong(UInt64.max), .byte(-5), .short(-30000), .int(-3), .int(2_000_000_000),
    .long(-1), .long(Int64.min), .float(1.5), .double(-2.25), .char("é"), .timestamp(1_764_000_000_000),
    .uuid(.init(Array(0..<16))), .binary([]), .binary(Array(repeating: 0xab, count: 300)), .string(""),
    .string("héllo"), .string(String(repeating: "x", count: 70000)), .symbol("amqp:not-found"),
    .list([]), .list([.int(1), .string("two"), .list([.null])]),
    .map([(.symbol("a"), .int(1)), (.string("b"), .map([(.long(2), .bool(true))]))]),
    .array([.int(1), .int(2), .int(3)]), .array([.symbol("x"), .symbol("yz")]), .array([.string("s")]),
    .array([.ulong(1), .ulong(2)]), .array([.long(5)]), .array([.bool(true), .bool(false)]), .array([.double(1)]),
    .described(descriptor: .symbol("apache.org:selector-filter:string"), value: .string("amqp.annotation.x-opt-offset > '0'")),
    .described(descriptor: .ulong(0x70), value: .list([.bool(true)])),
]

@Suite struct CodecTests {
    @Test(arguments: everyValue)
    func valueRoundTrips(_ value: AMQPValue) throws {
        #expect(try AMQPValue(decoding: value.encoded()) == value)
    }

    @Test func arraysOfEveryShapeRoundTrip() throws {
        let selector = AMQPValue.symbol("apache.org:selector-filter:string")
        let samples: [AMQPValue] = [
            .array([]),
            .array([.described(descriptor: selector, value: .string("a")), .described(descriptor: selector, value: .string("b"))]),
            .array([.array([.int(1), .int(2)]), .array([.int(3)])]),
            .array([.ubyte(1), .ubyte(2)]), .array([.timestamp(5), .timestamp(6)]), .array([.uuid(.init(Array(0..<16)))]),
            .array([.map([(.symbol("k"), .int(1))])]), .array([.list([.null]), .list([])]),
        ]
        for value in samples { #expect(try AMQPValue(decoding: value.encoded()) == value, "\(value)") }
    }

    /// An array must hold one type; mixed elements cannot be an AMQP array and go as a list.
    @Test func mixedArraysAreWrittenAsLists() throws {
        let mixed = AMQPValue.array([.null, .string("x")])
        #expect(try AMQPValue(decoding: mixed.encoded()) == .list([.null, .string("x")]))
    }

    @Test func compactEncodings() {
        #expect(AMQPValue.uint(0).encoded() == [0x43])
        #expect(AMQPValue.ulong(5).encoded() == [0x53, 5])
        #expect(AMQPValue.string("ab").encoded() == [0xa1, 2, 0x61, 0x62])
        #expect(AMQPValue.list([]).encoded() == [0x45])
        #expect(AMQPValue.bool(true).encoded() == [0x41])
    }

    @Test func malformedBytesThrowAndNeverTrap() {
        let samples: [[UInt8]] = [
            [], [0xa1], [0xa1, 5, 0x61], [0xb0, 0xff, 0xff, 0xff, 0xff], [0xc0, 10, 3, 0x41], [0xd1, 0, 0, 0, 4, 0, 0, 0, 1, 0x41],
            [0xff], [0x00], [0xa1, 2, 0xff, 0xfe], [0xc1, 3, 3, 0x41, 0x41, 0x41], [0xe0, 2, 5, 0x71],
        ]
        for bytes in samples {
            #expect(throws: AMQPError.self) { try AMQPValue(decoding: bytes) }
        }
        #expect(throws: AMQPError.self) { try AMQPMessage(decoding: [0x00, 0x53, 0x99, 0x40]) }
        #expect(throws: AMQPError.self) { try AMQPMessage(decoding: [0x41]) }
    }

    @Test func randomBytesNeverTrap() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let bytes = (0..<Int.random(in: 0..<40, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            _ = try? AMQPValue(decoding: bytes)
            _ = try? AMQPMessage(decoding: bytes)
            _ = try? AMQPMessageLayout(scanning: bytes)
        }
    }

    /// A layout finds the sections without decoding them: the annotations decode on their own and
    /// the data ranges hold the payloads.
    @Test func layoutFindsSectionsWithoutDecoding() throws {
        let message = fullMessage(body: .data([[1, 2], Array(repeating: 7, count: 300)]))
        let bytes = message.encoded()
        let layout = try AMQPMessageLayout(scanning: bytes)
        #expect(layout.dataSections.map { Array(bytes[$0]) } == [[1, 2], Array(repeating: 7, count: 300)])
        let annotations = try layout.messageAnnotations(of: bytes)
        #expect(annotations.map(\.0.name) == ["x-opt-partition-key", "x-opt-offset"])
        #expect(annotations.first?.1 == .string("profile-42"))
        for value in everyValue {
            #expect(throws: Never.self, "\(value)") { try AMQPMessageLayout(scanning: fullMessage(body: .value(value)).encoded()) }
        }
        let plain = AMQPMessage(text: "hi").encoded()
        #expect(try AMQPMessageLayout(scanning: plain).messageAnnotations == nil)
        #expect(try AMQPMessageLayout(scanning: plain).dataSections.isEmpty)
        // Not sections, a truncated section, a data section that is not binary.
        #expect(throws: AMQPError.self) { try AMQPMessageLayout(scanning: [0x41]) }
        #expect(throws: AMQPError.self) { try AMQPMessageLayout(scanning: Array(bytes.dropLast())) }
        #expect(throws: AMQPError.self) { try AMQPMessageLayout(scanning: [0x00, 0x53, 0x75, 0xa1, 0x01, 0x61]) }
    }

    @Test func messageWithEverySectionRoundTrips() throws {
        let message = fullMessage(body: .data([[1, 2], [3]]))
        #expect(try AMQPMessage(decoding: message.encoded()) == message)
    }
}

/// A message with every section and property set.
func fullMessage(body: AMQPMessage.Body) -> AMQPMessage {
    var message = AMQPMessage(body: body)
    message.header = .init(durable: true, priority: 7, ttl: 60000)
    message.deliveryAnnotations = [("x-opt-lock-token", .uuid(.init(Array(repeating: 1, count: 16))))]
    message.messageAnnotations = [("x-opt-partition-key", .string("profile-42")), ("x-opt-offset", .long(77))]
    message.properties.messageID = .string("m-1")
    message.properties.userID = [0x75]
    message.properties.to = "hub"
    message.properties.subject = "subject"
    message.properties.replyTo = "replies"
    message.properties.correlationID = .ulong(99)
    message.properties.contentType = "application/json"
    message.properties.contentEncoding = "utf-8"
    message.properties.absoluteExpiryTime = 1_800_000_000_000
    message.properties.creationTime = 1_700_000_000_000
    message.properties.groupID = "group"
    message.properties.groupSequence = 3
    message.properties.replyToGroupID = "reply-group"
    message.applicationProperties = [("tenant", .string("acme")), ("count", .int(3)), ("ok", .bool(true))]
    message.footer = [("x-checksum", .binary([9, 9]))]
    return message
}

@Suite struct HostileInputTests {
    /// A peer must not crash the process with deeply nested input (each level costs it one byte).
    @Test func deepNestingIsRefusedNotACrash() {
        let descriptors = [UInt8](repeating: 0x00, count: 200_000)
        #expect(throws: AMQPError.self) { try AMQPValue(decoding: descriptors) }
        #expect(throws: AMQPError.self) { try AMQPMessage(decoding: descriptors) }
        // Nested lists: 0xc0 size count, 100,000 levels deep.
        var lists: [UInt8] = []
        for _ in 0..<100_000 { lists += [0xc0, 0xff, 0x01] }
        #expect(throws: AMQPError.self) { try AMQPValue(decoding: lists) }
        // Arrays of arrays.
        var arrays: [UInt8] = []
        for _ in 0..<100_000 { arrays += [0xf0, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x01] }
        #expect(throws: AMQPError.self) { try AMQPValue(decoding: arrays) }
    }

    @Test func reasonableNestingStillDecodes() throws {
        var value = AMQPValue.int(1)
        for _ in 0..<20 { value = .list([value]) }
        #expect(try AMQPValue(decoding: value.encoded()) == value)
    }
}
