import OrderedCollections
import Testing
@testable import ProfileExport

/// Every operator on every type, against ``ruleProfile``; each row with its expected result.
@Suite struct RuleComparisonTests {
    @Test(arguments: [
        ("person.name.firstName = \"John\"", true),
        ("person.name.firstName = \"john\"", false),
        ("person.name.firstName = \"Joh\"", false),
        ("person.name.firstName != \"John\"", false),
        ("person.name.firstName != \"Jane\"", true),
        ("person.name.firstName < \"Joho\"", true),
        ("person.name.firstName < \"John\"", false),
        ("person.name.firstName < \"Jo\"", false),
        ("person.name.firstName <= \"John\"", true),
        ("person.name.firstName <= \"Joha\"", false),
        ("person.name.firstName > \"Jo\"", true),
        ("person.name.firstName > \"John\"", false),
        ("person.name.firstName >= \"John\"", true),
        ("person.name.firstName >= \"Joi\"", false),
        ("person.name.firstName > \"JOHN\"", true),  // 'o' (0x6F) after 'O' (0x4F)
        ("person.name.firstName = 'John'", true),
    ])
    func strings(rule: String, expected: Bool) throws {
        #expect(try evaluate(rule) == expected)
    }

    @Test func stringsCompareByUTF8Bytes() throws {
        // "Zoë" is Z o U+00EB; U+00EB encodes as C3 AB, after every ASCII byte.
        #expect(try evaluate(#"person.city > "Zoz""#))
        #expect(try evaluate(#"person.city < "Zo\u00ec""#))
        #expect(try evaluate(#"person.city = "Zo\u00eb""#))
        // No normalisation: e + combining diaeresis is other bytes than the precomposed ë.
        #expect(try !evaluate(#"person.city = "Zoe\u0308""#))
        #expect(try evaluate(#"person.city != "Zoe\u0308""#))
    }

    @Test(arguments: [
        ("loyalty.points = 1500", true),
        ("loyalty.points = 1500.0", true),
        ("loyalty.points = 1.5e3", true),
        ("loyalty.points = 1501", false),
        ("loyalty.points != 1500", false),
        ("loyalty.points != 1499", true),
        ("loyalty.points < 1501", true),
        ("loyalty.points < 1500", false),
        ("loyalty.points <= 1500", true),
        ("loyalty.points <= 1499.5", false),
        ("loyalty.points > 1499.5", true),
        ("loyalty.points > 1500", false),
        ("loyalty.points >= 1500", true),
        ("loyalty.points >= 1500.5", false),
        ("loyalty.points > -1", true),
        ("loyalty.points < -1E+4", false),
        ("loyalty.ratio = 0.75", true),
        ("loyalty.ratio = 75e-2", true),
        ("loyalty.ratio = 0.7", false),
        ("loyalty.ratio != 0.75", false),
        ("loyalty.ratio != 1", true),
        ("loyalty.ratio < 1", true),
        ("loyalty.ratio < 0.75", false),
        ("loyalty.ratio <= 0.75", true),
        ("loyalty.ratio > 0", true),
        ("loyalty.ratio > 0.75", false),
        ("loyalty.ratio >= 0.75", true),
        ("loyalty.ratio >= 0.76", false),
        // Integers against integer literals compare exactly, past 2^53.
        ("loyalty.big = 9007199254740993", true),
        ("loyalty.big = 9007199254740992", false),
        ("loyalty.big > 9007199254740992", true),
        ("loyalty.big < 9007199254740994", true),
    ])
    func numbers(rule: String, expected: Bool) throws {
        #expect(try evaluate(rule) == expected)
    }

    @Test(arguments: [
        ("consent.email = true", true),
        ("consent.email = false", false),
        ("consent.email != false", true),
        ("consent.email != true", false),
        ("consent.sms = false", true),
        ("consent.sms = true", false),
        ("consent.sms != true", true),
        ("consent.sms = FALSE", true),
        ("consent.email = True", true),
    ])
    func booleans(rule: String, expected: Bool) throws {
        #expect(try evaluate(rule) == expected)
    }

