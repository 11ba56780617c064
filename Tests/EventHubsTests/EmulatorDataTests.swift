import AMQP
import EventHubs
import Foundation
@testable import HubcastEmulator
import Testing

/// The emulator's data directory: events stored by one emulator are served by the next one started
/// on the same directory, exactly as they were.
@Suite struct EmulatorDataTests {
    /// A fresh directory for one test, removed after `body`.
    func withDirectory<T>(_ body: (String) async throws -> T) async throws -> T {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hubcast-data-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        return try await body(directory)
    }

    func configuration(_ directory: String, hubs: [String: Int] = ["hub": 4]) -> EmulatorConfiguration {
        var configuration = EmulatorConfiguration()
        configuration.hubs = hubs
        configuration.dataDirectory = directory
        return configuration
    }

    /// Everything a partition says about an event, to compare two emulators' partitions.
    func fingerprints(_ emulator: HubcastEmulator, hub: String = "hub") -> [[String]] {
        emulator.events(hub: hub).map { partition in
            partition.map { "\($0.sequenceNumber)|\($0.offset)|\($0.enqueuedTime)|\($0.partitionKey ?? "-")|\($0.encoded)" }
        }
    }

    /// Sends on a plain AMQP link (SASL PLAIN) and expects every message accepted.
    func send(_ emulator: HubcastEmulator, target: String, _ messages: [AMQPMessage]) async throws {
        let connection = try await AMQPConnection.connect(
            AMQPConnectionConfiguration(
                host: "127.0.0.1", port: emulator.port, sasl: .plain(username: "RootManageSharedAccessKey", password: "SAS_KEY_VALUE")))
        let sender = try await connection.openSender(target: target)
        let results = try await sender.send(contentsOf: messages)
        #expect(results.allSatisfy { (try? $0.get()) == .accepted })
        await connection.close()
    }

    func logSize(_ directory: String) throws -> Int {
        try #require(try FileManager.default.attributesOfItem(atPath: directory + "/events.log")[.size] as? Int)
    }

    /// Single events, keyed events and a batch envelope, stored, then served by a new emulator with
    /// the same sequence numbers, offsets, enqueued times and partition keys, to `events(hub:)` and
    /// to a consumer; the partitions go on numbering from there.
    @Test func storedEventsSurviveARestart() async throws {
        try await withDirectory { directory in
            let first = try await HubcastEmulator.start(self.configuration(directory))
            let producer = try producer(first)
            for index in 0..<10 { _ = try await producer.send(EventHubsEvent(body: Array("single-\(index)".utf8)), partition: "1") }
            let keyed = (0..<20).map { EventHubsEvent(body: Array("keyed-\($0)".utf8), partitionKey: "customer-\($0 % 3)") }
            #expect(try await producer.send(contentsOf: keyed).allSatisfy { (try? $0.get()) == .accepted })
            await producer.close()
            let batch = (0..<5).map { AMQPMessage(bytes: Array("batched-\($0)".utf8)).encoded() }
            try await self.send(first, target: "hub/Partitions/2", [AMQPMessage(body: .data(batch))])
            let before = self.fingerprints(first)
            #expect(before.map(\.count).reduce(0, +) == 35)
            #expect(first.events(hub: "hub").flatMap { $0 }.contains { $0.partitionKey == "customer-1" })
            await first.stop()

            let second = try await HubcastEmulator.start(self.configuration(directory))
            #expect(self.fingerprints(second) == before)
            let reader = try await consumer(second, partition: "1", from: .earliest)
            for index in 0..<10 {
                let event = try #require(try await reader.next())
                #expect(event.body == Array("single-\(index)".utf8))
                #expect(event.sequenceNumber == Int64(index))
            }
            await reader.close()
            try await self.send(second, target: "hub/Partitions/1", [AMQPMessage(bytes: Array("after".utf8))])
            #expect(second.events(hub: "hub", partition: 1).last?.sequenceNumber == 10)
            await second.stop()
        }
    }

    /// A record cut short at the end of the log (the process killed mid-write) is dropped, the file
    /// truncated back to the last whole record, and the partition goes on from the last whole event.
    @Test func tornLastRecordIsDropped() async throws {
        try await withDirectory { directory in
            let first = try await HubcastEmulator.start(self.configuration(directory))
            try await self.send(first, target: "hub/Partitions/0", (0..<3).map { AMQPMessage(bytes: [UInt8($0)]) })
            let kept = self.fingerprints(first)
            await first.stop()
            let whole = try self.logSize(directory)

            // One more record, written by an emulator, then cut in half by hand.
            let second = try await HubcastEmulator.start(self.configuration(directory))
            try await self.send(second, target: "hub/Partitions/0", [AMQPMessage(bytes: Array("torn".utf8))])
            await second.stop()
            let log = try FileHandle(forUpdating: URL(fileURLWithPath: directory + "/events.log"))
            let grown = try self.logSize(directory)
            #expect(grown > whole)
            try log.truncate(atOffset: UInt64(whole + (grown - whole) / 2))
            try log.close()

            let third = try await HubcastEmulator.start(self.configuration(directory))
            #expect(self.fingerprints(third) == kept)
            #expect(try self.logSize(directory) == whole)
            try await self.send(third, target: "hub/Partitions/0", [AMQPMessage(bytes: Array("next".utf8))])
            #expect(third.events(hub: "hub", partition: 0).map(\.sequenceNumber) == [0, 1, 2, 3])
            await third.stop()
        }
    }

