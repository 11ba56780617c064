// Hubcast — why a profile was (or was not) exported to a dataflow (docs/exports.md#when-an-update-is-exported).

/// What made an update export-worthy for a dataflow.
public enum ExportTrigger: Sendable, Hashable, CustomStringConvertible {
    /// The profile joined (`realized`) or left (`exited`) a mapped audience (docs/exports.md#membership-changes).
    case membership(audienceId: String, status: MembershipStatus)
    /// Identities were added or removed while the profile is in a mapped audience (docs/exports.md#identity-changes).
    case identity(added: [Identity], removed: [Identity])
    /// Mapped attributes were written or removed while in a mapped audience (docs/exports.md#attribute-changes).
    case attribute(paths: [AttributePath])
    /// The profile already qualified for audiences newly mapped to the dataflow (docs/exports.md#backfill).
    case backfill(audienceIds: [String])

    public var description: String {
        switch self {
        case .membership(let audience, let status): "membership: \(status) in mapped audience \(audience)"
        case .identity(let added, let removed):
            "identity: " + (added.isEmpty ? "" : "added \(added.map(\.description).joined(separator: ", "))")
                + (added.isEmpty || removed.isEmpty ? "" : "; ")
                + (removed.isEmpty ? "" : "removed \(removed.map(\.description).joined(separator: ", "))")
        case .attribute(let paths): "attribute: wrote mapped \(paths.map(\.description).joined(separator: ", "))"
        case .backfill(let audiences): "backfill: already qualified for newly mapped \(audiences.joined(separator: ", "))"
        }
    }

    /// The trigger as JSON (`{"type": "membership", "audience": …, "status": …}` and so on): what
    /// ``write(to:)`` writes, read back.
    public var json: JSONValue {
        var writer = JSONWriter(capacity: 128)
        write(to: &writer)
        return writer.bytes.withUnsafeBufferPointer { bytes in (try? JSONParser.parse(bytes: bytes)) ?? .null }
    }

    /// Writes the trigger as JSON (the connector's outbox, dry-run lines, ``json``).
    package func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("type")
        switch self {
        case .membership(let audience, let status):
            writer.value("membership")
            writer.key("audience")
            writer.value(audience)
            writer.key("status")
            writer.value(status.rawValue)
        case .identity(let added, let removed):
            writer.value("identity")
            for (name, identities) in [("added", added), ("removed", removed)] {
                writer.key(name)
                writer.beginArray()
                for identity in identities {
                    writer.beginObject()
                    writer.key("namespace")
                    writer.value(identity.namespace)
                    writer.key("id")
                    writer.value(identity.id)
                    writer.endObject()
                }
                writer.endArray()
            }
        case .attribute(let paths):
            writer.value("attribute")
            writer.key("paths")
            writer.beginArray()
            for path in paths { writer.value(path.description) }
            writer.endArray()
        case .backfill(let audiences):
            writer.value("backfill")
            writer.key("audiences")
            writer.beginArray()
            for audience in audiences { writer.value(audience) }
            writer.endArray()
        }
        writer.endObject()
    }

    /// Reads ``json`` back.
    public init?(json: JSONValue) {
        guard let object = json.object, case .string(let type)? = object["type"] else { return nil }
        func strings(_ key: String) -> [String] {
            guard case .array(let items)? = object[key] else { return [] }
            return items.compactMap { if case .string(let text) = $0 { text } else { nil } }
        }
        func identities(_ key: String) -> [Identity] {
            guard case .array(let items)? = object[key] else { return [] }
            return items.compactMap {
                guard case .string(let namespace)? = $0.object?["namespace"], case .string(let id)? = $0.object?["id"] else { return nil }
                return Identity(namespace: namespace, id: id)
            }
        }
        switch type {
        case "membership":
            guard case .string(let audience)? = object["audience"], case .string(let status)? = object["status"],
                let parsed = MembershipStatus(rawValue: status)
            else { return nil }
            self = .membership(audienceId: audience, status: parsed)
        case "identity": self = .identity(added: identities("added"), removed: identities("removed"))
        case "attribute": self = .attribute(paths: strings("paths").compactMap { try? AttributePath($0) })
        case "backfill": self = .backfill(audienceIds: strings("audiences"))
        default: return nil
        }
    }
}

/// The decision for one dataflow about one update (or upload, or backfill) of one profile.
///
/// Kept with the profile for `hubcast explain`; the facts are stored and ``reason(memberOf:)`` puts
/// them into words, so deciding costs no string work. Which mapped audiences the profile was in
/// after the update is not stored: the profile's memberships say it (the decision is on its last
/// update); see ``ProfileEngine/explanation(of:dataflow:)``.
public struct ExportDecision: Sendable, Hashable {
    /// Whether an event was made for the dataflow.
    public var exported: Bool
    /// The time of the update that was decided on.
    public var time: Timestamp
    /// What made it export-worthy; empty when not exported.
    public var triggers: [ExportTrigger]
    /// The mapped audiences it stayed qualified for (`realized` → `existing`, not a change).
    public var stayed: [String]

    public init(exported: Bool, time: Timestamp, triggers: [ExportTrigger], stayed: [String] = []) {
        self.exported = exported
        self.time = time
        self.triggers = triggers
        self.stayed = stayed
    }

    /// The decision in words, given the mapped audiences the profile was a member of after the update.
    public func reason(memberOf: [String]) -> String {
        if exported { return "exported: " + triggers.map(\.description).joined(separator: "; ") }
        if memberOf.isEmpty { return "not exported: the profile is in none of the mapped audiences and did not just leave one" }
        var text =
            "not exported: member of \(memberOf.joined(separator: ", ")), but the update changed no mapped audience "
            + "membership, no identity and no mapped attribute"
        if !stayed.isEmpty { text += " (stayed qualified for \(stayed.joined(separator: ", ")): realized → existing is not a change)" }
        return text
    }

    public var json: JSONValue {
        .object([
            "exported": .bool(exported), "time": .int(time.seconds), "triggers": .array(triggers.map(\.json)),
            "stayed": .array(stayed.map { .string($0) }),
        ])
    }

    public init?(json: JSONValue) {
        guard let object = json.object, case .bool(let exported)? = object["exported"], case .int(let time)? = object["time"] else { return nil }
        func strings(_ key: String) -> [String] {
            guard case .array(let items)? = object[key] else { return [] }
            return items.compactMap { if case .string(let text) = $0 { text } else { nil } }
        }
        var triggers: [ExportTrigger] = []
        if case .array(let items)? = object["triggers"] { triggers = items.compactMap(ExportTrigger.init(json:)) }
        self.init(exported: exported, time: Timestamp(seconds: time), triggers: triggers, stayed: strings("stayed"))
    }
}
