// Hubcast — `hubcast receive`: read events from a partition.

import ArgumentParser
import EventHubs
import Foundation

struct Receive: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read events from one partition of an Event Hub and print them, one line each.",
        discussion: """
            Each line: sequence number, offset, partition key (or -), and the body as text (hex when it \
            is not UTF-8). Stops after --count events, or runs until interrupted.
            """
    )

    @OptionGroup var target: TargetOptions
    @Option(help: "The partition id.") var partition: String
    @Option(help: "The consumer group.") var consumerGroup = "$Default"
    @Option(help: "Where to start: earliest, latest, sequence:N, offset:X.") var from = "earliest"
    @Option(help: "Stop after this many events (default: run until interrupted).") var count: Int?
    @OptionGroup var logging: LoggingOptions

    func position() throws -> EventHubsEventPosition {
        switch self.from {
        case "earliest": return .earliest
        case "latest": return .latest
        default:
            if self.from.hasPrefix("sequence:"), let number = Int64(self.from.dropFirst("sequence:".count)) {
                return .sequenceNumber(number)
            }
            if self.from.hasPrefix("offset:") { return .offset(String(self.from.dropFirst("offset:".count))) }
            throw ValidationError("--from \(self.from): expected earliest, latest, sequence:N or offset:X")
        }
    }

    func run() async throws {
        guard let target = try self.target.target() else { throw ValidationError(TargetOptions.missing) }
        let options = self.target.clientOptions(self.logging)
        let consumer = try await EventHubsConsumer.connect(
            connectionString: target, consumerGroup: self.consumerGroup, partition: self.partition,
            from: try self.position(), options: options, logger: makeLogger(self.logging))
        var received = 0
        for try await event in consumer {
            let body = String(validating: event.body, as: UTF8.self) ?? event.body.map { String(format: "%02x", $0) }.joined()
            print("\(event.sequenceNumber ?? -1)\t\(event.offset ?? "-")\t\(event.partitionKey ?? "-")\t\(body)")
            flushStandardOutput()
            received += 1
            if let count = self.count, received >= count { break }
        }
        await consumer.close()
    }
}
