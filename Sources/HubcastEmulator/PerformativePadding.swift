// Hubcast — writes every field of outgoing performatives, for clients that decode by position.

import AMQP
import Synchronization

/// A byte-stream hook for the emulator's connections that rewrites each outgoing AMQP frame so its
/// performative (and the error, outcome, source and target lists inside it) carries every field,
/// with nulls where Proton leaves trailing fields out.
///
/// AMQP allows leaving trailing null fields out, and Proton does; the real service writes them all,
/// and Microsoft's pure-Python AMQP layer (azure-eventhub 5.x) indexes fields by position and fails
/// with "list index out of range" without them. Frames that cannot be parsed pass unchanged.
final class PerformativePadding: AMQPByteStreamHook, @unchecked Sendable {
    // @unchecked: a hook is used by one connection's loop thread only.
    private var buffer: [UInt8] = []
    private var headerBytesLeft = 8
    /// Set when the stream is not AMQP frames (for example TLS records): bytes then pass unchanged.
    private var passThrough = false

    /// Field counts of the composite types to pad, by descriptor code (AMQP 1.0 part 2 and 5).
    static let fieldCounts: [UInt64: Int] = [
        0x10: 10, 0x11: 8, 0x12: 14, 0x13: 11, 0x14: 11, 0x15: 6, 0x16: 3, 0x17: 1, 0x18: 1,  // performatives
        0x1d: 3,  // error
        0x23: 2, 0x25: 1, 0x27: 3,  // received, rejected, modified
        0x28: 11, 0x29: 7,  // source, target
        0x40: 1, 0x41: 3, 0x44: 2,  // sasl-mechanisms, sasl-init, sasl-outcome
    ]

    /// Fields with a default in the specification, written out where Proton left them null: a
    /// client that decodes by position gets the value the default stands for.
    static let defaults: [UInt64: [Int: AMQPValue]] = [
        0x10: [2: .uint(4_294_967_295), 3: .ushort(65535)],  // open: max-frame-size, channel-max
        0x11: [4: .uint(4_294_967_295)],  // begin: handle-max
        0x12: [3: .ubyte(2), 4: .ubyte(0), 12: .ulong(0)],  // attach: settle modes, max-message-size
        0x13: [8: .bool(false), 9: .bool(false)],  // flow: drain, echo
        0x14: [5: .bool(false), 8: .bool(false), 9: .bool(false), 10: .bool(false)],  // transfer
        0x15: [3: .bool(false), 5: .bool(false)],  // disposition: settled, batchable
        0x16: [1: .bool(false)],  // detach: closed
        0x28: [3: .uint(0), 4: .symbol("session-end"), 5: .uint(0), 6: .bool(false)],  // source
        0x29: [1: .uint(0), 2: .symbol("session-end"), 3: .uint(0), 4: .bool(false)],  // target
    ]

    func incoming(_ bytes: UnsafeRawBufferPointer) -> [UInt8] { Array(bytes) }

    func outgoing(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        if self.passThrough { return Array(bytes) }
        self.buffer += bytes
        var output: [UInt8] = []
        var position = 0
        while true {
            if self.headerBytesLeft > 0 {
                // A protocol header ("AMQP" + 4 bytes) precedes the SASL and the AMQP frames.
                let take = min(self.headerBytesLeft, self.buffer.count - position)
                output += self.buffer[position..<position + take]
                position += take
                self.headerBytesLeft -= take
                if self.headerBytesLeft > 0 { break }
                continue
            }
            guard self.buffer.count - position >= 8 else { break }
            let size =
                Int(self.buffer[position]) << 24 | Int(self.buffer[position + 1]) << 16
                | Int(self.buffer[position + 2]) << 8 | Int(self.buffer[position + 3])
            guard size >= 8, size <= 1 << 30 else {
                // Not a frame header: stop rewriting and pass everything on as it is.
                self.passThrough = true
                output += self.buffer[position...]
                position = self.buffer.count
                break
            }
            guard self.buffer.count - position >= size else { break }
            let frame = Array(self.buffer[position..<position + size])
            position += size
            output += Self.pad(frame)
            // After the SASL outcome the AMQP protocol header follows.
            if frame.count > 8, frame[5] == 1, Self.descriptor(of: frame) == 0x44 { self.headerBytesLeft = 8 }
        }
        self.buffer.removeFirst(position)
        return output
    }

    private static func descriptor(of frame: [UInt8]) -> UInt64? {
        let bodyStart = Int(frame[4]) * 4
        guard frame.count > bodyStart + 2, frame[bodyStart] == 0x00 else { return nil }
        switch frame[bodyStart + 1] {
        case 0x53: return UInt64(frame[bodyStart + 2])
        case 0x80 where frame.count >= bodyStart + 10:
            return frame[bodyStart + 2..<bodyStart + 10].reduce(0) { $0 << 8 | UInt64($1) }
        default: return nil
        }
    }

    /// The frame with its performative padded; unchanged if it is empty (a heartbeat) or unreadable.
    static func pad(_ frame: [UInt8]) -> [UInt8] {
        let bodyStart = Int(frame[4]) * 4
        guard frame.count > bodyStart, bodyStart >= 8 else { return frame }
        let body = Array(frame[bodyStart...])
        guard let (performative, used) = try? AMQPValue.decodePrefix(body) else { return frame }
        let padded = Self.padded(performative).encoded()
        let payload = body[used...]
        let size = bodyStart + padded.count + payload.count
        var result = [
            UInt8(truncatingIfNeeded: size >> 24), UInt8(truncatingIfNeeded: size >> 16),
            UInt8(truncatingIfNeeded: size >> 8), UInt8(truncatingIfNeeded: size),
        ]
        result += frame[4..<bodyStart]
        result += padded
        result += payload
        return result
    }

    /// A composite value with every field present, recursively for the types in `fieldCounts`.
    static func padded(_ value: AMQPValue) -> AMQPValue {
        switch value {
        case .described(let descriptor, .list(let fields)):
            let code: UInt64? = if case .ulong(let code) = descriptor { code } else { nil }
            var items = fields.map(Self.padded)
            if let code, let count = Self.fieldCounts[code], items.count < count {
                items += Array(repeating: .null, count: count - items.count)
            }
            if let code, let defaults = Self.defaults[code] {
                for (index, value) in defaults where index < items.count && items[index] == .null { items[index] = value }
            }
            return .described(descriptor: descriptor, value: .list(items))
        case .described(let descriptor, let inner):
            return .described(descriptor: descriptor, value: Self.padded(inner))
        case .list(let items):
            return .list(items.map(Self.padded))
        case .map(let pairs):
            return .map(pairs.map { ($0.0, Self.padded($0.1)) })
        default:
            return value
        }
    }
}
