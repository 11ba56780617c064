// Hubcast — how a profile is written into the durable store: one compact JSON record.

import OrderedCollections

/// Encodes a profile (without its key and profile id, which have columns of their own) as JSON:
/// `{"i": {namespace: [ids]}, "a": attributes, "m": {audience: [status, seconds]}, "g": rule version,
/// "d": {dataflow: decision}}`.
enum ProfileRecord {
    static func encode(_ profile: Profile) -> [UInt8] {
        var writer = JSONWriter(capacity: 512)
        writer.beginObject()
        writer.key("i")
        writer.beginObject()
        for (namespace, ids) in profile.identities.namespaces {
            writer.key(namespace)
            writer.beginArray()
            for id in ids { writer.value(id) }
            writer.endArray()
        }
        writer.endObject()
        writer.key("a")
        writer.value(.object(profile.attributes))
        writer.key("m")
        writer.beginObject()
        for (audience, membership) in profile.memberships {
            writer.key(audience)
            writer.beginArray()
            writer.value(membership.status.rawValue)
            writer.value(membership.lastQualificationTime.seconds)
            writer.endArray()
        }
        writer.endObject()
        writer.key("g")
        writer.value(profile.ruleVersion)
        writer.key("d")
        writer.beginObject()
        for (dataflow, decision) in profile.lastDecisions {
            writer.key(dataflow)
            writer.value(decision.json)
        }
        writer.endObject()
        writer.endObject()
        return writer.bytes
    }

    static func decode(_ bytes: UnsafeBufferPointer<UInt8>, key: Int64, profileId: String?) throws(ProfileExportError) -> Profile {
        let damaged = ProfileExportError(.store, "the stored record of profile \(key) is damaged")
        guard case .object(let record) = try JSONParser.parse(bytes: bytes) else { throw damaged }
        var profile = Profile(key: key, profileId: profileId)
        if case .object(let namespaces)? = record["i"] {
            for (namespace, ids) in namespaces {
                guard case .array(let list) = ids else { throw damaged }
                for case .string(let id) in list { profile.identities.add(Identity(namespace: namespace, id: id)) }
            }
        }
        if case .object(let attributes)? = record["a"] { profile.attributes = attributes }
        if case .object(let memberships)? = record["m"] {
            for (audience, entry) in memberships {
                guard case .array(let pair) = entry, pair.count == 2, case .string(let status) = pair[0],
                      let parsed = MembershipStatus(rawValue: status), case .int(let seconds) = pair[1] else { throw damaged }
                profile.memberships[audience] = Membership(parsed, at: Timestamp(seconds: seconds))
            }
        }
        if case .int(let version)? = record["g"] { profile.ruleVersion = version }
        if case .object(let decisions)? = record["d"] {
            for (dataflow, entry) in decisions {
                if let decision = ExportDecision(json: entry) { profile.lastDecisions[dataflow] = decision }
            }
        }
        return profile
    }
}
