import OrderedCollections
import Testing
@testable import ProfileExport

/// The profile most rule tests evaluate against.
let ruleProfile: JSONValue = .object([
    "person": .object([
        "name": .object(["firstName": .string("John"), "lastName": .string("Doe")]),
        "email": .string("john.doe@acme.example"),
        "birthDate": .string("1990-05-17"),
        "lastSeen": .string("2026-11-22T10:00:00+01:00"),
        "nickname": .null,
        "motto": .string("soon"),
        "city": .string("Zoë"),
    ]),
    "loyalty": .object([
        "points": .int(1500),
        "ratio": .double(0.75),
        "big": .int(9_007_199_254_740_993),
    ]),
    "consent": .object(["email": .bool(true), "sms": .bool(false)]),
    "homeAddress": .object(["country": .string("FR")]),
    "tags": .array([.string("vip"), .string("early"), .int(3), .double(2.5), .bool(true), .null]),
])

/// Parses `rule` and evaluates it against `attributes`.
func evaluate(_ rule: String, _ attributes: JSONValue = ruleProfile) throws -> Bool {
    try AudienceRule(parsing: rule).matches(attributes)
}

/// The `invalidRule` error that parsing `rule` throws, or `nil` if it parses.
func ruleError(_ rule: String) -> ProfileExportError? {
    do {
        _ = try AudienceRule(parsing: rule)
        return nil
    } catch {
        return error
    }
}

/// A flat attribute document from key-value pairs.
func attributes(_ members: JSONObject) -> JSONValue { .object(members) }
