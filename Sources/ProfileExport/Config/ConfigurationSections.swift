// Hubcast — the destinations, audiences and dataflows sections of the configuration.

import Foundation
import Yams

extension ConfigReader {
    func destination(_ node: Node, key: String) throws(ProfileExportError) -> Destination {
        let fields = try mapping(node, key: key)
        let id = try nonEmpty(fields["id"], key: "\(key).id", in: node)
        let key = "destinations.\(id)"
        try allow(
            [
                "id", "name", "description", "connectionString", "namespace", "sasKeyName", "sasKey", "eventHubName",
                "includeSegmentNames", "includeSegmentTimestamps",
            ], in: fields, context: key)
        let name = try fields["name"].map { (node) throws(ProfileExportError) in try string(node, key: "\(key).name") }
        let details = try fields["description"].map { (node) throws(ProfileExportError) in try string(node, key: "\(key).description") } ?? ""
        // The connection settings may be left unresolved when only inspecting (see `LoadMode.inspection`).
        let unresolvedBefore = record.unresolved.count
        let hubName = try fields["eventHubName"].map { (node) throws(ProfileExportError) in
            try nonEmpty(node, key: "\(key).eventHubName", in: node, deferrable: true)
        }
        let connection: Destination.Connection
        let separate = ["namespace", "sasKeyName", "sasKey"].filter { fields[$0] != nil }
        if let connectionNode = fields["connectionString"] {
            guard separate.isEmpty else {
                throw failure("has both connectionString and \(separate.joined(separator: ", ")); give one or the other", node, key: key)
            }
            connection = .connectionString(
                try nonEmpty(connectionNode, key: "\(key).connectionString", in: node, deferrable: true),
                eventHubName: hubName)
        } else if !separate.isEmpty {
            let namespace = try nonEmpty(fields["namespace"], key: "\(key).namespace", in: node, deferrable: true)
            let keyName = try nonEmpty(fields["sasKeyName"], key: "\(key).sasKeyName", in: node, deferrable: true)
            let sasKey = try nonEmpty(fields["sasKey"], key: "\(key).sasKey", in: node, deferrable: true)
            guard let hubName else { throw failure("is required with namespace, sasKeyName and sasKey", node, key: "\(key).eventHubName") }
            connection = .fields(namespace: namespace, sasKeyName: keyName, sasKey: sasKey, eventHubName: hubName)
        } else {
            throw failure("needs connectionString, or namespace, sasKeyName, sasKey and eventHubName", node, key: key)
        }
        var destination = Destination(
            id: id, name: name, details: details, connection: connection,
            includeSegmentNames: try bool(fields["includeSegmentNames"], key: "\(key).includeSegmentNames"),
            includeSegmentTimestamps: try bool(fields["includeSegmentTimestamps"], key: "\(key).includeSegmentTimestamps"))
        var unresolved: [String] = []
        for name in record.unresolved[unresolvedBefore...] where !unresolved.contains(name) { unresolved.append(name) }
        destination.unresolvedVariables = unresolved
        return destination
    }

