// `hubcast check`: one line per check, non-zero on any problem, the key never printed.

import Foundation
import HubcastEmulator
import Testing

@Suite struct CheckCommandTests {
    /// Runs `body` on the fixture of ``SecretsTests/withFixture(_:)`` with, in its configuration, an
    /// upload audience (with its file) mapped by a third dataflow; `body` gets the environment that
    /// gives `${HUB_B}`, `hub-b`'s connection string. The fixture is finished afterwards.
    static func withFixture<T>(_ body: (Fixture, _ environment: [String: String?]) async throws -> T) async throws -> T {
        try await SecretsTests.withFixture { fixture in
            let text = try String(contentsOfFile: fixture.configurationFile, encoding: .utf8)
                .replacingOccurrences(of: "audiences:\n", with: "audiences:\n  - id: vip\n    upload: vip.csv\n")
                .replacingOccurrences(of: "dataflows:\n", with: "dataflows:\n  - id: vip-flow\n    destination: hub-a\n    audiences: [vip]\n")
            try text.write(toFile: fixture.configurationFile, atomically: true, encoding: .utf8)
            try "namespace,id\nemail,a@example.org\nemail,b@example.org\n".write(
                toFile: fixture.folder + "/vip.csv", atomically: true, encoding: .utf8)
            return try await body(fixture, ["HUB_B": SecretsTests.connectionString(fixture, hub: "beta")])
        }
    }

    /// Rewrites the configuration with `change`.
    static func edit(_ fixture: Fixture, _ change: (String) -> String) throws {
        let text = try String(contentsOfFile: fixture.configurationFile, encoding: .utf8)
        let changed = change(text)
        #expect(changed != text, "the edit changes the configuration")
        try changed.write(toFile: fixture.configurationFile, atomically: true, encoding: .utf8)
    }

    @Test func aGoodConfigurationPassesEveryCheck() async throws {
        try await Self.withFixture { fixture, environment in
            let check = try await HubcastCLI.run(["check", "--config", fixture.configurationFile], environment: environment)
            #expect(check.status == 0, "\(check.all)")
            let lines = check.output.split(separator: "\n").map(String.init)
            #expect(lines.contains { $0.hasPrefix("ok    configuration: ") })
            #expect(lines.contains { $0.hasPrefix("ok    audience gold: rule ") })
            #expect(lines.contains { $0.hasPrefix("ok    audience vip: upload ") && $0.hasSuffix("vip.csv: 2 identities") })
            #expect(lines.contains { $0.hasPrefix("ok    destination hub-a: Endpoint=sb://localhost:") && $0.contains("SharedAccessKey=<hidden>") })
            #expect(lines.contains { $0.hasPrefix("ok    destination hub-b: ") })
            #expect(lines.contains { $0.hasPrefix("ok    dataflow gold-flow: → hub-a") })
            #expect(lines.last?.hasSuffix("checks passed") == true)
            #expect(!lines.contains { $0.hasPrefix("FAIL") })
            SecretsTests.expectNoSecret(check, "check")
        }
    }

