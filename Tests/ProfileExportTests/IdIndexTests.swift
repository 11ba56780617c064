import Testing
@testable import ProfileExport

/// The memory store's id index against a dictionary, through many inserts, removals and growths.
@Suite struct IdIndexTests {
    @Test func agreesWithADictionaryThroughInsertsRemovalsAndGrowth() {
        var index = IdIndex()
        var ids: [String?] = []  // the id each slot holds, as the store keeps it
        var reference: [String: Int] = [:]
        var random = SystemRandomNumberGenerator()
        for step in 0..<40_000 {
            if reference.isEmpty || Int.random(in: 0..<3, using: &random) > 0 {
                let id = "p\(step)-\(Int.random(in: 0..<1_000_000, using: &random))"
                let slot = ids.count
                ids.append(id)
                index.insert(id, slot: slot)
                reference[id] = slot
            } else {
                let (id, slot) = reference.randomElement(using: &random)!
                index.remove(id, slot: slot)
                ids[slot] = nil
                reference[id] = nil
            }
            if step % 997 == 0 {
                for (id, slot) in reference { #expect(index.slot(of: id) { ids[$0] } == slot) }
            }
        }
        #expect(index.count == reference.count)
        for (id, slot) in reference { #expect(index.slot(of: id) { ids[$0] } == slot) }
        for slot in ids.indices where ids[slot] == nil {
            #expect(index.slot(of: "p\(slot)-gone") { ids[$0] } == nil)
        }
    }

    @Test func anIdMovesToAnotherSlot() {
        var index = IdIndex()
        var ids: [String?] = ["a", "b"]
        index.insert("a", slot: 0)
        index.insert("b", slot: 1)
        index.remove("a", slot: 0)
        ids[0] = nil
        ids.append("a")
        index.insert("a", slot: 2)
        #expect(index.slot(of: "a") { ids[$0] } == 2)
        #expect(index.slot(of: "b") { ids[$0] } == 1)
        index.remove("missing", slot: 5)  // nothing to remove: nothing changes
        #expect(index.count == 2)
        index.insert("b", slot: 1)  // there already: nothing changes
        #expect(index.count == 2)
    }

    /// The SQLite store checks candidates where it reads them: every slot entered for the id is
    /// offered until one is confirmed, and a check that throws ends the lookup.
    @Test func candidatesAreOfferedUntilOneIsConfirmed() {
        struct Unreadable: Error {}
        var index = IdIndex()
        index.insert("a", slot: 3)
        index.insert("a", slot: 7)
        var offered: [Int] = []
        #expect(
            index.slot(
                of: "a",
                where: {
                    offered.append($0); return $0 == 7
                }) == 7)
        #expect(offered == [3, 7])
        #expect(index.slot(of: "a", where: { _ in false }) == nil)
        #expect(throws: Unreadable.self) { try index.slot(of: "a", where: { _ throws(Unreadable) in throw Unreadable() }) }
    }
}
