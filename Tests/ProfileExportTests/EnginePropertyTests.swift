import Foundation
import OrderedCollections
import PropertyBased
import Testing
@testable import ProfileExport

/// Laws the engine and the payload builder keep, on random rules and random update sequences.
@Suite struct EnginePropertyTests {
    /// A random update of profile "p": writes, removals and identity changes over a few paths.
    static var update: Generator<ProfileUpdate, Shrink.None<ProfileUpdate>> {
        Generator { rng in
            var update = ProfileUpdate(profileId: "p", timestamp: Timestamp(seconds: Int64.random(in: 0..<1_000_000, using: &rng)))
            for path in RuleRandom.evaluablePaths where Int.random(in: 0..<3, using: &rng) == 0 {
                let value = RuleRandom.evaluableValues.randomElement(using: &rng)!
                if path.components.count == 1 {
                    update.attributes[path.components[0]] = value
                } else {
                    var inner = update.attributes[path.components[0]]?.object ?? [:]
                    inner[path.components[1]] = value
                    update.attributes[path.components[0]] = .object(inner)
                }
            }
            if Int.random(in: 0..<4, using: &rng) == 0 { update.removeAttributes.append(RuleRandom.evaluablePaths.randomElement(using: &rng)!) }
            if Int.random(in: 0..<4, using: &rng) == 0 {
                update.identities.append(Identity(namespace: "ns", id: "\(Int.random(in: 0..<3, using: &rng))"))
            }
            if Int.random(in: 0..<4, using: &rng) == 0 {
                update.removeIdentities.append(Identity(namespace: "ns", id: "\(Int.random(in: 0..<3, using: &rng))"))
            }
            return update
        }
    }

    static func engine(rules: [RuleNode]) throws -> ProfileEngine {
        var yaml = destinationsYAML + "\naudiences:\n"
        for (index, rule) in rules.enumerated() {
            yaml +=
                "  - {id: r\(index), mergePolicy: \(index % 2 == 0 ? "even" : "odd"), rule: '\(rule.text.replacingOccurrences(of: "'", with: "''"))'}\n"
        }
        yaml += "dataflows:\n  - {id: flow, destination: hub, audiences: [r0, r1], attributes: [a, c.d], partitionKey: ns}\n"
        return ProfileEngine(configuration: try ExportConfiguration.parse(yaml: yaml), store: MemoryProfileStore())
    }

    @Test func membershipsAlwaysAgreeWithTheRules() async {
        await propertyCheck(count: 150, input: RuleRandom.evaluable.array(of: 4...4), Self.update.array(of: 1...12)) { rules, updates in
            let engine = try Self.engine(rules: rules)
            for update in updates {
                _ = try engine.apply(update)
                let key = try #require(try engine.store.key(profileId: "p"))
                let profile = try #require(try engine.store.profile(key: key))
                for (index, rule) in rules.enumerated() {
                    let expected = try AudienceRule(parsing: rule.text).matches(.object(profile.attributes))
                    #expect(profile.isMember(of: "r\(index)") == expected, "rule \(rule.text) on \(profile.attributes)")
                }
            }
        }
    }

    @Test func payloadsHoldExactlyWhatTheSpecSays() async {
        await propertyCheck(count: 150, input: RuleRandom.evaluable.array(of: 4...4), Self.update.array(of: 1...12)) { rules, updates in
            let engine = try Self.engine(rules: rules)
            for update in updates {
                let before = try engine.store.key(profileId: "p").flatMap { try engine.store.profile(key: $0) }
                let items = try engine.apply(update)
                let key = try #require(try engine.store.key(profileId: "p"))
                let profile = try #require(try engine.store.profile(key: key))
                // Exported only when the profile is, or just was, in a mapped audience.
                let wasMember = ["r0", "r1"].contains { before?.isMember(of: $0) ?? false }
                let isMember = ["r0", "r1"].contains { profile.isMember(of: $0) }
                if !wasMember && !isMember { #expect(items.isEmpty) }
                for item in items {
                    let payload = try #require(try JSONParser.parse(item.payloadText).object)
                    #expect(Set(payload.keys).isSubset(of: ["a", "c", "segmentMembership", "identityMap"]))
                    #expect(payload["a"] == (profile.attributes["a"] == .null ? nil : profile.attributes["a"]))
                    #expect(payload["c"]?.object?.keys.elementsEqual(["d"]) ?? true)
                    var identities = JSONObject()
                    for (namespace, ids) in profile.identities.namespaces {
                        identities[namespace] = .array(ids.map { .object(["id": .string($0)]) })
                    }
                    #expect(payload["identityMap"] == .object(identities))
                    let ups = try #require(payload["segmentMembership"]?.object?["ups"]?.object)
                    for (audience, entry) in ups {
                        let membership = try #require(profile.memberships[audience])
                        #expect(entry.object?["status"] == .string(membership.status.rawValue))
                        #expect(entry.object?["lastQualificationTime"] == .string(membership.lastQualificationTime.description))
                        // Unmapped audiences ride along only as current members sharing a merge policy.
                        if !["r0", "r1"].contains(audience) { #expect(membership.status.isMember) }
                    }
                }
            }
        }
    }

    @Test func aChangedRuleSetIsFullyReEvaluatedOnTheNextUpdate() throws {
        let store = MemoryProfileStore()
        let first = ProfileEngine(
            configuration: try ExportConfiguration.parse(
                yaml: destinationsYAML + """

                    audiences: [{id: big, rule: 'n > 10'}]
                    dataflows: [{id: flow, destination: hub, audiences: [big], attributes: [n]}]
                    """), store: store)
        _ = try first.apply(ProfileUpdate(jsonLine: #"{"profileId": "p", "attributes": {"n": 5, "m": 1}}"#))
        let second = ProfileEngine(
            configuration: try ExportConfiguration.parse(
                yaml: destinationsYAML + """

                    audiences: [{id: big, rule: 'n > 1'}]
                    dataflows: [{id: flow, destination: hub, audiences: [big], attributes: [n]}]
                    """), store: store)
        // The update writes only 'm', which the rule does not read; the new rule is evaluated anyway.
        let items = try second.apply(ProfileUpdate(jsonLine: #"{"profileId": "p", "attributes": {"m": 2}}"#))
        #expect(items.first?.triggers == [.membership(audienceId: "big", status: .realized)])
    }
}
