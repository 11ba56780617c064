import OrderedCollections
import Testing
@testable import ProfileExport

/// `and`, `or`, `not`, parentheses, keywords, paths and the rule's public properties.
@Suite struct RuleLogicTests {
    let abc = attributes(["a": .int(1), "b": .int(0), "c": .int(0)])

    @Test func andOrNot() throws {
        #expect(try evaluate("a = 1 and b = 0", abc))
        #expect(try !evaluate("a = 1 and b = 1", abc))
        #expect(try !evaluate("a = 0 and b = 0", abc))
        #expect(try evaluate("a = 1 or b = 1", abc))
        #expect(try evaluate("a = 0 or b = 0", abc))
        #expect(try !evaluate("a = 0 or b = 1", abc))
        #expect(try evaluate("not a = 0", abc))
        #expect(try !evaluate("not a = 1", abc))
        #expect(try evaluate("a = 1 and b = 0 and c = 0", abc))
        #expect(try !evaluate("a = 1 and b = 0 and c = 1", abc))
        #expect(try evaluate("a = 0 or b = 1 or c = 0", abc))
        #expect(try !evaluate("a = 0 or b = 1 or c = 1", abc))
    }

    @Test func andBindsTighterThanOr() throws {
        // a or (b and c), not (a or b) and c.
        #expect(try evaluate("a = 1 or b = 1 and c = 1", abc))
        #expect(try !evaluate("(a = 1 or b = 1) and c = 1", abc))
        #expect(try evaluate("b = 1 and c = 1 or a = 1", abc))
        #expect(try !evaluate("b = 1 and (c = 1 or a = 1)", abc))
    }

    @Test func notBindsTighterThanAndAndOr() throws {
        // (not a = 1) and b = 1 is false; not (a = 1 and b = 1) would be true.
        #expect(try !evaluate("not a = 1 and b = 1", abc))
        #expect(try evaluate("not (a = 1 and b = 1)", abc))
        // With a = 2, b = 1: (not a = 2) or b = 1 is true; not (a = 2 or b = 1) would be false.
        let other = attributes(["a": .int(2), "b": .int(1)])
        #expect(try evaluate("not a = 2 or b = 1", other))
        #expect(try !evaluate("not (a = 2 or b = 1)", other))
    }

    @Test func parenthesesAndNestedNot() throws {
        #expect(try evaluate("a = 1 and (b = 2 or not c exists)", attributes(["a": .int(1)])))
        #expect(try !evaluate("a = 1 and (b = 2 or not c exists)", attributes(["a": .int(1), "c": .int(5)])))
        #expect(try evaluate("a = 1 and (b = 2 or not c exists)", attributes(["a": .int(1), "b": .int(2), "c": .int(5)])))
        #expect(try evaluate("((a = 1))", abc))
        #expect(try evaluate("not not a = 1", abc))
        #expect(try !evaluate("not not not a = 1", abc))
        #expect(try evaluate("not (not a = 1)", abc))
        #expect(try evaluate("((a = 0) or ((b = 0) and (c = 0)))", abc))
        #expect(try !evaluate("not ((a = 0) or ((b = 0) and (c = 0)))", abc))
    }

    @Test func keywordsInAnyCase() throws {
        #expect(try evaluate("a = 1 AND b = 0", abc))
        #expect(try evaluate("a = 0 Or b = 0", abc))
        #expect(try evaluate("NOT a = 0", abc))
        #expect(try evaluate("a EXISTS", abc))
        #expect(try evaluate("a IN [1]", abc))
        #expect(try evaluate("person.email CONTAINS \"@\""))
        #expect(try evaluate("person.email STARTSWITH \"j\""))
        #expect(try evaluate("person.email startswith \"j\""))
        #expect(try evaluate("consent.email = TRUE"))
        #expect(try evaluate("person.birthDate < DATE(\"2000-01-01\")"))
        // Paths are case-sensitive: A is not a.
        #expect(try !evaluate("A = 1", abc))
    }

    @Test func rulesSpanLines() throws {
        let rule = "a = 1\n  and b = 0\r\n\tand (c = 5\n    or c = 0)\n"
        #expect(try evaluate(rule, abc))
        #expect(try !evaluate(rule, attributes(["a": .int(1), "b": .int(0), "c": .int(1)])))
    }

    @Test func pathSteps() throws {
        let document = attributes([
            "_id": .int(1), "$ref": .int(2), "@type": .int(3), "prénom": .string("Zoé"),
            "items": .object(["0": .string("first"), "2nd": .string("second")]),
            "first name": .int(4), "b.c": .int(5), "and": .int(6), "a`b": .int(7), "date": .int(8),
            "a": .object(["b.c": .int(9), "not": .int(10)]),
        ])
        #expect(try evaluate("_id = 1 and $ref = 2 and @type = 3", document))
        #expect(try evaluate("prénom = \"Zoé\"", document))
        #expect(try evaluate("items.0 = \"first\" and items.2nd = \"second\"", document))
        #expect(try evaluate("`first name` = 4", document))
        #expect(try evaluate("`b.c` = 5 and a.`b.c` = 9", document))
        #expect(try !evaluate("b.c exists", document))
        #expect(try evaluate("`and` = 6", document))
        #expect(try evaluate("`a``b` = 7", document))
        #expect(try evaluate("date = 8", document))
        #expect(try evaluate("a.not = 10", document))
    }

    @Test func pathsInFirstUseOrder() throws {
        let rule = try AudienceRule(parsing: "b = 1 and a.x = 2 or b exists and not (c in [1] or a.x contains 1)")
        #expect(rule.paths == [try AttributePath("b"), try AttributePath("a.x"), try AttributePath("c")])
        #expect(try AudienceRule(parsing: "`x.y`.z exists").paths == [AttributePath(components: ["x.y", "z"])])
    }

    @Test func descriptionAndEquality() throws {
        let source = "a = 1\n and b = 2"
        let rule = try AudienceRule(parsing: source)
        #expect(rule.description == source)
        #expect(rule == (try AudienceRule(parsing: source)))
        #expect(rule != (try AudienceRule(parsing: "a = 1 and b = 2")))
        #expect(Set([rule, try AudienceRule(parsing: source)]).count == 1)
    }

    @Test func flattensChainsOfAndAndOr() throws {
        let rule = try AudienceRule(parsing: "a exists and (b exists and c exists) and d exists")
        guard case .all(let nodes) = rule.root else { Issue.record("not an and: \(rule.root)"); return }
        #expect(nodes.count == 4)
    }
}
