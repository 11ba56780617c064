import OrderedCollections
import Testing
@testable import ProfileExport

/// Every kind of parse error, with its line, column and message.
@Suite struct RuleErrorTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var rule: String
        var line: Int
        var column: Int
        var message: String
        var testDescription: String { rule.debugDescription }

        init(_ rule: String, _ line: Int, _ column: Int, _ message: String) {
            self.rule = rule
            self.line = line
            self.column = column
            self.message = message
        }
    }

    static let valueHint = #" (a value is a string, a number, true, false or date("…"))"#
    static let operators = "=, !=, <, <=, >, >=, in, contains, startsWith or exists"

    @Test(arguments: [
        // Empty rules.
        Case("", 1, 1, "empty rule: expected a condition, found end of rule"),
        Case("  \n  ", 2, 3, "empty rule: expected a condition, found end of rule"),
        // Unknown operators.
        Case("a == 1", 1, 3, "unknown operator '=='; write '=' to test equality"),
        Case("a <> 1", 1, 3, "unknown operator '<>'; write '!=' to test inequality"),
        Case("a ~ 1", 1, 3, "unknown operator '~'; the comparison operators are =, !=, <, <=, >, >="),
        Case("a = 1 && b = 2", 1, 7, "unknown operator '&&'; write 'and'"),
        Case("!a exists", 1, 1, "unknown operator '!'; write 'not' before a condition"),
        Case("a like \"x\"", 1, 3, "unknown operator 'like' after 'a'; expected \(operators)"),
        Case("a", 1, 2, "expected an operator after 'a' (\(operators)), found end of rule"),
        Case("a 5", 1, 3, "expected an operator after 'a' (\(operators)), found number 5"),
        Case("a not exists", 1, 3, "expected an operator after 'a', found 'not' (write 'not' before the condition: not a …)"),
        Case("a < true", 1, 3, "'<' does not order booleans; compare true and false with = or !="),
        Case("a >= false", 1, 3, "'>=' does not order booleans; compare true and false with = or !="),
        // Missing operands.
        Case("a =", 1, 4, "expected a value after '=', found end of rule"),
        Case("a = null", 1, 5, "expected a value after '=', found 'null'" + valueHint),
        Case("a = b", 1, 5, "expected a value after '=', found 'b'" + valueHint),
        Case("a = 1 and", 1, 10, "expected a condition after 'and', found end of rule"),
        Case("a = 1 or", 1, 9, "expected a condition after 'or', found end of rule"),
        Case("not", 1, 4, "expected a condition after 'not', found end of rule"),
        Case("a = 1 and or b = 2", 1, 11, "expected a condition after 'and', found 'or'"),
        Case("= 1", 1, 1, "expected a condition, found '='"),
        Case("1000 <= a", 1, 1, "expected a condition, found number 1000 (a condition starts with an attribute path)"),
        Case("a = 1 and ()", 1, 12, "expected a condition after '(', found ')'"),
        Case("a contains", 1, 11, "expected a value after 'contains', found end of rule"),
        Case("a startsWith 1", 1, 14, "expected a string after 'startsWith', found number 1"),
        Case("a in \"x\"", 1, 6, "expected '[' after 'in', found string \"x\""),
        Case("a in [\"x\",]", 1, 11, "expected a value after ',', found ']'" + valueHint),
        Case("a in [\"x\" \"y\"]", 1, 11, "expected ',' or ']' to close the '[' at line 1, column 6, found string \"y\""),
        Case("a in [1, 2", 1, 11, "expected ',' or ']' to close the '[' at line 1, column 6, found end of rule"),
        // Unclosed strings and names.
        Case("a = \"abc", 1, 5, "unclosed string: expected a closing \" before the end of the rule"),
        Case("a = 1 and\n  b = 'x\nor c exists", 2, 7, "unclosed string: expected a closing ' before the end of the line"),
        Case("`abc = 1", 1, 1, "unclosed backquoted name: expected a closing ` before the end of the rule"),
        Case("``", 1, 1, "empty attribute name ``"),
        // Parentheses.
        Case("(a = 1 and b = 2", 1, 17, "expected 'and', 'or' or ')' to close the '(' at line 1, column 1, found end of rule"),
        Case("a = 1 and (\n  b = 2 or\n  c = 3", 3, 8, "expected 'and', 'or' or ')' to close the '(' at line 1, column 11, found end of rule"),
        Case("(a = 1 b = 2)", 1, 8, "expected 'and', 'or' or ')' to close the '(' at line 1, column 1, found 'b'"),
        Case("a = 1)", 1, 6, "unmatched ')': no '(' is open"),
        // Trailing tokens.
        Case("a = 1 b = 2", 1, 7, "expected 'and', 'or' or end of rule, found 'b'"),
        Case("a exists \"x\"", 1, 10, "expected 'and', 'or' or end of rule, found string \"x\""),
        Case("a = 1 ]", 1, 7, "expected 'and', 'or' or end of rule, found ']'"),
        // Dates.
        Case(
            "d < date(\"2000-13-01\")", 1, 10,
            #"bad date literal: "2000-13-01" is not an ISO 8601 date or date-time (such as "2000-01-01" or "2000-01-01T12:00:00Z")"#),
        Case(
            "d < date('yesterday')", 1, 10,
            #"bad date literal: 'yesterday' is not an ISO 8601 date or date-time (such as "2000-01-01" or "2000-01-01T12:00:00Z")"#),
        Case("d < date \"2000-01-01\"", 1, 10, "expected '(' after 'date', found string \"2000-01-01\""),
        Case("d < date(2000)", 1, 10, "expected a date string inside date(…), found number 2000"),
        Case("d < date(\"2000-01-01\"", 1, 22, "expected ')' after the date string, found end of rule"),
        // Escapes.
        Case(#"a = "\q""#, 1, 6, #"unknown escape '\q'; the escapes are \" \' \\ \/ \n \r \t \uXXXX"#),
        Case(#"a = "\u12""#, 1, 6, #"'\u' must be followed by four hexadecimal digits"#),
        Case(#"a = "\uD800""#, 1, 6, #"'\uD800' is half of a surrogate pair, not a character"#),
        Case(#"a = "\uD800\u0041""#, 1, 6, #"'\uD800' is half of a surrogate pair, not a character"#),
        Case(#"a = "\uDC00""#, 1, 6, #"'\uDC00' is half of a surrogate pair, not a character"#),
        Case("a = \"x\\", 1, 7, #"unfinished escape: expected a character after '\'"#),
        // Numbers and stray characters.
        Case("a = 12abc", 1, 5, "malformed number '12abc'"),
        Case("a = 1.", 1, 5, "malformed number '1.'"),
        Case("a = 1.2.3", 1, 5, "malformed number '1.2.3'"),
        Case("a = 1e", 1, 5, "malformed number '1e'"),
        Case("a = 1e999", 1, 5, "number 1e999 is too large"),
        Case("a = -x", 1, 5, "unexpected character '-': a '-' starts a negative number and must be followed by a digit"),
        Case("a = 1 # comment", 1, 7, "unexpected character '#'"),
        Case("a = {}", 1, 5, "unexpected character '{'"),
        // Paths.
        Case("a.", 1, 3, "expected an attribute name after '.', found end of rule"),
        Case("a..b = 1", 1, 3, "expected an attribute name after '.', found '.'"),
        Case("a. b = 1", 1, 3, "expected an attribute name after '.', found a space"),
        // Columns count Unicode scalars.
        Case("prénom =", 1, 9, "expected a value after '=', found end of rule"),
        Case("a = \"😀\" and\n\tprénom =", 2, 10, "expected a value after '=', found end of rule"),
    ])
    func reportsWhereAndWhat(_ example: Case) {
        guard let error = ruleError(example.rule) else {
            Issue.record("\(example.rule.debugDescription) parsed")
            return
        }
        #expect(error.code == .invalidRule)
        #expect(error.location == ProfileExportError.Location(line: example.line, column: example.column))
        #expect(error.message == example.message)
    }

    @Test func descriptionNamesLineAndColumn() {
        let error = ruleError("a = 1 and\n  b.c =")
        #expect(error?.description == "line 2, column 8: invalid rule: expected a value after '=', found end of rule")
    }

    @Test func nestingIsBounded() throws {
        let limit = RuleParser.maximumDepth
        let deepest = String(repeating: "(", count: limit) + "a exists" + String(repeating: ")", count: limit)
        #expect(try evaluate(deepest, attributes(["a": .int(1)])))
        let tooDeep = String(repeating: "(", count: limit + 1) + "a exists" + String(repeating: ")", count: limit + 1)
        #expect(ruleError(tooDeep)?.location == .init(line: 1, column: limit + 1))
        #expect(ruleError(tooDeep)?.message.hasPrefix("rule nests too deeply") == true)
        let manyNots = String(repeating: "not ", count: limit + 1) + "a exists"
        #expect(ruleError(manyNots)?.location == .init(line: 1, column: 4 * limit + 1))
        // Long chains of and/or are flat, not deep.
        let long = (0..<5_000).map { "a\($0) exists" }.joined(separator: " or ")
        #expect(try evaluate(long, attributes(["a4999": .int(1)])))
    }
}
