import OrderedCollections
import PropertyBased
import Testing
@testable import ProfileExport

/// Random rules, literals and attribute documents for the property tests.
///
/// Two flavours: ``evaluable`` draws from small pools (a few paths, values that collide often) so
/// that rules and documents meet; ``printable`` draws from wide ones (odd names, any strings,
/// any numbers and dates) to exercise the printer and the lexer.
enum RuleRandom {
    static let evaluablePaths = ["a", "b", "c.d", "c.e"].map { AttributePath(components: $0.split(separator: ".").map(String.init)) }

    static let evaluableLiterals: [RuleLiteral] = [
        .number(-2, integer: -2), .number(0, integer: 0), .number(1, integer: 1), .number(2, integer: 2),
        .number(-1.5, integer: nil), .number(1, integer: nil), .number(2.5, integer: nil),
        .string(""), .string("x"), .string("xy"), .string("y"), .string("2000-01-01"),
        .bool(true), .bool(false),
        .date(seconds: 946_684_800, text: "2000-01-01"), .date(seconds: 946_681_200, text: "1999-12-31T23:00:00Z"),
    ]

    static let evaluableValues: [JSONValue] = [
        .null, .int(-2), .int(0), .int(1), .int(2), .double(-1.5), .double(0), .double(1), .double(2.5),
        .string(""), .string("x"), .string("xy"), .string("y"), .string("2000-01-01"),
        .string("1999-12-31T23:00:00Z"), .string("2000-01-01T00:00:00+01:00"), .bool(true), .bool(false),
        .array([.string("x"), .int(1), .bool(true)]), .array([]), .object(["k": .int(1)]),
    ]

    /// Rules over ``evaluablePaths``.
    static var evaluable: Generator<RuleNode, Shrink.None<RuleNode>> {
        Generator { rng in node(depth: 3, paths: evaluablePaths, literal: { evaluableLiterals.randomElement(using: &$0)! }, using: &rng) }
    }

    /// Rules with any names and any literals.
    static var printable: Generator<RuleNode, Shrink.None<RuleNode>> {
        Generator { rng in
            let paths = (0..<4).map { _ in anyPath(using: &rng) }
            return node(depth: 3, paths: paths, literal: { anyLiteral(using: &$0) }, using: &rng)
        }
    }

    /// Documents that give each of ``evaluablePaths`` a value, `null`, or nothing.
    static var document: Generator<JSONValue, Shrink.None<JSONValue>> {
        Generator { rng in
            var top: JSONObject = [:]
            var inner: JSONObject = [:]
            for key in ["a", "b"] where Bool.random(using: &rng) || Bool.random(using: &rng) {
                top[key] = evaluableValues.randomElement(using: &rng)!
            }
            for key in ["d", "e"] where Bool.random(using: &rng) || Bool.random(using: &rng) {
                inner[key] = evaluableValues.randomElement(using: &rng)!
            }
            if Int.random(in: 0..<5, using: &rng) > 0 { top["c"] = .object(inner) }
            return .object(top)
        }
    }

    static var path: Generator<AttributePath, Shrink.None<AttributePath>> {
        Generator { rng in evaluablePaths.randomElement(using: &rng)! }
    }

    static var literal: Generator<RuleLiteral, Shrink.None<RuleLiteral>> {
        Generator { rng in evaluableLiterals.randomElement(using: &rng)! }
    }

    // MARK: - Building blocks

