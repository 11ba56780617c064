import OrderedCollections
import Testing
@testable import ProfileExport

/// String escapes, numbers, dates, and printing rules back as text.
@Suite struct RuleLiteralTests {
    @Test(arguments: [
        (#"s = "say \"hi\"""#, #"say "hi""#),
        (#"s = 'it\'s'"#, "it's"),
        (#"s = 'say "hi"'"#, #"say "hi""#),
        (#"s = "it's""#, "it's"),
        (#"s = "back\\slash""#, #"back\slash"#),
        (#"s = "a\/b""#, "a/b"),
        (#"s = "line\nbreak""#, "line\nbreak"),
        (#"s = "tab\there""#, "tab\there"),
        (#"s = "cr\r""#, "cr\r"),
        (#"s = "\u00e9t\u00C9""#, "étÉ"),
        (#"s = "\uD83D\uDE00""#, "😀"),
        (#"s = "😀 ünïcödé""#, "😀 ünïcödé"),
        (#"s = """#, ""),
    ])
    func escapes(rule: String, value: String) throws {
        let parsed = try AudienceRule(parsing: rule)
        #expect(parsed.matches(attributes(["s": .string(value)])))
        #expect(!parsed.matches(attributes(["s": .string(value + "x")])))
    }

    @Test(arguments: [
        ("n = 42", JSONValue.int(42)),
        ("n = -42", .int(-42)),
        ("n = 0", .int(0)),
        ("n = -0", .double(0)),
        ("n = 007", .int(7)),
        ("n = 1.5", .double(1.5)),
        ("n = -0.25", .double(-0.25)),
        ("n = 1e3", .int(1000)),
        ("n = 1E3", .double(1000)),
        ("n = 2.5e-1", .double(0.25)),
        ("n = 25E+3", .int(25000)),
    ])
    func numbers(rule: String, value: JSONValue) throws {
        let parsed = try AudienceRule(parsing: rule)
        #expect(parsed.matches(attributes(["n": value])))
        #expect(!parsed.matches(attributes(["n": .double(value.number! + 1)])))
    }

    @Test func extremeIntegersCompareExactly() throws {
        let smallest = try AudienceRule(parsing: "n = -9223372036854775808")
        #expect(smallest.matches(attributes(["n": .int(.min)])))
        #expect(!smallest.matches(attributes(["n": .int(.min + 1)])))
        let largest = try AudienceRule(parsing: "n >= 9223372036854775807")
        #expect(largest.matches(attributes(["n": .int(.max)])))
        #expect(!largest.matches(attributes(["n": .int(.max - 1)])))
    }

    @Test func integerBeyondInt64IsADouble() throws {
        let rule = try AudienceRule(parsing: "n = 18446744073709551616")
        #expect(rule.matches(attributes(["n": .double(18_446_744_073_709_551_616)])))
    }

    @Test func dateLiteralsAreParsedOnce() throws {
        let rule = try AudienceRule(parsing: "d = date('2026-11-22T11:00:00.999+01:00')")
        #expect(rule.root == .compare(try AttributePath("d"), .equal, .date(seconds: 1_795_341_600, text: "2026-11-22T11:00:00.999+01:00")))
        #expect(rule.matches(attributes(["d": .string("2026-11-22T10:00:00Z")])))
    }

    @Test(arguments: [
        "a = 1",
        "a != \"x\" and (b < 2.5 or not c exists)",
        "not (a = 1 and b = 2) or c in [1, \"two\", true, date(\"2000-01-01\")]",
        "a contains \"q\\\"uote\\\\\" and b startsWith \"tab\\tline\\n\"",
        "`first name` = 'x' and `and` exists and a.`b.c` = 1 and `a``b` exists and `1st` exists",
        "not not a = 1",
        "a in []",
        "s = \"\\u0001\\u001F\"",
    ])
    func printsTextThatParsesBack(rule: String) throws {
        let parsed = try AudienceRule(parsing: rule)
        let printed = parsed.root.text
        #expect(try AudienceRule(parsing: printed).root == parsed.root, "\(printed)")
    }

    @Test func printedText() throws {
        #expect(try AudienceRule(parsing: "A=1 AND(b<2 OR NOT c EXISTS)").root.text == "A = 1 and (b < 2 or not c exists)")
        #expect(try AudienceRule(parsing: "not (a=1 or b=2)").root.text == "not (a = 1 or b = 2)")
        #expect(try AudienceRule(parsing: "s = 'it\\'s'").root.text == "s = \"it's\"")
    }
}
