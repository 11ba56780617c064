import AMQP
@testable import HubcastEmulator
import Testing

@Suite struct PaddingTests {
    /// A frame: size, data offset 2, type, channel, then the body.
    func frame(_ body: [UInt8], type: UInt8 = 0) -> [UInt8] {
        let size = 8 + body.count
        return [
            UInt8(size >> 24), UInt8(truncatingIfNeeded: size >> 16), UInt8(truncatingIfNeeded: size >> 8),
            UInt8(truncatingIfNeeded: size), 2, type, 0, 0,
        ] + body
    }

    @Test func trimmedAttachGetsEveryFieldAndPayloadsSurvive() throws {
        let source = AMQPValue.described(descriptor: .ulong(0x28), value: .list([.string("hub")]))
        let attach = AMQPValue.described(descriptor: .ulong(0x12), value: .list([.string("link"), .uint(0), .bool(false), .null, .null, source]))
        let payload: [UInt8] = [0xde, 0xad]
        let padded = PerformativePadding.pad(self.frame(attach.encoded() + payload))
        let (value, used) = try AMQPValue.decodePrefix(Array(padded[8...]))
        guard case .described(_, .list(let fields)) = value else {
            Issue.record("not a described list")
            return
        }
        #expect(fields.count == 14)
        guard case .described(_, .list(let sourceFields)) = fields[5] else {
            Issue.record("source lost")
            return
        }
        #expect(sourceFields.count == 11)
        #expect(Array(padded[(8 + used)...]) == payload)
        #expect(Int(padded[3]) == padded.count)
    }

    @Test func streamSplitAcrossCallsIsReassembled() {
        let hook = PerformativePadding()
        let close = AMQPValue.described(descriptor: .ulong(0x18), value: .list([])).encoded()
        let stream: [UInt8] = Array("AMQP".utf8) + [0, 1, 0, 0] + self.frame(close) + self.frame([])
        var output: [UInt8] = []
        for byte in stream { output += [byte].withUnsafeBytes { hook.outgoing($0) } }
        #expect(Array(output.prefix(8)) == Array(stream.prefix(8)))
        #expect(output.count == stream.count + 3)  // close: list0 became a list8 holding one null
        #expect(Array(output.suffix(8)) == self.frame([]))  // a heartbeat passes unchanged
    }

    /// Bytes that are not AMQP frames (a TLS record, say) pass unchanged instead of being held back.
    @Test func nonFramesPassThrough() {
        let hook = PerformativePadding()
        let tlsLike: [UInt8] = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]
        let first = tlsLike.withUnsafeBytes { hook.outgoing($0) }
        let second = [UInt8](repeating: 7, count: 10).withUnsafeBytes { hook.outgoing($0) }
        #expect(first == tlsLike)
        #expect(second == [UInt8](repeating: 7, count: 10))
    }
}
