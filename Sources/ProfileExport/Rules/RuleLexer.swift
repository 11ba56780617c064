// Hubcast — tokens of the audience rule language.

/// A reserved word of the rule language; matched in any case (`AND`, `And`, `and`).
enum RuleKeyword: String, Sendable, CaseIterable {
    case and, or, not, `in`, exists, contains, startsWith, `true`, `false`

    /// The keyword spelled `word` in any case, or `nil`.
    init?(word: String) {
        let lowered = word.lowercased()
        guard let keyword = RuleKeyword.allCases.first(where: { $0.rawValue.lowercased() == lowered }) else { return nil }
        self = keyword
    }
}

/// One token and where it starts.
struct RuleToken: Sendable {
    enum Kind: Sendable, Equatable {
        /// An attribute path; `bare` when it is one step written without backquotes.
        case path([String], bare: Bool)
        case keyword(RuleKeyword)
        case string(String)
        case number(Double, integer: Int64?)
        case comparison(RuleComparison)
        case leftParenthesis, rightParenthesis, leftBracket, rightBracket, comma
        case end
    }

    var kind: Kind
    /// 1-based line.
    var line: Int
    /// 1-based column, in Unicode scalars.
    var column: Int
    /// The source text of the token, for messages.
    var text: String

    /// The token as a message names it: `end of rule`, `string "x"`, `number 12`, `'and'`.
    var quoted: String {
        let short = text.unicodeScalars.count > 40 ? String(String.UnicodeScalarView(text.unicodeScalars.prefix(40))) + "…" : text
        switch kind {
        case .end: return "end of rule"
        case .string: return "string \(short)"
        case .number: return "number \(short)"
        default: return "'\(short)'"
        }
    }
}

/// Splits rule text into tokens, one at a time, tracking lines and columns.
struct RuleLexer {
    private let scalars: [Unicode.Scalar]
    private var index = 0
    private var line = 1
    private var lineStart = 0

    init(_ source: String) {
        scalars = Array(source.unicodeScalars)
    }

    /// The next token; `.end` (again and again) at the end of the text.
    mutating func next() throws(ProfileExportError) -> RuleToken {
        skipWhitespace()
        let start = index
        let startLine = line
        let startColumn = index - lineStart + 1
        func token(_ kind: RuleToken.Kind) -> RuleToken {
            RuleToken(kind: kind, line: startLine, column: startColumn, text: text(start..<index))
        }
        guard index < scalars.count else { return token(.end) }
        let scalar = scalars[index]
        switch scalar {
        case "(": index += 1; return token(.leftParenthesis)
        case ")": index += 1; return token(.rightParenthesis)
        case "[": index += 1; return token(.leftBracket)
        case "]": index += 1; return token(.rightBracket)
        case ",": index += 1; return token(.comma)
        case "\"", "'": return token(try string())
        case "-", "0"..."9": return token(try number())
        case "`": return token(try path())
        default:
            if RuleLexer.isNameStart(scalar) { return token(try path()) }
            if RuleLexer.isOperator(scalar) { return token(try comparison()) }
            throw error(at: start, "unexpected character \(RuleLexer.describe(scalar))")
        }
    }

    // MARK: - Token kinds

    private mutating func path() throws(ProfileExportError) -> RuleToken.Kind {
        var steps: [String] = []
        var quoted = false
        while true {
            if index < scalars.count, scalars[index] == "`" {
                steps.append(try quotedStep())
                quoted = true
            } else if index < scalars.count, RuleLexer.isName(scalars[index]) {
                let start = index
                while index < scalars.count, RuleLexer.isName(scalars[index]) { index += 1 }
                steps.append(text(start..<index))
            } else {
                throw error(at: index, "expected an attribute name after '.', found \(describe(at: index))")
            }
            guard index < scalars.count, scalars[index] == "." else { break }
            index += 1
        }
        if steps.count == 1, !quoted, let keyword = RuleKeyword(word: steps[0]) { return .keyword(keyword) }
        return .path(steps, bare: steps.count == 1 && !quoted)
    }