    @Test(arguments: [
        ("person.birthDate < date(\"2000-01-01\")", true),
        ("person.birthDate > date(\"2000-01-01\")", false),
        ("person.birthDate = date(\"1990-05-17\")", true),
        ("person.birthDate = date(\"1990-05-17T00:00:00Z\")", true),
        ("person.birthDate = date('1990-05-17T01:00:00+01:00')", true),
        ("person.birthDate = date(\"1990-05-17T00:00:01Z\")", false),
        ("person.birthDate != date(\"1990-05-17\")", false),
        ("person.birthDate != date(\"1990-05-18\")", true),
        ("person.birthDate <= date(\"1990-05-17\")", true),
        ("person.birthDate <= date(\"1990-05-16\")", false),
        ("person.birthDate >= date(\"1990-05-17\")", true),
        ("person.birthDate >= date(\"1990-05-18\")", false),
        // 10:00 at +01:00 is 09:00Z.
        ("person.lastSeen = date(\"2026-11-22T09:00:00Z\")", true),
        ("person.lastSeen > date(\"2026-11-22T09:30:00Z\")", false),
        ("person.lastSeen > date(\"2026-11-22T08:59:59Z\")", true),
        // A string that is not a date, against a date: across types.
        ("person.motto < date(\"2000-01-01\")", false),
        ("person.motto > date(\"2000-01-01\")", false),
        ("person.motto = date(\"2000-01-01\")", false),
        ("person.motto != date(\"2000-01-01\")", true),
        // A number is not a date.
        ("loyalty.points > date(\"1970-01-01\")", false),
        ("loyalty.points != date(\"1970-01-01\")", true),
        // Against a string literal, a date-like string is just a string.
        ("person.birthDate = \"1990-05-17\"", true),
        ("person.birthDate = \"1990-05-17T00:00:00Z\"", false),
        ("person.birthDate < \"1990-05-17T00:00:00Z\"", true),
    ])
    func dates(rule: String, expected: Bool) throws {
        #expect(try evaluate(rule) == expected)
    }

    @Test(arguments: [
        ("loyalty.points = \"1500\"", false),
        ("loyalty.points != \"1500\"", true),
        ("loyalty.points < \"9\"", false),
        ("loyalty.points >= \"0\"", false),
        ("person.name.firstName = 1", false),
        ("person.name.firstName != 1", true),
        ("person.name.firstName < 1", false),
        ("person.name.firstName > 1", false),
        ("person.name.firstName = true", false),
        ("person.name.firstName != true", true),
        ("consent.email = 1", false),
        ("consent.email != 1", true),
        ("consent.email = \"true\"", false),
        ("consent.email != \"true\"", true),
        ("loyalty.points = true", false),
        ("loyalty.points != false", true),
        // Objects and arrays are never equal to a literal.
        ("person.name = \"John\"", false),
        ("person.name != \"John\"", true),
        ("person.name > \"\"", false),
        ("tags = \"vip\"", false),
        ("tags != \"vip\"", true),
        ("tags < 100", false),
    ])
    func acrossTypes(rule: String, expected: Bool) throws {
        #expect(try evaluate(rule) == expected)
    }

    /// Missing (`person.middleName`), `null` (`person.nickname`), a missing parent and a path
    /// through a string: every comparison is false, `!=` included; `not` flips it.
    @Test(arguments: ["person.middleName", "person.nickname", "nothing.at.all", "person.email.domain"])
    func missingAndNull(path: String) throws {
        for condition in [
            "= \"x\"", "!= \"x\"", "< 1", "<= 1", "> 1", ">= 1", "= true", "!= true", "!= false",
            "< date(\"2000-01-01\")", "!= date(\"2000-01-01\")", "in [\"x\", 1, true]", "in []",
            "contains \"x\"", "contains \"\"", "startsWith \"\"", "exists",
        ] {
            #expect(try !evaluate("\(path) \(condition)"), "\(path) \(condition)")
            #expect(try evaluate("not \(path) \(condition)"), "not \(path) \(condition)")
        }
    }

