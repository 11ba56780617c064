import OrderedCollections
import PropertyBased
import Testing
@testable import ProfileExport

/// Laws the rule language keeps, checked on random rules and documents.
@Suite struct RulePropertyTests {
    /// Whether the rule `text` (built by the test, so it must parse) matches `document`.
    func holds(_ text: String, _ document: JSONValue) throws -> Bool {
        try AudienceRule(parsing: text).matches(document)
    }

    @Test func printedRulesParseBackToTheSameTree() async {
        await propertyCheck(count: 500, input: RuleRandom.printable) { node in
            let text = node.text
            let parsed = try AudienceRule(parsing: text)
            #expect(parsed.root == node.flattened, "\(text)")
            #expect(parsed.paths == node.readPaths, "\(text)")
        }
    }

    @Test func doubleNegation() async {
        await propertyCheck(count: 300, input: RuleRandom.evaluable, RuleRandom.document) { node, document in
            let plain = try holds(node.text, document)
            let twice = try holds("not not (\(node.text))", document)
            let once = try holds("not (\(node.text))", document)
            #expect(twice == plain)
            #expect(once == !plain)
        }
    }

    @Test func andAndOrCommute() async {
        await propertyCheck(count: 300, input: RuleRandom.evaluable, RuleRandom.evaluable, RuleRandom.document) { a, b, document in
            let (a, b) = ("(\(a.text))", "(\(b.text))")
            let (left, right) = (try holds(a, document), try holds(b, document))
            let both = try holds("\(a) and \(b)", document)
            let either = try holds("\(a) or \(b)", document)
            let bothSwapped = try holds("\(b) and \(a)", document)
            let eitherSwapped = try holds("\(b) or \(a)", document)
            #expect(both == bothSwapped)
            #expect(either == eitherSwapped)
            #expect(both == (left && right))
            #expect(either == (left || right))
        }
    }

    @Test func deMorgan() async {
        await propertyCheck(count: 300, input: RuleRandom.evaluable, RuleRandom.evaluable, RuleRandom.document) { a, b, document in
            let (a, b) = ("(\(a.text))", "(\(b.text))")
            let notBoth = try holds("not (\(a) and \(b))", document)
            let neitherOr = try holds("not \(a) or not \(b)", document)
            let notEither = try holds("not (\(a) or \(b))", document)
            let neitherAnd = try holds("not \(a) and not \(b)", document)
            #expect(notBoth == neitherOr)
            #expect(notEither == neitherAnd)
        }
    }

    /// `x = v` and `x != v` disagree exactly when `x` is present; both are false when it is not.
    @Test func equalAndNotEqual() async {
        await propertyCheck(count: 500, input: RuleRandom.path, RuleRandom.literal, RuleRandom.document) { path, literal, document in
            let x = RuleNode.text(of: path)
            let equal = try holds("\(x) = \(literal.text)", document)
            let notEqual = try holds("\(x) != \(literal.text)", document)
            let present = try holds("\(x) exists", document)
            #expect(present ? equal != notEqual : !equal && !notEqual)
        }
    }

    /// `<=` is `<` or `=`, `>=` is `>` or `=`, and at most one of `<`, `=`, `>` holds (exactly one
    /// for present values of the literal's type).
    @Test func orderingOperatorsAgree() async {
        await propertyCheck(count: 500, input: RuleRandom.path, RuleRandom.literal, RuleRandom.document) { path, literal, document in
            if case .bool = literal { return }
            let x = RuleNode.text(of: path)
            let less = try holds("\(x) < \(literal.text)", document)
            let equal = try holds("\(x) = \(literal.text)", document)
            let greater = try holds("\(x) > \(literal.text)", document)
            let lessOrEqual = try holds("\(x) <= \(literal.text)", document)
            let greaterOrEqual = try holds("\(x) >= \(literal.text)", document)
            #expect(lessOrEqual == (less || equal))
            #expect(greaterOrEqual == (greater || equal))
            let holding = [less, equal, greater].filter { $0 }.count
            #expect(holding <= 1)
            switch (document.value(at: path), literal) {
            case (.int?, .number), (.double?, .number), (.string?, .string): #expect(holding == 1)
            default: break
            }
        }
    }

    /// `x in [v1, v2]` is `x = v1 or x = v2`.
    @Test func inIsAnOrOfEquals() async {
        await propertyCheck(count: 300, input: RuleRandom.path, RuleRandom.literal, RuleRandom.literal, RuleRandom.document) {
            path, first, second, document in
            let x = RuleNode.text(of: path)
            let inTwo = try holds("\(x) in [\(first.text), \(second.text)]", document)
            let orTwo = try holds("\(x) = \(first.text) or \(x) = \(second.text)", document)
            let inOne = try holds("\(x) in [\(first.text)]", document)
            let equalOne = try holds("\(x) = \(first.text)", document)
            #expect(inTwo == orTwo)
            #expect(inOne == equalOne)
        }
    }

    static let symbols = ["=", "!=", "<", "<=", ">", ">="]

    /// What Swift says of `left symbol right`.
    static func swift<T: Comparable>(_ left: T, _ symbol: String, _ right: T) -> Bool {
        switch symbol {
        case "=": left == right
        case "!=": left != right
        case "<": left < right
        case "<=": left <= right
        case ">": left > right
        default: left >= right
        }
    }

    @Test func integersCompareLikeSwift() async {
        await propertyCheck(count: 300, input: Gen.int64(in: .min ... .max), Gen.int64(in: -3...3), Gen.bool) { value, offset, near in
            // Half the time against a nearby literal, so that =, < and > all happen.
            let literal = near ? value &+ offset : Int64.random(in: .min ... .max)
            for symbol in RulePropertyTests.symbols {
                let actual = try holds("x \(symbol) \(literal)", attributes(["x": .int(value)]))
                #expect(actual == RulePropertyTests.swift(value, symbol, literal), "\(value) \(symbol) \(literal)")
            }
        }
    }

