import Testing
@testable import ProfileExport

/// The engine's name table finds what a dictionary would, for any names.
@Suite struct NameTableTests {
    @Test func findsEveryNameAndNothingElse() {
        let names = (0..<300).map { "a\($0)" } + ["", "loyalty", "person", "segment-\u{00E9}t\u{00E9}", "東京"]
        let table = NameTable(names.enumerated().map { ($1, $0) })
        #expect(table.count == names.count)
        for (index, name) in names.enumerated() { #expect(table[name] == index, "\(name)") }
        for missing in ["a300", "a-1", "Loyalty", "persons", "segment-ete", "京都"] { #expect(table[missing] == nil, "\(missing)") }
    }

    @Test func theFirstValueForANameWins() {
        let table = NameTable([("a", 1), ("b", 2), ("a", 3)])
        #expect(table.count == 2)
        #expect(table["a"] == 1)
        #expect(table["b"] == 2)
    }

    @Test func anEmptyTableFindsNothing() {
        let table = NameTable<Int>([])
        #expect(table.count == 0)
        #expect(table["a"] == nil)
        #expect(table[""] == nil)
    }

    /// As with a dictionary, canonically equivalent names are the same name, whichever form the
    /// table holds and whichever is looked up (é precomposed or as e + accent; the Kelvin sign is K).
    @Test func equivalentUnicodeFormsAreTheSameName() {
        let composed = "caf\u{00E9}", decomposed = "cafe\u{0301}"
        #expect(NameTable([(composed, 1)])[decomposed] == 1)
        #expect(NameTable([(decomposed, 1)])[composed] == 1)
        #expect(NameTable([("K", 1)])["\u{212A}"] == 1)
        #expect(NameTable([("\u{212A}", 1)])["K"] == 1)
        let dictionary = [composed: 1]
        #expect(dictionary[decomposed] == NameTable([(composed, 1)])[decomposed])
    }
}
