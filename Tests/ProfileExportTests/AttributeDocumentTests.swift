import Foundation
import OrderedCollections
import PropertyBased
import Testing
@testable import ProfileExport

/// The flat attribute document: the same document, in the same order, and the same mapped paths and
/// rules touched as deep-merging into nested objects gives (the engine's earlier form, kept here as
/// the reference), on random writes and removals.
@Suite struct AttributeDocumentTests {
    static let names = ["a", "b", "c"]

    static var path: Generator<[String], Shrink.None<[String]>> {
        Generator { rng in (0..<Int.random(in: 1...3, using: &rng)).map { _ in names.randomElement(using: &rng)! } }
    }

    static func value(_ rng: inout some RandomNumberGenerator, depth: Int = 0) -> JSONValue {
        switch Int.random(in: 0..<(depth < 2 ? 8 : 5), using: &rng) {
        case 0: return .null
        case 1: return .int(Int64.random(in: 0..<3, using: &rng))
        case 2: return .string(["x", "y"].randomElement(using: &rng)!)
        case 3: return .array([.int(1)])
        case 4: return .object([:])
        default:
            var object = JSONObject()
            for _ in 0..<Int.random(in: 1...3, using: &rng) { object[names.randomElement(using: &rng)!] = value(&rng, depth: depth + 1) }
            return .object(object)
        }
    }

    /// A random update: a few nested writes (objects, plain values, nulls, empty objects) and removals.
    static var update: Generator<ProfileUpdate, Shrink.None<ProfileUpdate>> {
        Generator { rng in
            var update = ProfileUpdate(profileId: "p")
            for _ in 0..<Int.random(in: 0...3, using: &rng) { update.attributes[names.randomElement(using: &rng)!] = value(&rng) }
            for _ in 0..<Int.random(in: 0...1, using: &rng) {
                update.removeAttributes.append(AttributePath(components: (0..<Int.random(in: 1...2, using: &rng)).map { _ in names.randomElement(using: &rng)! }))
            }
            return update
        }
    }

    static let mapped = ["a", "a.b", "b.c.a", "c.c", "b"]
    static let rules = ["a.a exists", "b.b = 1", "c exists and a.c exists"]

    static func engine() throws -> ProfileEngine {
        var yaml = destinationsYAML + "\naudiences:\n"
        for (index, rule) in rules.enumerated() { yaml += "  - {id: r\(index), rule: '\(rule)'}\n" }
        yaml += "dataflows:\n  - {id: flow, destination: hub, audiences: [r0], attributes: [\(mapped.joined(separator: ", "))]}\n"
        return ProfileEngine(configuration: try ExportConfiguration.parse(yaml: yaml), store: MemoryProfileStore())
    }

    @Test func writesAndRemovalsMatchTheNestedMerge() async {
        await propertyCheck(count: 400, input: Self.update.array(of: 1...10)) { updates in
            let engine = try Self.engine()
            var profile = Profile(key: 1)
            var reference = Reference(plan: engine.plan)
            for update in updates {
                let changed = engine.applyAttributes(update, to: &profile)
                reference.apply(update)
                #expect(profile.attributes == reference.attributes, "after \(update.attributes), removing \(update.removeAttributes)")
                #expect(Array(changed.mapped) == reference.mapped.sorted(), "mapped paths touched by \(update.attributes)")
                #expect(Array(changed.rules) == reference.rules.sorted(), "rules touched by \(update.attributes)")
                // The flat form round-trips through nested objects and through a stored record.
                #expect(AttributeDocument(profile.attributes) == profile.document)
                let bytes = ProfileRecord.encode(profile)
                let stored = try bytes.withUnsafeBufferPointer { buffer throws(ProfileExportError) in
                    try ProfileRecord.decode(buffer, key: 1, profileId: nil)
                }
                #expect(stored.attributes == reference.attributes)
            }
        }
    }

    @Test func valuesAtPathsAreWhatTheNestedObjectHolds() async {
        await propertyCheck(count: 300, input: Self.update.array(of: 1...6), Self.path) { updates, components in
            let engine = try Self.engine()
            var profile = Profile(key: 1)
            for update in updates { _ = engine.applyAttributes(update, to: &profile) }
            let path = AttributePath(components: components)
            let nested = profile.attributes.presentValue(at: path)
            #expect(path.encoded.withUnsafeBufferPointer { profile.document.presentValue(at: $0) } == nested)
            #expect(profile.document.isPresent(at: path) == (nested != nil))
            // What a rule reads: the same kind and value.
            let flat = profile.document.withValue(at: path) { Self.describe($0) }
            #expect(flat == nested.flatMap { $0.withRuleValue { Self.describe($0) } })
        }
    }

    static func describe(_ value: RuleValue?) -> String? {
        switch value {
        case nil: nil
        case .bool(let flag)?: "bool \(flag)"
        case .int(let number)?: "int \(number)"
        case .double(let number)?: "double \(number)"
        case .string(let bytes)?: "string \(Array(bytes))"
        case .array(let items)?: "array \(items)"
        case .object?: "object"
        }
    }