    func audience(_ node: Node, key: String, folder: String) throws(ProfileExportError) -> AudienceDefinition {
        let fields = try mapping(node, key: key)
        let id = try nonEmpty(fields["id"], key: "\(key).id", in: node)
        let key = "audiences.\(id)"
        try allow(["id", "name", "mergePolicy", "rule", "upload", "createdAt", "updatedAt"], in: fields, context: key)
        let origin: AudienceDefinition.Origin
        switch (fields["rule"], fields["upload"]) {
        case (.some, .some): throw failure("has both rule and upload; an audience has one origin", node, key: key)
        case (let ruleNode?, nil):
            let source = try string(ruleNode, key: "\(key).rule")
            do throws(ProfileExportError) {
                origin = .rule(try AudienceRule(parsing: source))
            } catch {
                let line = (ruleNode.mark?.line ?? 0) + max(0, (error.location?.line ?? 1) - 1)
                var location = ProfileExportError.Location(file: file, line: line, key: scrub("\(key).rule", line: ruleNode.mark?.line))
                location.column = error.location?.line == 1 || error.location?.line == nil ? nil : error.location?.column
                let within = error.location.map { " (rule line \($0.line ?? 1), column \($0.column ?? 1))" } ?? ""
                throw ProfileExportError(
                    .invalidConfiguration, scrub("rule does not parse\(within): \(error.message)", line: ruleNode.mark?.line),
                    at: location)
            }
        case (nil, let uploadNode?):
            let path = try nonEmpty(uploadNode, key: "\(key).upload", in: node)
            let absolute = path.hasPrefix("/") ? path : URL(fileURLWithPath: folder).appendingPathComponent(path).standardizedFileURL.path
            record.uploads.append((absolute, uploadNode.mark?.line, "\(key).upload"))
            origin = .upload(file: absolute)
        case (nil, nil): origin = .upstream
        }
        let mergePolicy =
            try fields["mergePolicy"].map { (policy) throws(ProfileExportError) in try nonEmpty(policy, key: "\(key).mergePolicy", in: node) }
            ?? "default"
        return AudienceDefinition(
            id: id, name: try fields["name"].map { (name) throws(ProfileExportError) in try string(name, key: "\(key).name") },
            mergePolicy: mergePolicy, origin: origin,
            createdAt: try timestamp(fields["createdAt"], key: "\(key).createdAt"),
            updatedAt: try timestamp(fields["updatedAt"], key: "\(key).updatedAt"))
    }

    func dataflow(_ node: Node, key: String) throws(ProfileExportError) -> Dataflow {
        let fields = try mapping(node, key: key)
        let id = try nonEmpty(fields["id"], key: "\(key).id", in: node)
        let key = "dataflows.\(id)"
        try allow(["id", "destination", "audiences", "attributes", "partitionKey"], in: fields, context: key)
        let destination = try nonEmpty(fields["destination"], key: "\(key).destination", in: node)
        let audiences = try list(fields["audiences"], key: "\(key).audiences") { (item, itemKey) throws(ProfileExportError) -> MappedAudience in
            if case .scalar = item { return MappedAudience(id: try nonEmpty(item, key: itemKey, in: item)) }
            let mapped = try mapping(item, key: itemKey)
            try allow(["id", "mappingCreatedAt", "mappingUpdatedAt"], in: mapped, context: itemKey)
            return MappedAudience(
                id: try nonEmpty(mapped["id"], key: "\(itemKey).id", in: item),
                mappingCreatedAt: try timestamp(mapped["mappingCreatedAt"], key: "\(itemKey).mappingCreatedAt"),
                mappingUpdatedAt: try timestamp(mapped["mappingUpdatedAt"], key: "\(itemKey).mappingUpdatedAt"))
        }
        guard !audiences.isEmpty else { throw failure("maps no audiences", fields["audiences"] ?? node, key: "\(key).audiences") }
        var seen = Set<String>()
        for (mapped, item) in audiences where !seen.insert(mapped.id).inserted {
            throw failure("maps audience '\(mapped.id)' twice", item, key: "\(key).audiences")
        }
        let attributes = try list(fields["attributes"], key: "\(key).attributes") { (item, itemKey) throws(ProfileExportError) -> AttributePath in
            let text = try string(item, key: itemKey)
            do throws(ProfileExportError) { return try AttributePath(text) } catch { throw failure(error.message, item, key: itemKey) }
        }
        let partitionKey = try fields["partitionKey"].map { (node) throws(ProfileExportError) in
            try nonEmpty(node, key: "\(key).partitionKey", in: node)
        }
        return Dataflow(
            id: id, destination: destination, audiences: audiences.map(\.0), attributes: attributes.map(\.0),
            partitionKey: partitionKey)
    }
}
