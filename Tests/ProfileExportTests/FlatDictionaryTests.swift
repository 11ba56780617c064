import OrderedCollections
import PropertyBased
import Testing
@testable import ProfileExport

/// The one-array ordered dictionary behind JSON objects and a profile's maps, against
/// `OrderedDictionary` as the model, below and above the size where it keeps a hash table.
@Suite struct FlatDictionaryTests {
    /// Checks every observable fact of `flat` against `model`: order, lookups of every key that
    /// may occur, count, equality.
    func expectSame(_ flat: FlatDictionary<String, Int>, _ model: OrderedDictionary<String, Int>, keys: [String]) {
        #expect(Array(flat.keys) == Array(model.keys))
        #expect(Array(flat.values) == Array(model.values))
        #expect(flat.count == model.count)
        for key in keys {
            #expect(flat.index(forKey: key) == model.index(forKey: key), "position of \(key)")
            #expect(flat[key] == model[key])
        }
        #expect(flat == FlatDictionary(uncheckedUniqueKeys: model.keys, values: model.values))
        // Positions are hashed exactly above the size where keys are compared in order.
        #expect(flat.positions.isEmpty == (flat.count <= FlatDictionary<String, Int>.indexedCount))
    }

    @Test func randomEditsMatchAnOrderedDictionary() {
        var rng = Xoshiro(seed: (11, 12, 13, 14))
        // 40 possible keys: the dictionaries grow past the hash-table size and shrink below it.
        let keys = (0..<40).map { "key\($0)" }
        var flat = FlatDictionary<String, Int>()
        var model = OrderedDictionary<String, Int>()
        var largest = 0
        for step in 0..<6_000 {
            let key = keys.randomElement(using: &rng)!
            // Grow for a while, then shrink, several times over.
            let growing = (step / 500) % 2 == 0
            switch Int.random(in: 0..<8, using: &rng) {
            case 0, 1:
                if growing {
                    flat[key] = step
                    model[key] = step
                } else {
                    flat[key] = nil
                    model[key] = nil
                }
            case 2:
                #expect(flat.updateValue(step, forKey: key) == model.updateValue(step, forKey: key))
            case 3:
                #expect(flat.removeValue(forKey: key) == model.removeValue(forKey: key))
            case 4 where !model.isEmpty:
                let position = Int.random(in: 0..<model.count, using: &rng)
                let removed = flat.remove(at: position)
                let expected = model.remove(at: position)
                #expect(removed.key == expected.key && removed.value == expected.value)
            case 5:
                flat[key, default: 0] += 1
                model[key, default: 0] += 1
            case 6 where !model.isEmpty:
                let position = Int.random(in: 0..<model.count, using: &rng)
                flat.values[position] = -step
                model.values[position] = -step
            default:
                if growing {
                    flat[key] = step
                    model[key] = step
                }
            }
            largest = max(largest, flat.count)
            expectSame(flat, model, keys: keys)
        }
        #expect(largest > FlatDictionary<String, Int>.indexedCount)
    }

    @Test func copiesAreIndependent() {
        for size in [3, 30] {
            var original = FlatDictionary(uncheckedUniqueKeys: (0..<size).map { "k\($0)" }, values: Array(0..<size))
            let copy = original
            original.values[0] = 100
            original["k1", default: 0] += 5
            original["new"] = 7
            original.removeValue(forKey: "k2")
            #expect(copy.count == size)
            #expect(copy["k0"] == 0 && copy["k1"] == 1 && copy["k2"] == 2 && copy["new"] == nil)
            #expect(original["k0"] == 100 && original["k1"] == 6 && original["k2"] == nil && original["new"] == 7)
            #expect(original.index(forKey: "new") == size - 1)
        }
    }

    @Test func equalityAndHashFollowOrder() {
        let ab: FlatDictionary<String, Int> = ["a": 1, "b": 2]
        let ba: FlatDictionary<String, Int> = ["b": 2, "a": 1]
        #expect(ab != ba)
        #expect(ab == ["a": 1, "b": 2])
        #expect(ab.hashValue == FlatDictionary(uncheckedUniqueKeys: ["a", "b"], values: [1, 2]).hashValue)
        #expect(ab.description == "[a: 1, b: 2]")
        #expect(FlatDictionary<String, Int>().description == "[:]")
    }

    /// A JSON object of thousands of members parses (its positions hashed: each name found at once)
    /// and keeps its order and the last value of a repeated name.
    @Test func largeObjectsFromInput() throws {
        let names = (0..<5_000).map { "m\($0)" }
        let text = "{" + names.map { "\"\($0)\": 1" }.joined(separator: ",") + ", \"m7\": 2}"
        let value = try JSONParser.parse(text)
        let object = try #require(value.object)
        #expect(Array(object.keys) == names)
        #expect(object["m7"] == .int(2))
        #expect(object["m4999"] == .int(1))
    }

    /// A damaged record naming a member twice in a large object is refused, not a trap.
    @Test func aRepeatedNameInALargeStoredObjectIsDamage() throws {
        var profile = Profile(key: 1, profileId: "p1")
        profile.attributes["big"] = .object(JSONObject(uncheckedUniqueKeys: (0..<20).map { "k\($0 + 10)" }, values: (0..<20).map { .int(Int64($0)) }))
        var bytes = ProfileRecord.encode(profile)
        let second = try #require(bytes.indices.first { Array(bytes[$0..<$0 + 3]) == Array("k11".utf8) })
        bytes.replaceSubrange(second..<second + 3, with: Array("k10".utf8))
        #expect(throws: ProfileExportError.self) {
            try bytes.withUnsafeBufferPointer { buffer throws(ProfileExportError) in
                try ProfileRecord.decode(buffer, key: 1, profileId: "p1")
            }
        }
    }
}