    @Test func documentThatIsNotAnObject() throws {
        let rule = try AudienceRule(parsing: "a != 1")
        #expect(!rule.matches(.null))
        #expect(!rule.matches(.array([.int(2)])))
        #expect(!rule.matches(.string("a")))
        #expect(try AudienceRule(parsing: "not a exists").matches(.null))
    }

    @Test(arguments: [
        ("homeAddress.country in [\"FR\", \"DE\"]", true),
        ("homeAddress.country in [\"DE\", \"IT\"]", false),
        ("homeAddress.country in [\"fr\"]", false),
        ("homeAddress.country in [\"FR\"]", true),
        ("homeAddress.country in []", false),
        ("not homeAddress.country in []", true),
        ("loyalty.points in [1, 1500.0, \"x\"]", true),
        ("loyalty.points in [1500]", true),
        ("loyalty.points in [\"1500\", true]", false),
        ("loyalty.ratio in [0.5, 0.75]", true),
        ("consent.email in [false, true]", true),
        ("consent.email in [false]", false),
        ("person.birthDate in [\"x\", date(\"1990-05-17\")]", true),
        ("person.birthDate in [date(\"1990-05-18\")]", false),
        // An array attribute is not in a list: use contains.
        ("tags in [\"vip\"]", false),
        ("person.name in [\"John\"]", false),
    ])
    func inList(rule: String, expected: Bool) throws {
        #expect(try evaluate(rule) == expected)
    }

    @Test(arguments: [
        ("person.email contains \"@acme.\"", true),
        ("person.email contains \"@ACME.\"", false),
        ("person.email contains \"john.doe@acme.example\"", true),
        ("person.email contains \"john.doe@acme.example!\"", false),
        ("person.email contains \"example\"", true),
        ("person.email contains \"\"", true),
        ("person.email contains \"xyz\"", false),
        ("person.email contains 1", false),
        ("person.city contains \"ë\"", true),
        // An array contains an element equal to the literal (not a substring of one).
        ("tags contains \"vip\"", true),
        ("tags contains \"vi\"", false),
        ("tags contains \"early\"", true),
        ("tags contains 3", true),
        ("tags contains 3.0", true),
        ("tags contains 2.5", true),
        ("tags contains 4", false),
        ("tags contains true", true),
        ("tags contains false", false),
        ("tags contains \"3\"", false),
        ("not tags contains \"late\"", true),
        // Numbers, booleans and objects contain nothing.
        ("loyalty.points contains 1500", false),
        ("loyalty.points contains \"15\"", false),
        ("consent.email contains true", false),
        ("person.name contains \"John\"", false),
    ])
    func contains(rule: String, expected: Bool) throws {
        #expect(try evaluate(rule) == expected)
    }

    @Test(arguments: [
        ("person.email startsWith \"john\"", true),
        ("person.email startsWith \"john.doe@acme.example\"", true),
        ("person.email startsWith \"john.doe@acme.example.\"", false),
        ("person.email startsWith \"John\"", false),
        ("person.email startsWith \"doe\"", false),
        ("person.email startsWith \"\"", true),
        ("person.city startsWith \"Zo\"", true),
        ("tags startsWith \"vip\"", false),
        ("person.name startsWith \"J\"", false),
        ("loyalty.points startsWith \"15\"", false),
    ])
    func startsWith(rule: String, expected: Bool) throws {
        #expect(try evaluate(rule) == expected)
    }

    @Test(arguments: [
        ("person.email exists", true),
        ("consent.sms exists", true),
        ("loyalty.points exists", true),
        ("tags exists", true),
        ("person.name exists", true),
        ("person exists", true),
        ("person.nickname exists", false),
        ("person.middleName exists", false),
        ("not person.email exists", false),
        ("not person.nickname exists", true),
    ])
    func exists(rule: String, expected: Bool) throws {
        #expect(try evaluate(rule) == expected)
    }
}