    @Test func doublesCompareLikeSwift() async {
        await propertyCheck(count: 300, input: Gen.double(in: -1e6...1e6), Gen.double(in: -1e6...1e6), Gen.int(in: -1000...1000)) {
            value, other, integer in
            for literal in [other, value, Double(integer)] {
                for symbol in RulePropertyTests.symbols {
                    let actual = try holds("x \(symbol) \(literal)", attributes(["x": .double(value)]))
                    #expect(actual == RulePropertyTests.swift(value, symbol, literal), "\(value) \(symbol) \(literal)")
                }
            }
            // An integer attribute against a decimal literal compares numerically.
            for symbol in RulePropertyTests.symbols {
                let actual = try holds("x \(symbol) \(value)", attributes(["x": .int(Int64(integer))]))
                #expect(actual == RulePropertyTests.swift(Double(integer), symbol, value), "\(integer) \(symbol) \(value)")
            }
        }
    }

    @Test func asciiStringsCompareLikeSwift() async {
        let text = Gen.letterOrNumber.string(of: 0...4)
        await propertyCheck(count: 300, input: text, text) { value, literal in
            for symbol in RulePropertyTests.symbols {
                let actual = try holds("x \(symbol) \(RuleLiteral.string(literal).text)", attributes(["x": .string(value)]))
                #expect(actual == RulePropertyTests.swift(value, symbol, literal), "\(value) \(symbol) \(literal)")
            }
        }
    }

    /// Beyond ASCII, strings order by Unicode scalar values (the same order as their UTF-8 bytes)
    /// and are equal only byte for byte.
    @Test func unicodeStringsOrderByScalars() async {
        let pool: [Character] = ["a", "z", "A", "é", "ë", "\u{FF}", "\u{100}", "€", "\u{FFFD}", "😀", "𝄞"]
        let text = Gen<Character?>.element(of: pool).map { $0! }.string(of: 0...4)
        await propertyCheck(count: 300, input: text, text) { value, literal in
            let scalarsBefore = value.unicodeScalars.map(\.value).lexicographicallyPrecedes(literal.unicodeScalars.map(\.value))
            let bytesBefore = value.utf8.lexicographicallyPrecedes(literal.utf8)
            let less = try holds("x < \(RuleLiteral.string(literal).text)", attributes(["x": .string(value)]))
            let equal = try holds("x = \(RuleLiteral.string(literal).text)", attributes(["x": .string(value)]))
            #expect(scalarsBefore == bytesBefore)
            #expect(less == scalarsBefore)
            #expect(equal == value.utf8.elementsEqual(literal.utf8))
        }
    }

    @Test func containsAndStartsWithLikeSwift() async {
        let text = Gen<Character?>.element(of: Array("ab")).map { $0! }.string(of: 0...6)
        await propertyCheck(count: 300, input: text, text) { value, part in
            let document = attributes(["x": .string(value)])
            let contains = try holds("x contains \(RuleLiteral.string(part).text)", document)
            let startsWith = try holds("x startsWith \(RuleLiteral.string(part).text)", document)
            #expect(contains == value.contains(part), "\(value) contains \(part)")
            #expect(startsWith == value.hasPrefix(part), "\(value) startsWith \(part)")
        }
    }

    @Test func datesCompareLikeTheirSeconds() async {
        let seconds = Gen.int64(in: -62_135_596_800...253_402_300_799)
        await propertyCheck(count: 300, input: seconds, seconds, Gen.int64(in: -2...2)) { value, other, offset in
            let document = attributes(["x": .string(Timestamp(seconds: value).description)])
            for literal in [other, value &+ offset] {
                for symbol in RulePropertyTests.symbols {
                    let actual = try holds("x \(symbol) date(\"\(Timestamp(seconds: literal))\")", document)
                    #expect(actual == RulePropertyTests.swift(value, symbol, literal), "\(value) \(symbol) \(literal)")
                }
            }
        }
    }

    static let fragments = [
        "a", "b.c", "`q q`", "not", "and", "or", "(", ")", "=", "!=", "<", ">=", "in", "[", "]", ",", "exists",
        "contains", "startsWith", "1", "-2.5e3", "\"s\"", "'t'", "true", "date", "(\"2000-01-01\")", "\n", " ",
        "\"", "\\", "`", "==", "#", "é", "1.", ".",
    ]

    /// Any token soup either parses (and prints back to the same tree) or fails with an
    /// `invalidRule` error placed inside the text.
    @Test func arbitraryTextParsesOrFailsInside() async {
        let soup = Gen<String?>.element(of: RulePropertyTests.fragments).map { $0! }.array(of: 0...12).map { $0.joined(separator: " ") }
        await propertyCheck(count: 1000, input: soup) { text in
            guard let error = ruleError(text) else {
                let parsed = try AudienceRule(parsing: text)
                let reparsed = try AudienceRule(parsing: parsed.root.text)
                #expect(reparsed.root == parsed.root, "\(text)")
                return
            }
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            #expect(error.code == .invalidRule)
            guard let line = error.location?.line, let column = error.location?.column else {
                Issue.record("no line and column for \(text.debugDescription)")
                return
            }
            #expect((1...lines.count).contains(line), "\(text.debugDescription): \(error)")
            #expect(column >= 1 && column <= lines[line - 1].unicodeScalars.count + 1, "\(text.debugDescription): \(error)")
        }
    }
}
