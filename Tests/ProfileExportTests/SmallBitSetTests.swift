import Testing
@testable import ProfileExport

/// The engine's set of rule and mapped-path indexes: one word below 64, an array above.
@Suite struct SmallBitSetTests {
    @Test func holdsAndListsMembersInOrderAcrossWords() {
        var set = SmallBitSet()
        #expect(set.isEmpty && Array(set) == [])
        let members = [200, 0, 63, 64, 5, 127, 128, 5]
        for member in members { set.insert(member) }
        #expect(!set.isEmpty)
        #expect(Array(set) == [0, 5, 63, 64, 127, 128, 200])
        for member in 0...260 { #expect(set.contains(member) == members.contains(member)) }
    }
}
