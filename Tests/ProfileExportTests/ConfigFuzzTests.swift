// Fuzzing the YAML configuration loader: mutations of a valid configuration, alias structures and
// random bytes. Never a crash or a hang; every failure is an invalid-configuration error with a message.
// Case counts, seeds and the generator: `Fuzz` and `SeededGenerator` (FuzzSupport.swift).

import Foundation
import FuzzSupport
import Testing
@testable import ProfileExport

@Suite struct ConfigFuzzTests {
    static let valid = """
        store: ./data
        storeCacheMiB: 64
        destinations:
          - id: premium-hub
            name: Premium customers
            description: Profiles for the premium team
            connectionString: ${EVENTHUBS_CONNECTION_STRING}
            includeSegmentNames: true
          - {id: seed, namespace: ns, sasKeyName: send, sasKey: "${SAS_KEY}", eventHubName: hub}
        audiences:
          - id: gold
            name: Gold
            mergePolicy: default
            rule: 'tier = "gold" and (score >= 10 or not vip exists)'
            createdAt: 2022-03-29T11:28:45Z
          - id: vip-upload
            upload: vip.csv
          - id: upstream
        dataflows:
          - id: premium-flow
            destination: premium-hub
            audiences:
              - id: gold
                mappingCreatedAt: 2022-04-13T13:29:30Z
              - vip-upload
            attributes: &attributes [person.name.firstName, personalEmail.address]
            partitionKey: ecid
          - id: seed-flow
            destination: seed
            audiences: [upstream]
            attributes: *attributes
        retry: {retries: 2}
        """
    static let environment = [
        "EVENTHUBS_CONNECTION_STRING": "Endpoint=sb://x/;SharedAccessKeyName=k;SharedAccessKey=c2VjcmV0", "SAS_KEY": "c2VjcmV0",
    ]
    /// Pieces a mutation inserts: YAML's indicators, anchors and aliases, directives, odd bytes.
    static let pieces = [
        ":", ": ", "- ", "? ", "&a ", "&b ", "*a", "*b", "*attributes", "<<: *a", "{", "}", "[", "]", ",", "|", ">",
        "'", "\"", "#", "!!binary ", "!!map ", "!tag ", "%YAML 1.1\n", "---\n", "...\n", "\n", "\n  ", "\t", "  ",
        "${EVENTHUBS_CONNECTION_STRING}", "${UNSET}", "${", "}", "\u{0}", "\u{FEFF}", "é", "\\", "@", "`",
        "[[[[[[[[[[", "]]]]]]]]]]", "id: x", "rule: 'a = 1'", "upload: u.csv", "true", "null", "~", "1e309", "-1",
    ]

    /// Mutations of the valid configuration, in both load modes.
    @Test func mutationsNeverCrashOrHang() {
        var random = SeededGenerator(seed: Fuzz.seed(0x434F_4E46_4947_0001))
        #expect(Self.outcome(Self.valid, mode: .complete) == nil, "the base configuration is valid")
        var accepted = 0
        let count = Fuzz.cases
        for _ in 0..<count {
            let text = Self.mutate(Self.valid, &random)
            if Self.outcome(text, mode: random.next() % 2 == 0 ? .complete : .inspection) == nil { accepted += 1 }
        }
        #expect(accepted > 0 && accepted < count, "the mutations reach both outcomes")
    }

    /// Random bytes, and random YAML-looking token soups.
    @Test func randomBytesNeverCrashOrHang() {
        var random = SeededGenerator(seed: Fuzz.seed(0x434F_4E46_4947_0002))
        for index in 0..<Fuzz.cases {
            let text: String
            if index % 2 == 0 {
                let bytes = (0..<Int(random.next() % 400)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                text = String(decoding: bytes, as: UTF8.self)
            } else {
                text = (0..<Int(random.next() % 60)).map { _ in Self.pieces[Int(random.next() % UInt64(Self.pieces.count))] }.joined()
            }
            _ = Self.outcome(text, mode: .complete)
        }
    }

    /// Anchors built from aliases of anchors (the "billion laughs" and its relatives), used as
    /// values and as keys, at random sizes: each is refused. Used as a key (where Yams's duplicate
    /// check would hash the expansion, in time exponential in the text), the structure is refused
    /// by the pass over the event stream (`YAMLGuard`) before Yams composes anything.
    @Test func aliasStructuresAreBounded() {
        var random = SeededGenerator(seed: Fuzz.seed(0x434F_4E46_4947_0003))
        for _ in 0..<max(1, Fuzz.cases / 10) {
            let levels = 1 + Int(random.next() % 12)
            let width = 1 + Int(random.next() % 10)
            var text = "a0: &a0 [x]\n"
            for level in 1...levels {
                let aliases = (0..<width).map { _ in "*a\(Int(random.next() % UInt64(level)))" }.joined(separator: ", ")
                text += "a\(level): &a\(level) [\(aliases)]\n"
            }
            let asKey = random.next() % 3
            switch asKey {
            case 0: text += "*a\(levels): boom\n"
            case 1: text += "? [*a\(levels)]\n: boom\n"
            default: text += "dataflows: *a\(levels)\n"
            }
            // Never accepted: the top-level keys a0, a1… are not a configuration's.
            let error = Self.outcome(text, mode: .complete)
            #expect(error != nil, "accepted: \(text.prefix(300).debugDescription)")
            if asKey < 2 {
                #expect(
                    error?.message.hasPrefix("not a usable configuration") == true,
                    "not refused before composing: \(String(describing: error)) for \(text.prefix(300).debugDescription)")
            }
        }
    }

    /// Parses `text`; nil when it was accepted. Checks that a failure is an invalid-configuration
    /// error with a message that shows no value from the environment. (No clock: a hang shows as a
    /// run that does not finish, and a timed check fails on a busy machine.)
    static func outcome(_ text: String, mode: ExportConfiguration.LoadMode) -> ProfileExportError? {
        do {
            _ = try ExportConfiguration.parse(yaml: text, file: "fuzz.yaml", folder: "/nonexistent", environment: environment, mode: mode)
            return nil
        } catch {
            #expect(error.code == .invalidConfiguration, "\(error)")
            #expect(!error.message.isEmpty)
            #expect(!error.description.contains("c2VjcmV0"), "a value from the environment in \(error)")
            return error
        }
    }

    static func mutate(_ text: String, _ random: inout SeededGenerator) -> String {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        for _ in 0..<(1 + Int(random.next() % 3)) {
            let line = Int(random.next() % UInt64(lines.count))
            switch random.next() % 8 {
            case 0: lines.remove(at: line)
            case 1: lines.insert(lines[Int(random.next() % UInt64(lines.count))], at: line)
            case 2: lines.swapAt(line, Int(random.next() % UInt64(lines.count)))
            case 3: lines[line] = String(repeating: " ", count: Int(random.next() % 4)) + lines[line]
            default:
                var characters = Array(lines[line])
                let position = Int(random.next() % UInt64(characters.count + 1))
                if random.next() % 3 == 0, !characters.isEmpty {
                    characters.remove(at: min(position, characters.count - 1))
                } else {
                    characters.insert(contentsOf: pieces[Int(random.next() % UInt64(pieces.count))], at: position)
                }
                lines[line] = String(characters)
            }
            if lines.isEmpty { lines = [""] }
        }
        return lines.joined(separator: "\n")
    }
}