    /// A step in backquotes: anything but a line break; a doubled backquote stands for one.
    private mutating func quotedStep() throws(ProfileExportError) -> String {
        let open = index
        index += 1
        var step = String.UnicodeScalarView()
        while true {
            guard index < scalars.count, !RuleLexer.isLineBreak(scalars[index]) else {
                throw error(
                    at: open, "unclosed backquoted name: expected a closing ` before the end of the \(index < scalars.count ? "line" : "rule")")
            }
            if scalars[index] == "`" {
                if index + 1 < scalars.count, scalars[index + 1] == "`" {
                    step.append("`")
                    index += 2
                    continue
                }
                index += 1
                break
            }
            step.append(scalars[index])
            index += 1
        }
        guard !step.isEmpty else { throw error(at: open, "empty attribute name ``") }
        return String(step)
    }

    private mutating func string() throws(ProfileExportError) -> RuleToken.Kind {
        let open = index
        let quote = scalars[index]
        index += 1
        var value = String.UnicodeScalarView()
        while true {
            guard index < scalars.count, !RuleLexer.isLineBreak(scalars[index]) else {
                let end = index < scalars.count ? "line" : "rule"
                throw error(at: open, "unclosed string: expected a closing \(quote) before the end of the \(end)")
            }
            let scalar = scalars[index]
            if scalar == quote {
                index += 1
                return .string(String(value))
            }
            if scalar == "\\" {
                value.append(try escape())
            } else {
                value.append(scalar)
                index += 1
            }
        }
    }

