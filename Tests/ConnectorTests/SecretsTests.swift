// No command prints a credential: every command of the real CLI, with -v and --trace-frames where
// it has them, right and mistyped connection strings, and every output searched for the key and
// for a signature.

import Foundation
import HubcastEmulator
import Testing

@Suite struct SecretsTests {
    /// The key of the emulator's rule in these tests (base64 of "probe-secret-key-1234567890ABC").
    static let key = "cHJvYmUtc2VjcmV0LWtleS0xMjM0NTY3ODkwQUJD"

    /// The connection string of `hub` on `fixture`'s emulator, with `key`.
    static func connectionString(_ fixture: Fixture, hub: String, key: String = SecretsTests.key) -> String {
        "Endpoint=sb://localhost:\(fixture.emulator.port)/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=\(key);"
            + "UseDevelopmentEmulator=true;EntityPath=\(hub)"
    }

    /// Runs `body` on a fixture whose emulator's rule has ``key``, whose configuration has `hub-b`'s
    /// connection string from `${HUB_B}`, and whose exports are sometimes refused (so there are
    /// failed exports); the fixture is finished afterwards, as ``Fixture/with(tls:retries:goldOnly:fixedPort:_:_:)`` does.
    static func withFixture<T>(_ body: (Fixture) async throws -> T) async throws -> T {
        try await Fixture.with({
            $0.rules = [EmulatorConfiguration.Rule(name: "RootManageSharedAccessKey", key: Self.key, rights: .all)]
            $0.faults.rejectEvery = 25
        }) { fixture in
            try fixture.writeConfiguration(key: Self.key)
            let text = try String(contentsOfFile: fixture.configurationFile, encoding: .utf8)
            let literal = "connectionString: \"\(Self.connectionString(fixture, hub: "beta"))\""
            #expect(text.contains(literal))
            try text.replacingOccurrences(of: literal, with: "connectionString: ${HUB_B}")
                .write(toFile: fixture.configurationFile, atomically: true, encoding: .utf8)
            return try await body(fixture)
        }
    }

    /// Every output of `result` is free of the key, of any piece of it, and of a signature.
    static func expectNoSecret(
        _ result: HubcastCLI.Result, _ what: String, keys: [String] = [SecretsTests.key],
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        for key in keys + ["cHJvYmUt", "SAS_KEY_VALUE", "sig="] {
            #expect(!result.all.contains(key), "\(what) printed \(key)", sourceLocation: sourceLocation)
        }
    }

    @Test func noCommandPrintsTheKeyOrASignature() async throws {
        try await Self.withFixture { fixture in
            let config = fixture.configurationFile
            let input = try fixture.writeUpdates(200, profiles: 50)
            let alpha = Self.connectionString(fixture, hub: "alpha")
            let beta = Self.connectionString(fixture, hub: "beta")
            let wrongKey = "d3Jvbmcta2V5LXRoYXQtaXMtYWxzby1zZWNyZXQ="
            let mistyped = alpha.replacingOccurrences(of: ";", with: " ")
            let environment: [String: String?] = ["HUB_B": beta]
            let trace = ["-v", "--trace-frames"]

            var results: [(String, HubcastCLI.Result)] = []
            /// Runs `hubcast arguments` with `variables` (else `environment`) and keeps the result.
            func run(_ arguments: [String], _ variables: [String: String?]? = nil) async throws -> HubcastCLI.Result {
                let result = try await HubcastCLI.run(arguments, environment: variables ?? environment)
                results.append((arguments.prefix(2).joined(separator: " "), result))
                return result
            }

            let connector = try await run(["run", "--config", config, "--input", input] + trace)
            // 200 updates of 50 profiles make 400 exports (each update writes `score`, mapped by both
            // dataflows), one delivery each; the emulator refuses every 25th delivery for good, so 16
            // exports failed: exit 65 (RunExit.exportsFailed).
            #expect(connector.status == 65, "\(connector.errors.suffix(2000))")
            #expect(connector.errors.contains("frame"), "the frames are traced")
            #expect(connector.errors.contains("SharedAccessSignature <redacted>"), "the put-token frame is traced, blanked")
            #expect(try await run(["status", "--config", config]).status == 0)
            #expect(try await run(["status", "--json", "--config", config]).status == 0)
            #expect(try await run(["status", "--config", config], [:]).status == 0, "without ${HUB_B}")
            #expect(try await run(["failed", "list", "--config", config]).output.contains("amqp:"))
            #expect(try await run(["failed", "show", "1", "--config", config]).status == 0)
            #expect(try await run(["explain", "--config", config, "--profile", "p-1"]).output.contains("profile p-1"))
            // The run left the emulator's count of deliveries at 400, a multiple of 25: these 3 are the
            // 401st to 403rd, none of them refused, so `send` reports all accepted and exits 0.
            let sent = try await run(["send", "--connection-string", alpha, "--count", "3"] + trace)
            #expect(sent.status == 0, "\(sent.output) \(sent.errors.suffix(2000))")
            #expect(sent.output.contains("sent 3, accepted 3"), "\(sent.output)")
            #expect(!sent.output.contains("not accepted"), "\(sent.output)")
            #expect(sent.errors.contains("SharedAccessSignature <redacted>"))
            #expect(try await run(["send", "--emulator", "--count", "3"] + trace).status == 0)
            #expect(try await run(["hub", "info", "--connection-string", alpha] + trace).output.contains("partitions"))
            #expect(try await run(["hub", "info"] + trace, ["EVENTHUBS_CONNECTION_STRING": beta]).output.contains("partitions"))
            #expect(try await run(["receive", "--connection-string", alpha, "--partition", "0", "--count", "1"] + trace).status == 0)
            #expect(try await run(["check", "--config", config, "--connect"] + trace).status == 0)

            // Mistyped: spaces instead of semicolons, on the command line, in the environment, in ${HUB_B}.
            let typo = try await run(["send", "--connection-string", mistyped] + trace)
            #expect(typo.status != 0)
            #expect(typo.errors.contains("separate the fields with ';'"))
            #expect(try await run(["hub", "info"] + trace, ["EVENTHUBS_CONNECTION_STRING": mistyped]).status != 0)
            let badRun = try await run(["run", "--config", config, "--input", input] + trace, ["HUB_B": mistyped])
            #expect(badRun.status != 0)
            #expect(badRun.all.contains("separate the fields with ';'"))
            #expect(try await run(["check", "--config", config, "--connect"] + trace, ["HUB_B": mistyped]).status != 0)
            #expect(
                try await run([
                    "send", "--connection-string", alpha.replacingOccurrences(of: "UseDevelopmentEmulator=true", with: "UseDevelopmentEmulator=yes"),
                ]).status != 0)
            // A wrong key: refused, and not shown either.
            let refused = try await run(
                ["send", "--connection-string", Self.connectionString(fixture, hub: "alpha", key: wrongKey), "--count", "1"] + trace)
            #expect(refused.status != 0)
            // Last, as they change the store: a redrive of one, a purge of the rest.
            #expect(try await run(["failed", "redrive", "1", "--config", config]).status == 0)
            #expect(try await run(["failed", "purge", "--all", "--config", config]).status == 0)

            for (what, result) in results { Self.expectNoSecret(result, what, keys: [Self.key, wrongKey]) }
        }
    }
}
