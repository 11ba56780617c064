// Hubcast — recursive-descent parser of the audience rule language.
//
//   rule      = or end
//   or        = and { "or" and }
//   and       = unary { "and" unary }
//   unary     = "not" unary | "(" or ")" | condition
//   condition = path ( "exists" | comparison value | "in" list
//                    | "contains" value | "startsWith" string )
//   list      = "[" [ value { "," value } ] "]"
//   value     = string | number | "true" | "false" | "date" "(" string ")"

/// Parses rule text into a ``RuleNode`` and collects the paths it reads.
struct RuleParser {
    /// How deep parentheses and `not` may nest; deeper rules are refused rather than risk the stack.
    static let maximumDepth = 100

    private var lexer: RuleLexer
    private var token: RuleToken
    private var previous: RuleToken?
    private var depth = 0
    private var seen: Set<AttributePath> = []
    /// Every path read, in first-use order.
    private(set) var paths: [AttributePath] = []

    init(_ source: String) throws(ProfileExportError) {
        lexer = RuleLexer(source)
        token = try lexer.next()
    }

    /// The whole rule, up to the end of the text.
    mutating func parseRule() throws(ProfileExportError) -> RuleNode {
        if token.kind == .end { throw failure("empty rule: expected a condition, found end of rule") }
        let node = try parseOr()
        switch token.kind {
        case .end: return node
        case .rightParenthesis: throw failure("unmatched ')': no '(' is open")
        default: throw failure("expected 'and', 'or' or end of rule, found \(token.quoted)")
        }
    }

    // MARK: - Logic

    private mutating func parseOr() throws(ProfileExportError) -> RuleNode {
        var nodes = [try parseAnd()]
        while token.kind == .keyword(.or) {
            try advance()
            nodes.append(try parseAnd())
        }
        guard nodes.count > 1 else { return nodes[0] }
        return .any(
            nodes.flatMap { node -> [RuleNode] in
                if case .any(let inner) = node { return inner }
                return [node]
            })
    }

    private mutating func parseAnd() throws(ProfileExportError) -> RuleNode {
        var nodes = [try parseUnary()]
        while token.kind == .keyword(.and) {
            try advance()
            nodes.append(try parseUnary())
        }
        guard nodes.count > 1 else { return nodes[0] }
        return .all(
            nodes.flatMap { node -> [RuleNode] in
                if case .all(let inner) = node { return inner }
                return [node]
            })
    }

    private mutating func parseUnary() throws(ProfileExportError) -> RuleNode {
        switch token.kind {
        case .keyword(.not):
            try enter()
            try advance()
            let node = RuleNode.not(try parseUnary())
            depth -= 1
            return node
        case .leftParenthesis:
            let open = token
            try enter()
            try advance()
            let node = try parseOr()
            guard token.kind == .rightParenthesis else {
                throw failure("expected 'and', 'or' or ')' to close the '(' at line \(open.line), column \(open.column), found \(token.quoted)")
            }
            try advance()
            depth -= 1
            return node
        case .path(let steps, _):
            return try parseCondition(AttributePath(components: steps))
        default:
            let after = previous.map { " after '\($0.text)'" } ?? ""
            let hint =
                switch token.kind {
                case .string, .number, .keyword(.true), .keyword(.false): " (a condition starts with an attribute path)"
                default: ""
                }
            throw failure("expected a condition\(after), found \(token.quoted)\(hint)")
        }
    }

    private mutating func enter() throws(ProfileExportError) {
        depth += 1
        if depth > RuleParser.maximumDepth {
            throw failure("rule nests too deeply (more than \(RuleParser.maximumDepth) levels of parentheses and 'not')")
        }
    }

    // MARK: - Conditions