    /// One escape sequence, `index` at its backslash.
    private mutating func escape() throws(ProfileExportError) -> Unicode.Scalar {
        let backslash = index
        index += 1
        guard index < scalars.count, !RuleLexer.isLineBreak(scalars[index]) else {
            throw error(at: backslash, "unfinished escape: expected a character after '\\'")
        }
        let letter = scalars[index]
        index += 1
        switch letter {
        case "\"", "'", "\\", "/": return letter
        case "n": return "\n"
        case "r": return "\r"
        case "t": return "\t"
        case "u":
            let first = try hexQuad(escapeAt: backslash)
            if (0xD800...0xDBFF).contains(first), index + 1 < scalars.count, scalars[index] == "\\", scalars[index + 1] == "u" {
                let secondAt = index
                index += 2
                let second = try hexQuad(escapeAt: secondAt)
                if (0xDC00...0xDFFF).contains(second), let scalar = Unicode.Scalar(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)) {
                    return scalar
                }
            }
            guard let scalar = Unicode.Scalar(first) else {
                throw error(at: backslash, "'\\u\(RuleLexer.hex(first))' is half of a surrogate pair, not a character")
            }
            return scalar
        default:
            throw error(at: backslash, "unknown escape '\\\(letter)'; the escapes are \\\" \\' \\\\ \\/ \\n \\r \\t \\uXXXX")
        }
    }

    private mutating func hexQuad(escapeAt backslash: Int) throws(ProfileExportError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard index < scalars.count, let digit = RuleLexer.hexValue(scalars[index]) else {
                throw error(at: backslash, "'\\u' must be followed by four hexadecimal digits")
            }
            value = value << 4 | digit
            index += 1
        }
        return value
    }

    /// `-?digits(.digits)?([eE][+-]?digits)?`, not followed by a name character.
    private mutating func number() throws(ProfileExportError) -> RuleToken.Kind {
        let start = index
        var isInteger = true
        if scalars[index] == "-" {
            index += 1
            guard index < scalars.count, RuleLexer.isDigit(scalars[index]) else {
                throw error(at: start, "unexpected character '-': a '-' starts a negative number and must be followed by a digit")
            }
        }
        skipDigits()
        if index < scalars.count, scalars[index] == "." {
            isInteger = false
            index += 1
            guard index < scalars.count, RuleLexer.isDigit(scalars[index]) else { throw malformedNumber(from: start) }
            skipDigits()
        }
        if index < scalars.count, scalars[index] == "e" || scalars[index] == "E" {
            isInteger = false
            index += 1
            if index < scalars.count, scalars[index] == "+" || scalars[index] == "-" { index += 1 }
            guard index < scalars.count, RuleLexer.isDigit(scalars[index]) else { throw malformedNumber(from: start) }
            skipDigits()
        }
        if index < scalars.count, RuleLexer.isName(scalars[index]) || scalars[index] == "." || scalars[index] == "`" {
            throw malformedNumber(from: start)
        }
        let written = text(start..<index)
        guard let value = Double(written), value.isFinite else {
            throw error(at: start, "number \(written) is too large")
        }
        return .number(value, integer: isInteger ? Int64(written) : nil)
    }

    private mutating func skipDigits() {
        while index < scalars.count, RuleLexer.isDigit(scalars[index]) { index += 1 }
    }

    private mutating func malformedNumber(from start: Int) -> ProfileExportError {
        while index < scalars.count, RuleLexer.isName(scalars[index]) || scalars[index] == "." || scalars[index] == "-" || scalars[index] == "+" {
            index += 1
        }
        return error(at: start, "malformed number '\(text(start..<index))'")
    }

    /// A run of operator characters, which must be one of the six comparison operators.
    private mutating func comparison() throws(ProfileExportError) -> RuleToken.Kind {
        let start = index
        while index < scalars.count, RuleLexer.isOperator(scalars[index]) { index += 1 }
        let written = text(start..<index)
        if let known = RuleComparison.allCases.first(where: { $0.symbol == written }) { return .comparison(known) }
        let hint =
            switch written {
            case "==": "write '=' to test equality"
            case "<>", "!==": "write '!=' to test inequality"
            case "=<": "write '<='"
            case "=>": "write '>='"
            case "&&", "&": "write 'and'"
            case "||", "|": "write 'or'"
            case "!": "write 'not' before a condition"
            default: "the comparison operators are =, !=, <, <=, >, >="
            }
        throw error(at: start, "unknown operator '\(written)'; \(hint)")
    }

    // MARK: - Helpers

    private mutating func skipWhitespace() {
        while index < scalars.count, scalars[index].properties.isWhitespace {
            if scalars[index] == "\n" {
                line += 1
                lineStart = index + 1
            }
            index += 1
        }
    }

    private func text(_ range: Range<Int>) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars[range])
        return String(view)
    }

    private func describe(at position: Int) -> String {
        guard position < scalars.count else { return "end of rule" }
        return RuleLexer.describe(scalars[position])
    }

    /// An error at a position on the current line (no token spans lines).
    private func error(at position: Int, _ message: String) -> ProfileExportError {
        ProfileExportError(.invalidRule, message, at: .init(line: line, column: position - lineStart + 1))
    }

    static func describe(_ scalar: Unicode.Scalar) -> String {
        if scalar.properties.isWhitespace { return "a space" }
        if scalar.value < 0x20 || scalar.value == 0x7F { return "character U+\(hex(scalar.value))" }
        return "'\(scalar)'"
    }

    private static func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    private static func hexValue(_ scalar: Unicode.Scalar) -> UInt32? {
        switch scalar {
        case "0"..."9": scalar.value - 0x30
        case "a"..."f": scalar.value - 0x61 + 10
        case "A"..."F": scalar.value - 0x41 + 10
        default: nil
        }
    }

    static func isDigit(_ scalar: Unicode.Scalar) -> Bool { ("0"..."9").contains(scalar) }

    /// A character that may start a bare path: a letter, `_`, `$` or `@`.
    static func isNameStart(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "a"..."z", "A"..."Z", "_", "$", "@": true
        default: scalar.value > 0x7F && scalar.properties.isAlphabetic
        }
    }

    /// A character of a bare path step: a name start or a digit.
    static func isName(_ scalar: Unicode.Scalar) -> Bool { isNameStart(scalar) || isDigit(scalar) }

    static func isOperator(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "=", "!", "<", ">", "~", "&", "|": true
        default: false
        }
    }

    static func isLineBreak(_ scalar: Unicode.Scalar) -> Bool { scalar == "\n" || scalar == "\r" }
}
