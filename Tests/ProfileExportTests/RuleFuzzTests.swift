// Fuzzing the audience rule parser: random token sequences and mutations of valid rules. Never a
// crash; a rule either parses (and evaluates against documents) or throws `invalidRule` with a
// message and a line and column inside the text.

import Foundation
import FuzzSupport
import Testing
@testable import ProfileExport

@Suite struct RuleFuzzTests {
    /// Valid rules: the README's examples and a few more of every construct.
    static let corpus: [String] = [
        #"person.name.firstName = "John""#,
        "loyalty.points >= 1000 and consent.email = true",
        #"person.birthDate < date("2000-01-01")"#,
        #"homeAddress.country in ["FR", "DE"] and not person.email exists"#,
        #"person.email contains "@acme." or person.email startsWith "john""#,
        "a = 1 and (b = 2 or not c exists)",
        "`first name` != 'Ann' AND address.`zip.code` <= 75000.5e-1",
        "items.0 = -7 or tags contains \"vip\" or x in [] or y in [1, 'a', true, date(\"2026-11-22T10:00:00+01:00\")]",
        "not not (a > \"\\u00e9\\n\") or\n  b.c = 1.5E3",
        "`a``b` = 2 and `exists` = 1 and date = 3",
    ]

    /// Tokens of the language, near-misses and junk.
    static let tokens: [String] = [
        "a", "b.c", "person.name.firstName", "`x y`", "`a``b`", "`unclosed", "items.0", "0abc", "a..b", ".a", "a.", "é.ü", "$x", "@y",
        "=", "!=", "<", "<=", ">", ">=", "==", "<>", "=>", "!", "like", "in", "contains", "startsWith", "startswith", "exists",
        "not", "NOT", "and", "AND", "or", "Or", "(", ")", "[", "]", ",", "date", "date(", "date(\"2000-01-01\")", "date(\"2000-13-01\")",
        "date(1)", "\"str\"", "'str'", "\"unclosed", "\"esc\\q\"", "\"\\ud800\"", "\"\\ud83d\\ude00\"", "\"\\u12\"", "42", "-7", "0.75",
        "1.5e3", "2E-4", "1e999", "-", "99999999999999999999999", ".5", "1.", "true", "false", "null", "TRUE", "\u{0}", "\u{FEFF}", "#", "\\",
    ]

    static let whitespace = [" ", " ", " ", "", "\n", "\t", "  ", "\r\n", "\u{00A0}"]

    /// Documents to evaluate the rules that parse against.
    static let documents: [JSONValue] = [
        .object([:]),
        (try? JSONParser.parse(
            #"{"a": 1, "b": {"c": 1500}, "person": {"name": {"firstName": "John"}, "email": "john@acme.org"}, "tags": ["vip"], "x": null}"#))
            ?? .null,
        (try? JSONParser.parse(#"{"a": "1", "b": [1, 2], "items": [{"x": 1}], "loyalty": {"points": 1000.0}, "first name": "Ann", "exists": 1}"#))
            ?? .null,
    ]

    /// Parses `text`: a rule that parses is evaluated against ``documents``; one that does not
    /// throws `invalidRule` with a message and a position inside the text (the position just past
    /// its end for "found end of rule").
    static func check(_ text: String, case number: Int, seed: UInt64) {
        do {
            let rule = try AudienceRule(parsing: text)
            for document in documents { _ = rule.matches(document) }
            #expect(rule.description == text)
        } catch {
            let context = "case \(number) (seed \(seed)): \(text.debugDescription)"
            #expect(error.code == .invalidRule, "\(context): \(error)")
            #expect(!error.message.isEmpty, "\(context): no message")
            let lines = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false)
            if let line = error.location?.line, let column = error.location?.column {
                #expect(line >= 1 && line <= lines.count, "\(context): line \(line) of \(lines.count)")
                if line >= 1 && line <= lines.count {
                    #expect(column >= 1 && column <= lines[line - 1].count + 1, "\(context): column \(column) in \(error)")
                }
            } else {
                Issue.record("\(context): no line and column in \(error)")
            }
        }
    }

    @Test func randomTokenSequencesNeverCrash() {
        let seed = Fuzz.seed(0x5255_4C45_0001)
        var rng = SeededGenerator(seed: seed)
        var parsed = 0
        for number in 1...Fuzz.cases {
            var text = ""
            for _ in 0..<Int.random(in: 0...14, using: &rng) {
                text += Self.tokens.randomElement(using: &rng)! + Self.whitespace.randomElement(using: &rng)!
            }
            do {
                _ = try AudienceRule(parsing: text)
                parsed += 1
            } catch {}
            Self.check(text, case: number, seed: seed)
        }
        #expect(parsed < Fuzz.cases)
    }

    @Test func mutatedValidRulesNeverCrash() {
        let seed = Fuzz.seed(0x5255_4C45_0002)
        var rng = SeededGenerator(seed: seed)
        for rule in Self.corpus { #expect((try? AudienceRule(parsing: rule)) != nil, "the corpus is valid: \(rule)") }
        let dictionary = Self.tokens.map { Array(" \($0) ".utf8) }
        for number in 1...Fuzz.cases {
            let rule = Array(Self.corpus.randomElement(using: &rng)!.utf8)
            // Byte mutations may break UTF-8: the text is what a configuration file would give.
            let mutated = Mutation.mutate(rule, dictionary: dictionary, using: &rng)
            Self.check(String(decoding: mutated, as: UTF8.self), case: number, seed: seed)
        }
    }

    /// Nesting beyond the parser's limit is an error, not a stack overflow.
    @Test func deepNestingIsAnErrorNotACrash() {
        for depth in [99, 100, 101, 5000] {
            Self.check(String(repeating: "(", count: depth) + "a = 1" + String(repeating: ")", count: depth), case: depth, seed: 0)
            Self.check(String(repeating: "not ", count: depth) + "a exists", case: depth, seed: 0)
            Self.check(String(repeating: "(not ", count: depth) + "a exists", case: depth, seed: 0)
        }
        #expect(throws: ProfileExportError.self) {
            try AudienceRule(parsing: String(repeating: "(", count: 5000) + "a = 1" + String(repeating: ")", count: 5000))
        }
    }
}