    @Test func mappedObjectsAreWrittenNestedInDocumentOrder() throws {
        let engine = try Self.engine()
        var profile = Profile(key: 1)
        _ = try engine.apply(ProfileUpdate(jsonLine: #"{"profileId": "p", "attributes": {"a": {"a": 1, "c": {"x": 1}}}}"#))
        let key = try #require(try engine.store.key(profileId: "p"))
        profile = try #require(try engine.store.profile(key: key))
        // Written inside `a` after `c` exists: `a.c.y` joins `a.c`, then `a.b` comes last in `a`.
        let items = try engine.apply(ProfileUpdate(jsonLine: #"{"profileId": "p", "attributes": {"a": {"c": {"y": "\"q\""}, "b": [1]}, "b": 2}}"#))
        let payload = try #require(items.first?.payloadText)
        #expect(payload.hasPrefix(#"{"a":{"a":1,"c":{"x":1,"y":"\"q\""},"b":[1]},"b":2,"#), "\(payload)")
        #expect(profile.attributes["a"]?.object.map { Array($0.keys) } == ["a", "c"])
    }

    @Test func anObjectEmptiedAndFilledInOneUpdateKeepsItsPlace() throws {
        let engine = try Self.engine()
        var profile = Profile(key: 1)
        _ = engine.applyAttributes(try ProfileUpdate(jsonLine: #"{"profileId": "p", "attributes": {"a": {"b": 2}, "c": 1}}"#), to: &profile)
        _ = engine.applyAttributes(try ProfileUpdate(jsonLine: #"{"profileId": "p", "attributes": {"a": {"b": null, "c": 1}}}"#), to: &profile)
        #expect(Array(profile.attributes.keys) == ["a", "c"])
        #expect(profile.attributes["a"] == .object(["c": .int(1)]))
    }

    @Test func leavesThatOverlapInADamagedRecordNeverTrap() throws {
        // Leaves "a" and "a.b" (one inside the other), which the engine never makes.
        let bytes: [UInt8] = [3, 0, 2, 2, 1, 0x61, 3, 2, 4, 1, 0x61, 1, 0x62, 3, 4, 0, 0, 0]
        let profile = try bytes.withUnsafeBufferPointer { buffer throws(ProfileExportError) in
            try ProfileRecord.decode(buffer, key: 1, profileId: nil)
        }
        _ = profile.attributes
        var writer = JSONWriter()
        profile.document.writeObject(0..<2, skipping: 0, to: &writer)
        #expect(!writer.bytes.isEmpty)
    }
}

/// The nested deep merge (spec §9, §11) the flat document must agree with, with the mapped paths
/// and rules it touches.
private struct Reference {
    let plan: ExportPlan
    var attributes = JSONObject()
    var mapped = Set<Int>()
    var rules = Set<Int>()

    init(plan: ExportPlan) { self.plan = plan }

    mutating func apply(_ update: ProfileUpdate) {
        mapped = []
        rules = []
        var prefix: [String] = []
        var document = attributes
        merge(update.attributes, into: &document, prefix: &prefix)
        for path in update.removeAttributes {
            if let old = Self.remove(path.components[...], from: &document) { note(path.components, replaced: old) }
        }
        attributes = document
    }

    private mutating func note(_ path: [String], replaced: JSONValue?) {
        for (index, rule) in plan.rules.enumerated() where rule.rule.paths.contains(where: { $0.components[0] == path[0] }) {
            rules.insert(index)
        }
        for (index, mappedPath) in plan.mappedPaths.enumerated() {
            let components = mappedPath.components
            if path.count >= components.count {
                if path.starts(with: components) { mapped.insert(index) }
            } else if components.starts(with: path), case .object(let old)? = replaced,
                      JSONValue.object(old).value(at: AttributePath(components: Array(components[path.count...]))) != nil {
                mapped.insert(index)
            }
        }
    }

    private mutating func merge(_ writes: JSONObject, into object: inout JSONObject, prefix: inout [String]) {
        for (name, value) in writes {
            prefix.append(name)
            defer { prefix.removeLast() }
            switch value {
            case .null:
                if let old = object.removeValue(forKey: name) { note(prefix, replaced: old) }
            case .object(let members) where members.isEmpty:
                continue
            case .object(let members):
                if case .object(var child)? = object[name] {
                    let wasEmpty = child.isEmpty
                    merge(members, into: &child, prefix: &prefix)
                    if child.isEmpty, !wasEmpty { object.removeValue(forKey: name) } else { object[name] = .object(child) }
                } else {
                    var child = JSONObject()
                    merge(members, into: &child, prefix: &prefix)
                    if !child.isEmpty { object[name] = .object(child) }
                }
            default:
                note(prefix, replaced: object.updateValue(value, forKey: name))
            }
        }
    }

    private static func remove(_ path: ArraySlice<String>, from object: inout JSONObject) -> JSONValue? {
        guard let head = path.first, let index = object.index(forKey: head) else { return nil }
        if path.count == 1 { return object.remove(at: index).value }
        guard case .object(var child) = object.values[index] else { return nil }
        let removed = remove(path.dropFirst(), from: &child)
        if child.isEmpty { object.remove(at: index) } else { object.values[index] = .object(child) }
        return removed
    }
}
