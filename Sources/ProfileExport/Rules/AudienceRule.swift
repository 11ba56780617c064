// Hubcast — audience rules: which profiles belong to a rule audience (docs/rules.md).

/// A parsed audience rule, such as `person.name.firstName = "John" and loyalty.points >= 1000`.
///
/// Parse once with ``init(parsing:)``, then call ``matches(_:)`` for every profile update; matching
/// does not allocate. The language is described in the README ("Audience rules"). In short:
/// comparisons (`=`, `!=`, `<`, `<=`, `>`, `>=`), `exists`, `in [...]`, `contains`, `startsWith`,
/// combined with `not`, `and`, `or` and parentheses. A comparison, `in`, `contains` or `startsWith`
/// on an attribute the profile lacks or holds as `null` is false, `!=` included; across types
/// (a string against a number) a comparison is false and `!=` is true.
///
/// Two rules are equal when their source texts are equal.
public struct AudienceRule: Sendable, Hashable, CustomStringConvertible {
    /// The source text.
    public let description: String
    /// Every attribute path the rule reads (deduplicated, in first-use order).
    public let paths: [AttributePath]
    let root: RuleNode

    /// Parses a rule.
    ///
    /// - Throws: ``ProfileExportError`` with code ``ProfileExportError/Code/invalidRule`` and the
    ///   1-based line and column of the offending token, with a message saying what was expected
    ///   and what was found, such as `expected a value after '=', found end of rule`.
    public init(parsing source: String) throws(ProfileExportError) {
        var parser = try RuleParser(source)
        root = try parser.parseRule()
        paths = parser.paths
        description = source
    }

    /// Whether a profile with this attribute document (a `JSONValue.object`) satisfies the rule.
    public func matches(_ attributes: JSONValue) -> Bool {
        root.evaluate(attributes.object ?? [:])
    }

    /// Whether a profile with these attributes satisfies the rule.
    func matches(object attributes: JSONObject) -> Bool {
        root.evaluate(attributes)
    }

    public static func == (lhs: AudienceRule, rhs: AudienceRule) -> Bool {
        lhs.description == rhs.description
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(description)
    }
}
