// Hubcast — hub and partition properties over `$management` (docs/eventhubs-wire.md#management-reads).

import AMQP
public import Foundation
import Logging

/// What `$management` says about an event hub.
public struct EventHubsHubProperties: Sendable, Hashable {
    public var name: String
    public var createdAt: Date?
    public var partitionIDs: [String]
}

/// What `$management` says about one partition.
public struct EventHubsPartitionProperties: Sendable, Hashable {
    public var hub: String
    public var id: String
    public var beginSequenceNumber: Int64
    public var lastEnqueuedSequenceNumber: Int64
    public var lastEnqueuedOffset: String
    public var lastEnqueuedTime: Date?
    public var isEmpty: Bool
}

/// Reads hub and partition properties. The token travels inside each request (no put-token).
public enum EventHubsManagement {
    /// The hub's properties (its partition ids).
    public static func hubProperties(
        connectionString: EventHubsConnectionString, eventHub: String? = nil, options: EventHubsClientOptions = .init()
    ) async throws -> EventHubsHubProperties {
        let (hub, answer) = try await self.readInEventHubsWords(connectionString, eventHub: eventHub, options: options, partition: nil)
        let ids: [String]
        if case .array(let items)? = answer[.string("partition_ids")] { ids = items.compactMap(\.text) } else { ids = [] }
        return EventHubsHubProperties(
            name: answer[.string("name")]?.text ?? hub,
            createdAt: answer[.string("created_at")]?.integer.map { Date(timeIntervalSince1970: Double($0) / 1000) },
            partitionIDs: ids)
    }

    /// One partition's properties.
    public static func partitionProperties(
        connectionString: EventHubsConnectionString, eventHub: String? = nil, partition: String,
        options: EventHubsClientOptions = .init()
    ) async throws -> EventHubsPartitionProperties {
        let (hub, answer) = try await self.readInEventHubsWords(connectionString, eventHub: eventHub, options: options, partition: partition)
        return EventHubsPartitionProperties(
            hub: hub, id: partition,
            beginSequenceNumber: answer[.string("begin_sequence_number")]?.integer ?? 0,
            lastEnqueuedSequenceNumber: answer[.string("last_enqueued_sequence_number")]?.integer ?? -1,
            lastEnqueuedOffset: answer[.string("last_enqueued_offset")]?.text ?? "-1",
            lastEnqueuedTime: answer[.string("last_enqueued_time_utc")]?.integer.map { Date(timeIntervalSince1970: Double($0) / 1000) },
            isEmpty: answer[.string("is_partition_empty")] == .bool(true))
    }

    /// ``read(_:eventHub:options:partition:)``, its failures as ``EventHubsError``.
    private static func readInEventHubsWords(
        _ string: EventHubsConnectionString, eventHub: String?, options: EventHubsClientOptions, partition: String?
    ) async throws -> (String, AMQPValue) {
        do {
            return try await self.read(string, eventHub: eventHub, options: options, partition: partition)
        } catch {
            throw error.inEventHubsWords
        }
    }

    private static func read(
        _ string: EventHubsConnectionString, eventHub: String?, options: EventHubsClientOptions, partition: String?
    ) async throws -> (String, AMQPValue) {
        guard let hub = eventHub ?? string.eventHub, !hub.isEmpty else {
            throw EventHubsError(.invalidConnectionString, "no event hub: add EntityPath to the connection string or name the hub")
        }
        let configuration = string.amqpConfiguration(
            containerID: "hubcast-mgmt-\(UUID().uuidString.prefix(8).lowercased())",
            trustedCAFile: options.trustedCAFile, traceFrames: options.traceFrames)
        let connection = try await AMQPConnection.connect(configuration)
        do {
            let result = try await self.request(on: connection, hub: hub, string: string, options: options, partition: partition)
            await connection.close()
            return result
        } catch {
            await connection.close()
            throw error
        }
    }

    private static func request(
        on connection: AMQPConnection, hub: String, string: EventHubsConnectionString, options: EventHubsClientOptions,
        partition: String?
    ) async throws -> (String, AMQPValue) {
        let link = try await RequestResponseLink.attach(to: "$management", on: connection)
        let token = try string.token(for: string.audience(hub), lifetime: options.tokenLifetime)
        var request = AMQPMessage(body: .value(.null))
        request.applicationProperties =
            [
                ("operation", .string("READ")), ("name", .string(hub)),
                ("type", .string(partition == nil ? "com.microsoft:eventhub" : "com.microsoft:partition")),
                ("security_token", .string(token.token)),
            ] + (partition.map { [("partition", AMQPValue.string($0))] } ?? [])
        let answer = try await link.request(request)
        let (status, description) = RequestResponseLink.status(of: answer)
        switch status {
        case 200..<300:
            guard case .value(let body) = answer.body else { throw EventHubsError(.authorizationFailed, "the answer has no body") }
            return (hub, body)
        case 401, 403: throw EventHubsError(.unauthorized, "$management refused (\(status)): \(description)")
        case 404: throw EventHubsError(.notFound, "$management: \(description)")
        default: throw EventHubsError(.authorizationFailed, "$management failed (\(status)): \(description)")
        }
    }
}
