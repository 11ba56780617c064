// Fuzzing the profile update parser: mutations of valid update lines, and random bytes. Never a
// crash; every line that does not parse gives an error of a parsing kind with a message.

import Foundation
import FuzzSupport
import Testing
@testable import ProfileExport

@Suite struct UpdateFuzzTests {
    /// Valid update lines of every shape docs/input.md#fields allows.
    static let corpus: [String] = [
        #"{"profileId": "p1", "timestamp": "2026-11-22T10:00:00Z", "identities": {"ecid": ["e1"], "email": ["a@example.org"]}, "attributes": {"person": {"name": {"firstName": "John", "lastName": "Doe"}}, "loyalty": {"points": 1500}}}"#,
        #"{"profileId": "p2", "removeIdentities": {"email": ["old@example.org"]}, "removeAttributes": ["person.name.lastName", "tags"]}"#,
        #"{"identities": {"ecid": "e3"}, "attributes": {"tier": "gold", "score": -2.5e3, "vip": true, "nothing": null, "tags": ["a", "b", 3]}}"#,
        #"{"profileId": "p4", "segmentMembership": {"ups": {"vip": {"status": "realized", "lastQualificationTime": "2026-11-20T08:00:00+01:00"}, "churn": {"status": "exited"}}}}"#,
        #"{"profileId": "p5", "timestamp": "2026-01-01", "attributes": {"a": {"b": {"c": {"d": [1, {"e": "\u00e9\ud83d\ude00"}]}}}}}"#,
        #"{"profileId":"p6","attributes":{"s":"tab\tnewline\nquote\"slash\/back\\"}}"#,
        #"{"profileId": "p7", "identities": {"ecid": ["e7", "e8"]}, "unknownField": {"ignored": true}}"#,
    ]

    /// Pieces of the format the mutations insert: structure, keys, values of the wrong type.
    static let dictionary: [[UInt8]] = [
        "{", "}", "[", "]", ":", ",", "\"", "\\", "\\u", "\\ud800", "\\u0000", "null", "true", "false", "0", "-", "1e999",
        "-0.0", "12345678901234567890123", "\"profileId\"", "\"identities\"", "\"removeIdentities\"", "\"attributes\"",
        "\"removeAttributes\"", "\"segmentMembership\"", "\"ups\"", "\"status\"", "\"timestamp\"", "\"lastQualificationTime\"",
        "\"2026-13-40T99:99:99Z\"", "\"\"", "[]", "{}", "\"a..b\"", "\"realized\"", "\"maybe\"", String(repeating: "[", count: 200),
        String(repeating: "{\"a\":", count: 150),
    ].map { Array($0.utf8) }

    /// The kinds of error a line that does not parse may give.
    static let parseErrors: Set<ProfileExportError.Code> = [.invalidJSON, .invalidUpdate, .invalidTimestamp, .invalidPath]

    /// One fuzzed line through the intake's own parsing (`ParsedLine`): a bad line gives an error
    /// of a parsing kind with a message; a good one is applied to an engine without a crash (or
    /// refused with a message). Returns whether it parsed.
    @discardableResult
    static func check(_ bytes: [UInt8], engine: ProfileEngine, case number: Int, seed: UInt64) throws -> Bool {
        let line = ParsedLine(number: number, bytes: bytes)
        switch line.update {
        case .failure(let error):
            #expect(parseErrors.contains(error.code), "case \(number) (seed \(seed)): unexpected kind \(error.code)")
            #expect(!error.message.isEmpty, "case \(number) (seed \(seed)): an error without a message")
            #expect(error.description.contains(error.message))
            return false
        case .success(let update):
            do {
                _ = try engine.store.batch { () throws(ProfileExportError) in try engine.apply(update, receivedAt: Timestamp(seconds: 0)) }
            } catch {
                // An update that parses may still not apply (an identity conflict, identities to
                // remove that no profile has): an error with a message, never a store failure.
                #expect(error.code != .store, "case \(number) (seed \(seed)): \(error)")
                #expect(!error.message.isEmpty)
            }
            return true
        }
    }

    @Test func mutatedUpdateLinesNeverCrashAndEachBadOneSaysWhy() throws {
        let harness = try Harness(ExportRuleTests.yaml)
        let seed = Fuzz.seed(0x5550_4441_5445_0001)
        var rng = SeededGenerator(seed: seed)
        let corpus = Self.corpus.map { Array($0.utf8) }
        for line in corpus { #expect(try Self.check(line, engine: harness.engine, case: 0, seed: seed), "the corpus is valid") }
        var parsed = 0
        for number in 1...Fuzz.cases {
            let mutated = Mutation.mutate(corpus.randomElement(using: &rng)!, dictionary: Self.dictionary, using: &rng)
            if try Self.check(mutated, engine: harness.engine, case: number, seed: seed) { parsed += 1 }
        }
        // Both sides are reached: some mutations still parse, most do not.
        #expect(parsed > 0 && parsed < Fuzz.cases)
    }

    @Test func randomBytesNeverCrashAndEachLineSaysWhy() throws {
        let harness = try Harness(ExportRuleTests.yaml)
        let seed = Fuzz.seed(0x5550_4441_5445_0002)
        var rng = SeededGenerator(seed: seed)
        for number in 1...Fuzz.cases {
            try Self.check(Mutation.randomBytes(using: &rng), engine: harness.engine, case: number, seed: seed)
        }
    }

    /// The whole intake on a file of fuzzed lines: every line is read (blank ones skipped), applied
    /// or rejected with its number and a reason, and kept in the rejects file when rejected.
    @Test func aFileOfFuzzedLinesIsReadToTheEndWithEveryRejectAccountedFor() throws {
        let folder = temporaryFolder()
        var rng = SeededGenerator(seed: Fuzz.seed(0x5550_4441_5445_0003))
        let corpus = Self.corpus.map { Array($0.utf8) }
        var lines: [[UInt8]] = []
        for _ in 0..<min(Fuzz.cases, 2000) {
            var line =
                Bool.random(using: &rng)
                ? Mutation.mutate(corpus.randomElement(using: &rng)!, dictionary: Self.dictionary, using: &rng)
                : Mutation.randomBytes(using: &rng)
            line.removeAll { $0 == 0x0A }
            lines.append(line)
        }
        let path = folder + "/fuzz.jsonl"
        try Data(lines.joined(separator: [0x0A]) + [0x0A]).write(to: URL(fileURLWithPath: path))
        let harness = try Harness(ExportRuleTests.yaml)
        var rejected: [Int] = []
        let stream = ExportStream(
            engine: harness.engine, reader: try LineReader(path: path), batchSize: 64,
            rejects: try RejectsFile(path: folder + "/rejects.jsonl"),
            onReject: { number, error in
                #expect(!error.message.isEmpty)
                rejected.append(number)
            })
        while try stream.nextItem() != nil {}
        // Blank as the intake sees it: spaces and tabs only, once a `\r` before the line break is gone.
        let blank = lines.filter { ($0.last == 0x0D ? $0.dropLast() : $0[...]).allSatisfy { $0 == 0x20 || $0 == 0x09 } }.count
        #expect(stream.summary.updatesRead == lines.count - blank)
        #expect(stream.summary.updatesApplied + stream.summary.rejected == stream.summary.updatesRead)
        #expect(rejected.count == stream.summary.rejected)
        let kept = try String(contentsOfFile: folder + "/rejects.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(kept.count == rejected.count)
        for record in kept.prefix(50) { _ = try JSONParser.parse(String(record)) }
    }
}
