// Hubcast — writing a parsed rule back as rule text (for messages and tests).

extension RuleNode {
    /// Rule text that parses back to an equivalent node: one space between tokens, parentheses
    /// only where precedence needs them, strings in double quotes.
    var text: String {
        switch self {
        case .all(let nodes):
            return nodes.map { node in
                if case .any = node { return "(\(node.text))" }
                return node.text
            }.joined(separator: " and ")
        case .any(let nodes):
            return nodes.map { node in
                if case .any = node { return "(\(node.text))" }
                return node.text
            }.joined(separator: " or ")
        case .not(let node):
            switch node {
            case .all, .any: return "not (\(node.text))"
            default: return "not \(node.text)"
            }
        case .exists(let path):
            return "\(RuleNode.text(of: path)) exists"
        case .compare(let path, let comparison, let literal):
            return "\(RuleNode.text(of: path)) \(comparison.symbol) \(literal.text)"
        case .oneOf(let path, let literals):
            return "\(RuleNode.text(of: path)) in [\(literals.map(\.text).joined(separator: ", "))]"
        case .contains(let path, let literal):
            return "\(RuleNode.text(of: path)) contains \(literal.text)"
        case .startsWith(let path, let prefix):
            return "\(RuleNode.text(of: path)) startsWith \(RuleLiteral.string(prefix).text)"
        }
    }

    /// A path as rule text: bare steps where the lexer reads them back as one step, backquotes
    /// elsewhere.
    static func text(of path: AttributePath) -> String {
        path.components.enumerated().map { position, step in
            let scalars = step.unicodeScalars
            let bare =
                scalars.allSatisfy(RuleLexer.isName)
                && (position > 0 || RuleLexer.isNameStart(scalars.first!))
                && (path.components.count > 1 || RuleKeyword(word: step) == nil)
            if bare { return step }
            var quoted = "`"
            for scalar in scalars {
                quoted.unicodeScalars.append(scalar)
                if scalar == "`" { quoted.unicodeScalars.append("`") }
            }
            return quoted + "`"
        }.joined(separator: ".")
    }
}

extension RuleLiteral {
    /// The literal as rule text.
    var text: String {
        switch self {
        case .string(let value):
            var written = "\""
            for scalar in value.unicodeScalars {
                switch scalar {
                case "\"": written += "\\\""
                case "\\": written += "\\\\"
                case "\n": written += "\\n"
                case "\r": written += "\\r"
                case "\t": written += "\\t"
                default:
                    if scalar.value < 0x20 || scalar.value == 0x7F || scalar.properties.isWhitespace && scalar != " " {
                        let digits = String(scalar.value, radix: 16, uppercase: true)
                        if scalar.value > 0xFFFF {
                            let offset = scalar.value - 0x10000
                            written += "\\u\(RuleLiteral.hex(0xD800 + offset >> 10))\\u\(RuleLiteral.hex(0xDC00 + offset & 0x3FF))"
                        } else {
                            written += "\\u" + String(repeating: "0", count: 4 - digits.count) + digits
                        }
                    } else {
                        written.unicodeScalars.append(scalar)
                    }
                }
            }
            return written + "\""
        case .number(let value, let integer):
            if let integer { return String(integer) }
            return String(value)
        case .bool(let value):
            return value ? "true" : "false"
        case .date(_, let text):
            return "date(\(RuleLiteral.string(text).text))"
        }
    }

    private static func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