    private mutating func parseCondition(_ path: AttributePath) throws(ProfileExportError) -> RuleNode {
        if seen.insert(path).inserted { paths.append(path) }
        let pathToken = token
        try advance()
        let operatorToken = token
        switch token.kind {
        case .keyword(.exists):
            try advance()
            return .exists(path)
        case .comparison(let comparison):
            try advance()
            let literal = try parseValue()
            if comparison.isOrdering, case .bool = literal {
                throw failure("'\(comparison.symbol)' does not order booleans; compare true and false with = or !=", at: operatorToken)
            }
            return .compare(path, comparison, literal)
        case .keyword(.in):
            try advance()
            return .oneOf(path, try parseList())
        case .keyword(.contains):
            try advance()
            return .contains(path, try parseValue())
        case .keyword(.startsWith):
            try advance()
            guard case .string(let prefix) = token.kind else {
                throw failure("expected a string after 'startsWith', found \(token.quoted)")
            }
            try advance()
            return .startsWith(path, prefix)
        case .keyword(.not):
            throw failure("expected an operator after '\(pathToken.text)', found 'not' (write 'not' before the condition: not \(pathToken.text) …)")
        case .path(_, bare: true):
            throw failure("unknown operator '\(token.text)' after '\(pathToken.text)'; expected \(RuleParser.operatorList)")
        default:
            throw failure("expected an operator after '\(pathToken.text)' (\(RuleParser.operatorList)), found \(token.quoted)")
        }
    }

    private static let operatorList = "=, !=, <, <=, >, >=, in, contains, startsWith or exists"

    /// `[value, …]`, possibly empty.
    private mutating func parseList() throws(ProfileExportError) -> [RuleLiteral] {
        let open = token
        guard token.kind == .leftBracket else { throw failure("expected '[' after 'in', found \(token.quoted)") }
        try advance()
        var literals: [RuleLiteral] = []
        if token.kind == .rightBracket {
            try advance()
            return literals
        }
        while true {
            literals.append(try parseValue())
            switch token.kind {
            case .comma:
                try advance()
            case .rightBracket:
                try advance()
                return literals
            default:
                throw failure("expected ',' or ']' to close the '[' at line \(open.line), column \(open.column), found \(token.quoted)")
            }
        }
    }

    /// A string, number, `true`, `false` or `date("…")`.
    private mutating func parseValue() throws(ProfileExportError) -> RuleLiteral {
        switch token.kind {
        case .string(let text):
            try advance()
            return .string(text)
        case .number(let value, let integer):
            try advance()
            return .number(value, integer: integer)
        case .keyword(.true):
            try advance()
            return .bool(true)
        case .keyword(.false):
            try advance()
            return .bool(false)
        case .path(let steps, bare: true) where steps[0].lowercased() == "date":
            return try parseDate()
        default:
            let after = previous.map { " after '\($0.text)'" } ?? ""
            let hint = token.kind == .end ? "" : " (a value is a string, a number, true, false or date(\"…\"))"
            throw failure("expected a value\(after), found \(token.quoted)\(hint)")
        }
    }

    /// `date("2000-01-01")`, the token at `date`.
    private mutating func parseDate() throws(ProfileExportError) -> RuleLiteral {
        try advance()
        guard token.kind == .leftParenthesis else { throw failure("expected '(' after 'date', found \(token.quoted)") }
        try advance()
        guard case .string(let text) = token.kind else {
            throw failure("expected a date string inside date(…), found \(token.quoted)")
        }
        guard let timestamp = Timestamp.parse(text) else {
            throw failure("bad date literal: \(token.text) is not an ISO 8601 date or date-time (such as \"2000-01-01\" or \"2000-01-01T12:00:00Z\")")
        }
        try advance()
        guard token.kind == .rightParenthesis else {
            throw failure("expected ')' after the date string, found \(token.quoted)")
        }
        try advance()
        return .date(seconds: timestamp.seconds, text: text)
    }

    // MARK: - Helpers

    private mutating func advance() throws(ProfileExportError) {
        previous = token
        token = try lexer.next()
    }

    /// An `invalidRule` error at the current token (or at `at`).
    private func failure(_ message: String, at place: RuleToken? = nil) -> ProfileExportError {
        let place = place ?? token
        return ProfileExportError(.invalidRule, message, at: .init(line: place.line, column: place.column))
    }
}