    /// Damage that is not a torn end is an error naming the file and the record's offset.
    @Test func damageInsideTheLogIsAnError() async throws {
        try await withDirectory { directory in
            let first = try await HubcastEmulator.start(self.configuration(directory))
            try await self.send(first, target: "hub/Partitions/0", (0..<3).map { AMQPMessage(bytes: Array("event-\($0)".utf8)) })
            await first.stop()
            // Change one byte of the second of three event records: the body "event-1".
            let path = directory + "/events.log"
            var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            let body = Array("event-1".utf8)
            let start = try #require(bytes.indices.first { bytes[$0...].starts(with: body) })
            bytes[start + body.count - 1] = UInt8(ascii: "X")
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            await #expect { _ = try await HubcastEmulator.start(self.configuration(directory)) } throws: { error in
                guard let error = error as? EmulatorError else { return false }
                return error.code == .dataDamaged && error.message.contains(path) && error.message.contains("offset")
            }
        }
    }

    /// A configuration without one of the log's hubs, or with fewer partitions, is refused; more
    /// hubs or partitions are fine.
    @Test func mismatchingHubsAreAnError() async throws {
        try await withDirectory { directory in
            let first = try await HubcastEmulator.start(self.configuration(directory, hubs: ["hub": 4, "other": 2]))
            try await self.send(first, target: "hub/Partitions/3", [AMQPMessage(bytes: [1])])
            await first.stop()
            for hubs in [["hub": 4], ["hub": 4, "other": 1], ["hub": 2, "other": 2]] {
                await #expect { _ = try await HubcastEmulator.start(self.configuration(directory, hubs: hubs)) } throws: { error in
                    guard let error = error as? EmulatorError else { return false }
                    return error.code == .dataMismatch && error.message.contains(directory)
                }
            }
            let wider = try await HubcastEmulator.start(self.configuration(directory, hubs: ["hub": 8, "other": 2, "third": 1]))
            #expect(wider.events(hub: "hub", partition: 3).count == 1)
            await wider.stop()
        }
    }

    /// One emulator at a time per directory.
    @Test func directoryInUseIsAnError() async throws {
        try await withDirectory { directory in
            let first = try await HubcastEmulator.start(self.configuration(directory))
            await #expect { _ = try await HubcastEmulator.start(self.configuration(directory)) } throws: { error in
                (error as? EmulatorError)?.code == .dataInUse
            }
            await first.stop()
        }
    }

    /// Memory retention limits what is held, not what the file keeps: a restart with more retention
    /// serves every event.
    @Test func theFileKeepsWhatMemoryDrops() async throws {
        try await withDirectory { directory in
            var small = self.configuration(directory)
            small.retainedEventsPerPartition = 5
            let first = try await HubcastEmulator.start(small)
            try await self.send(first, target: "hub/Partitions/0", (0..<30).map { AMQPMessage(bytes: [UInt8($0)]) })
            #expect(first.events(hub: "hub", partition: 0).count < 30)
            await first.stop()
            let second = try await HubcastEmulator.start(self.configuration(directory))
            #expect(second.events(hub: "hub", partition: 0).map(\.sequenceNumber) == (0..<30).map(Int64.init))
            await second.stop()
        }
    }
}

/// The data log's checksum is the standard CRC-32, on both its eight-byte and its byte-wise paths.
@Suite struct DataLogChecksumTests {
    func crc(_ text: String) -> UInt32 {
        Array(text.utf8).withUnsafeBytes { CRC32.checksum($0) }
    }

    @Test func matchesKnownValues() {
        #expect(self.crc("") == 0)
        #expect(self.crc("123456789") == 0xCBF4_3926)
        #expect(self.crc("The quick brown fox jumps over the lazy dog") == 0x414F_A339)
    }

    /// Every length from 0 to 40 (every split between the two paths) against a byte-at-a-time CRC.
    @Test func agreesWithTheBitwiseDefinition() {
        let bytes = (0..<40).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        for length in 0...bytes.count {
            var expected: UInt32 = 0xFFFF_FFFF
            for byte in bytes.prefix(length) {
                expected ^= UInt32(byte)
                for _ in 0..<8 { expected = expected & 1 != 0 ? 0xEDB8_8320 ^ (expected >> 1) : expected >> 1 }
            }
            let checksum = Array(bytes.prefix(length)).withUnsafeBytes { CRC32.checksum($0) }
            #expect(checksum == ~expected, "length \(length)")
        }
    }
}
