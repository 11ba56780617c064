// Hubcast — `hubcast hub info`: hub and partition properties.

import ArgumentParser
import EventHubs

struct Hub: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect an event hub.", subcommands: [Info.self])

    struct Info: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the hub's partitions and, for each, its sequence numbers and last enqueued time.")

        @OptionGroup var target: TargetOptions
        @OptionGroup var logging: LoggingOptions

        func run() async throws {
            guard let target = try self.target.target() else { throw ValidationError(TargetOptions.missing) }
            let options = self.target.clientOptions(self.logging)
            let hub = try await EventHubsManagement.hubProperties(connectionString: target, options: options)
            print("hub \(hub.name): \(hub.partitionIDs.count) partitions")
            for id in hub.partitionIDs {
                let partition = try await EventHubsManagement.partitionProperties(
                    connectionString: target, partition: id, options: options)
                let last =
                    partition.isEmpty
                    ? "empty"
                    : "sequence \(partition.beginSequenceNumber)...\(partition.lastEnqueuedSequenceNumber), last offset \(partition.lastEnqueuedOffset), last enqueued \(partition.lastEnqueuedTime.map { "\($0)" } ?? "?")"
                print("  partition \(id): \(last)")
            }
        }
    }
}