    /// Each kind of problem is named on its own line, and the exit status is non-zero.
    @Test func eachKindOfProblemIsNamed() async throws {
        try await Self.withFixture { fixture, environment in
            let config = fixture.configurationFile
            let original = try String(contentsOfFile: config, encoding: .utf8)
            let alpha = SecretsTests.connectionString(fixture, hub: "alpha")
            let cases: [(String, (String) -> String, [String: String?], String)] = [
                ("YAML", { $0 + "\n  - [unclosed\n" }, environment, "FAIL  configuration: "),
                ("alias key", { $0 + "\nx: &x [a]\n*x: y\n" }, environment, "is used as a mapping key"),
                ("rule", { $0.replacingOccurrences(of: "rule: 'tier = \"gold\"'", with: "rule: 'tier = '") }, environment, "rule does not parse"),
                (
                    "audience", { $0.replacingOccurrences(of: "audiences: [active]", with: "audiences: [nobody]") }, environment,
                    "maps audience 'nobody', which is not among the audiences"
                ),
                (
                    "destination", { $0.replacingOccurrences(of: "destination: hub-b", with: "destination: hub-z") }, environment,
                    "names destination 'hub-z'"
                ),
                (
                    "upload", { $0.replacingOccurrences(of: "upload: vip.csv", with: "upload: missing.csv") }, environment,
                    "FAIL  audience vip: upload \(fixture.folder)/missing.csv: cannot read the upload file: No such file or directory"
                ),
                ("variable", { $0 }, [:], "FAIL  destination hub-b: its connection settings use ${HUB_B}, which is not set in the environment"),
                (
                    "typo", { $0.replacingOccurrences(of: alpha, with: alpha.replacingOccurrences(of: ";", with: " ")) }, environment,
                    "FAIL  destination hub-a: Event Hubs invalid connection string: the value of Endpoint has 'SharedAccessKeyName=' after a space"
                ),
                (
                    "field", { $0.replacingOccurrences(of: "SharedAccessKey=", with: "SharedAcessKey=") }, environment,
                    "unknown field SharedAcessKey"
                ),
                (
                    "emulator flag", { $0 },
                    ["HUB_B": SecretsTests.connectionString(fixture, hub: "beta").replacingOccurrences(of: "=true", with: "=yes")],
                    "FAIL  destination hub-b: Event Hubs invalid connection string: UseDevelopmentEmulator must be true or false"
                ),
            ]
            for (what, change, variables, expected) in cases {
                try change(original).write(toFile: config, atomically: true, encoding: .utf8)
                let check = try await HubcastCLI.run(["check", "--config", config], environment: variables)
                #expect(check.status != 0, "\(what): \(check.all)")
                #expect(check.output.contains(expected), "\(what): \(check.all)")
                #expect(check.output.split(separator: "\n").last?.hasSuffix("checks failed") == true, "\(what)")
                SecretsTests.expectNoSecret(check, "check (\(what))")
            }
            // Bad lines of an upload are a warning: the rest is imported.
            try original.write(toFile: config, atomically: true, encoding: .utf8)
            try "email,a@example.org\nnot a line\n".write(toFile: fixture.folder + "/vip.csv", atomically: true, encoding: .utf8)
            let warned = try await HubcastCLI.run(["check", "--config", config], environment: environment)
            #expect(warned.status == 0)
            #expect(warned.output.contains("warn  audience vip: upload"))
            #expect(warned.output.contains("1 bad line (line 2: expected 2 fields"))
        }
    }

    /// --connect opens each destination as the connector does: a right key passes, a wrong key, an
    /// unknown hub and a closed port fail, naming the destination and never the key.
    @Test func connectChecksTheCredentials() async throws {
        try await Self.withFixture { fixture, environment in
            let config = fixture.configurationFile
            let good = try await HubcastCLI.run(["check", "--config", config, "--connect"], environment: environment)
            #expect(good.status == 0, "\(good.all)")
            #expect(
                good.output.contains(
                    "ok    destination hub-a: connected to localhost:\(fixture.emulator.port), credentials accepted, sender attached to alpha"))
            #expect(
                good.output.contains(
                    "ok    destination hub-b: connected to localhost:\(fixture.emulator.port), credentials accepted, sender attached to beta"))
            #expect(fixture.emulator.events(hub: "alpha").joined().isEmpty, "nothing is sent")
            SecretsTests.expectNoSecret(good, "check --connect")

            let wrongKey = "d3Jvbmcta2V5LXRoYXQtaXMtYWxzby1zZWNyZXQ="
            let wrong = try await HubcastCLI.run(
                ["check", "--config", config, "--connect", "--timeout", "10"],
                environment: ["HUB_B": SecretsTests.connectionString(fixture, hub: "beta", key: wrongKey)])
            #expect(wrong.status != 0)
            #expect(wrong.output.contains("ok    destination hub-a: connected"))
            let refused = wrong.output.split(separator: "\n").first { $0.hasPrefix("FAIL  destination hub-b: ") }
            #expect(refused?.contains("unauthorized") == true || refused?.contains("Unauthorized") == true, "\(wrong.all)")
            SecretsTests.expectNoSecret(wrong, "check --connect (wrong key)", keys: [SecretsTests.key, wrongKey])

            let unknownHub = try await HubcastCLI.run(
                ["check", "--config", config, "--connect", "--timeout", "10"],
                environment: ["HUB_B": SecretsTests.connectionString(fixture, hub: "gamma")])
            #expect(unknownHub.status != 0)
            #expect(unknownHub.output.contains("FAIL  destination hub-b: cannot send to gamma"), "\(unknownHub.all)")

            let closed = try await HubcastCLI.run(
                ["check", "--config", config, "--connect", "--timeout", "2"],
                environment: [
                    "HUB_B": SecretsTests.connectionString(fixture, hub: "beta").replacingOccurrences(
                        of: "localhost:\(fixture.emulator.port)", with: "localhost:1")
                ])
            #expect(closed.status != 0)
            #expect(closed.output.contains("FAIL  destination hub-b: "), "\(closed.all)")
            #expect(!closed.output.contains("FAIL  destination hub-a"))

            let missingCA = try await HubcastCLI.run(
                ["check", "--config", config, "--connect", "--ca-file", "/nonexistent.pem"], environment: environment)
            #expect(missingCA.output.contains("FAIL  CA file: cannot read /nonexistent.pem: No such file or directory"))
        }
    }
}