    static func node(
        depth: Int, paths: [AttributePath], literal: (inout any SeededRandomNumberGenerator) -> RuleLiteral,
        using rng: inout any SeededRandomNumberGenerator
    ) -> RuleNode {
        let path = paths.randomElement(using: &rng)!
        switch Int.random(in: 0..<(depth > 0 ? 9 : 5), using: &rng) {
        case 0:
            return .exists(path)
        case 1:
            var comparison = RuleComparison.allCases.randomElement(using: &rng)!
            let value = literal(&rng)
            if case .bool = value, comparison.isOrdering { comparison = Bool.random(using: &rng) ? .equal : .notEqual }
            return .compare(path, comparison, value)
        case 2:
            return .oneOf(path, (0..<Int.random(in: 0...3, using: &rng)).map { _ in literal(&rng) })
        case 3:
            return .contains(path, literal(&rng))
        case 4:
            if case .string(let prefix) = literal(&rng) { return .startsWith(path, prefix) }
            return .startsWith(path, "x")
        case 5, 6:
            let children = (0..<Int.random(in: 2...3, using: &rng)).map { _ in node(depth: depth - 1, paths: paths, literal: literal, using: &rng) }
            return Bool.random(using: &rng) ? .all(children) : .any(children)
        default:
            return .not(node(depth: depth - 1, paths: paths, literal: literal, using: &rng))
        }
    }

    static let oddSteps = [
        "a", "b", "first name", "b.c", "and", "NOT", "In", "a`b", "``", "1st", "prénom", "$x", "@y", "_z",
        "date", "true", "exists", "x-y", "tab\there", "😀", "0",
    ]

    static func anyPath(using rng: inout any SeededRandomNumberGenerator) -> AttributePath {
        AttributePath(components: (0..<Int.random(in: 1...3, using: &rng)).map { _ in oddSteps.randomElement(using: &rng)! })
    }

    static let oddScalars: [Unicode.Scalar] = [
        "a", "Z", "0", " ", "\"", "'", "\\", "/", "\n", "\r", "\t", "\u{0}", "\u{1F}", "\u{7F}", "é", "\u{0308}", "\u{2028}", "😀", "`", "(", ")",
    ]

    static func anyLiteral(using rng: inout any SeededRandomNumberGenerator) -> RuleLiteral {
        switch Int.random(in: 0..<5, using: &rng) {
        case 0:
            var text = String.UnicodeScalarView()
            for _ in 0..<Int.random(in: 0...8, using: &rng) { text.append(oddScalars.randomElement(using: &rng)!) }
            return .string(String(text))
        case 1:
            let integer = Int64.random(in: .min ... .max, using: &rng)
            return .number(Double(integer), integer: integer)
        case 2:
            var double: Double
            repeat { double = Double(bitPattern: UInt64.random(in: .min ... .max, using: &rng)) } while !double.isFinite
            return .number(double, integer: nil)
        case 3:
            return .bool(Bool.random(using: &rng))
        default:
            // 0001-01-01 ... 9999-12-31T23:59:59Z
            let seconds = Int64.random(in: -62_135_596_800...253_402_300_799, using: &rng)
            return .date(seconds: seconds, text: Timestamp(seconds: seconds).description)
        }
    }
}

extension RuleNode {
    /// The node as the parser builds it: `and` inside `and` and `or` inside `or` merged.
    var flattened: RuleNode {
        switch self {
        case .all(let nodes):
            return .all(
                nodes.flatMap { node -> [RuleNode] in
                    if case .all(let inner) = node.flattened { return inner }
                    return [node.flattened]
                })
        case .any(let nodes):
            return .any(
                nodes.flatMap { node -> [RuleNode] in
                    if case .any(let inner) = node.flattened { return inner }
                    return [node.flattened]
                })
        case .not(let node):
            return .not(node.flattened)
        default:
            return self
        }
    }

    /// The paths the node reads, deduplicated, in first-use order.
    var readPaths: [AttributePath] {
        var seen: Set<AttributePath> = []
        var paths: [AttributePath] = []
        func visit(_ node: RuleNode) {
            switch node {
            case .all(let nodes), .any(let nodes): nodes.forEach(visit)
            case .not(let node): visit(node)
            case .exists(let path), .compare(let path, _, _), .oneOf(let path, _), .contains(let path, _), .startsWith(let path, _):
                if seen.insert(path).inserted { paths.append(path) }
            }
        }
        visit(self)
        return paths
    }
}
