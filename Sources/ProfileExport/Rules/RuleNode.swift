// Hubcast — the parsed form of an audience rule: a small tree with pre-split paths and
// pre-parsed literals, so that evaluation does no parsing and no allocation.

/// A comparison operator: `=`, `!=`, `<`, `<=`, `>`, `>=`.
enum RuleComparison: Sendable, Hashable, CaseIterable {
    case equal
    case notEqual
    case less
    case lessOrEqual
    case greater
    case greaterOrEqual

    /// The operator as the rule language writes it.
    var symbol: String {
        switch self {
        case .equal: "="
        case .notEqual: "!="
        case .less: "<"
        case .lessOrEqual: "<="
        case .greater: ">"
        case .greaterOrEqual: ">="
        }
    }

    /// Whether the operator orders its operands (everything but `=` and `!=`).
    var isOrdering: Bool { self != .equal && self != .notEqual }
}

/// A literal of a rule, parsed once.
enum RuleLiteral: Sendable, Hashable {
    case string(String)
    /// A number as a `Double`; `integer` holds it exactly when it was written as an integer that
    /// fits in 64 bits, so that large integer attributes compare exactly.
    case number(Double, integer: Int64?)
    case bool(Bool)
    /// A `date("…")` literal: whole seconds since the epoch, and the text it was written with.
    case date(seconds: Int64, text: String)
}

/// A node of a parsed rule.
indirect enum RuleNode: Sendable, Hashable {
    /// `a and b and …` (at least two children, none of them `all`).
    case all([RuleNode])
    /// `a or b or …` (at least two children, none of them `any`).
    case any([RuleNode])
    /// `not a`.
    case not(RuleNode)
    /// `path exists`.
    case exists(AttributePath)
    /// `path = literal` and the other comparison operators.
    case compare(AttributePath, RuleComparison, RuleLiteral)
    /// `path in [literal, …]`.
    case oneOf(AttributePath, [RuleLiteral])
    /// `path contains literal`.
    case contains(AttributePath, RuleLiteral)
    /// `path startsWith "prefix"`.
    case startsWith(AttributePath, String)
}
