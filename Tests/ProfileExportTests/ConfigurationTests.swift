import Foundation
import FuzzSupport
import Testing
@testable import ProfileExport

/// The YAML configuration (docs/configuration.md): every error names file, line and key.
@Suite struct ConfigurationTests {
    static let specExample = """
        store: ./hubcast-data
        destinations:
          - id: premium-hub
            name: Premium customers
            description: Profiles for the premium team
            connectionString: ${EVENTHUBS_CONNECTION_STRING}
            includeSegmentNames: true
            includeSegmentTimestamps: false
        audiences:
          - id: 5b998cb9-9488-4ec3-8d95-fa8338ced490
            name: First name equals John
            mergePolicy: default
            rule: 'person.name.firstName = "John"'
            createdAt: 2022-03-29T11:28:45Z
            updatedAt: 2022-03-29T11:28:50Z
          - id: vip-upload
            name: VIP list
            mergePolicy: default
            upload: vip.csv
        dataflows:
          - id: premium-flow
            destination: premium-hub
            audiences:
              - id: 5b998cb9-9488-4ec3-8d95-fa8338ced490
                mappingCreatedAt: 2022-04-13T13:29:30Z
                mappingUpdatedAt: 2022-04-13T13:29:30Z
            attributes: [person.name.firstName, person.name.lastName, personalEmail.address]
            partitionKey: ecid
        retry: {retries: 2}
        """

    @Test func specExampleLoadsWithEnvironmentSubstitution() throws {
        let configuration = try ExportConfiguration.parse(
            yaml: Self.specExample, file: "hubcast.yaml", folder: "/etc/hubcast",
            environment: ["EVENTHUBS_CONNECTION_STRING": "Endpoint=sb://x/;SharedAccessKeyName=k;SharedAccessKey=s"])
        #expect(configuration.store == "/etc/hubcast/hubcast-data")
        let destination = try #require(configuration.destinations.first)
        #expect(destination.includeSegmentNames && !destination.includeSegmentTimestamps)
        guard case .connectionString(let text, nil) = destination.connection else { Issue.record("connection"); return }
        #expect(text.hasPrefix("Endpoint=sb://x/"))
        #expect(configuration.audiences.count == 2)
        guard case .upload(let file) = configuration.audiences[1].origin else { Issue.record("upload"); return }
        #expect(file == "/etc/hubcast/vip.csv")
        #expect(configuration.dataflows.first?.audiences.first?.mappingCreatedAt?.milliseconds == 1_649_856_570_000)
        #expect(configuration.dataflows.first?.attributes.count == 3)
        #expect(configuration.retry.retries == 2)
        #expect(configuration.storeCacheMiB == SQLiteProfileStore.defaultCacheMiB)
        let cached = try ExportConfiguration.parse(yaml: "storeCacheMiB: 768\n" + Self.specExample, environment: ["EVENTHUBS_CONNECTION_STRING": "x"])
        #expect(cached.storeCacheMiB == 768)
        // The description of a destination never shows its connection string.
        #expect(!"\(destination)".contains("SharedAccessKey"))
    }

    @Test(arguments: [
        ("EVENTHUBS_CONNECTION_STRING", "UNSET_NAME", 6, "destinations.premium-hub.connectionString", "not set in the environment"),
        ("includeSegmentNames: true", "includeSegmentNames: maybe", 7, "destinations.premium-hub.includeSegmentNames", "true or false"),
        ("createdAt: 2022-03-29T11:28:45Z", "createdAt: last tuesday", 14, "audiences.5b998cb9-9488-4ec3-8d95-fa8338ced490.createdAt", "ISO 8601"),
        ("destination: premium-hub", "destination: nowhere", 22, "dataflows.premium-flow.destination", "not among the destinations"),
        ("personalEmail.address]", "personalEmail..address]", 27, "dataflows.premium-flow.attributes[2]", "not an attribute path"),
        ("retry: {retries: 2}", "retry: {retries: -1}", 29, "retry.retries", "whole number"),
        ("retry: {retries: 2}", "retry: {retries: 2}\nstoreCacheMiB: 0", 30, "storeCacheMiB", "whole number from 1 to 1048576"),
        ("retry: {retries: 2}", "retry: {retries: 2}\nstoreCacheMiB: 1GB", 30, "storeCacheMiB", "whole number from 1 to 1048576"),
        ("    partitionKey: ecid", "    partitionKey: ecid\n    partitonKey: x", 29, "dataflows.premium-flow.partitonKey", "unknown key"),
        ("  - id: vip-upload", "  - id: 5b998cb9-9488-4ec3-8d95-fa8338ced490", 16, "audiences", "used twice"),
        ("upload: vip.csv", "upload: vip.csv\n    rule: 'a = 1'", 16, "audiences.vip-upload", "both rule and upload"),
        (
            "rule: 'person.name.firstName = \"John\"'", "rule: 'person.name.firstName = '", 13, "audiences.5b998cb9-9488-4ec3-8d95-fa8338ced490.rule",
            "rule does not parse"
        ),
    ])
    func errorsNameFileLineAndKey(original: String, replacement: String, line: Int, key: String, message: String) {
        let yaml = Self.specExample.replacingOccurrences(of: original, with: replacement)
        #expect {
            try ExportConfiguration.parse(yaml: yaml, file: "hubcast.yaml", environment: ["EVENTHUBS_CONNECTION_STRING": "x"])
        } throws: { error in
            guard let error = error as? ProfileExportError, error.code == .invalidConfiguration else { return false }
            let ok =
                error.location?.file == "hubcast.yaml" && error.location?.line == line && error.location?.key == key
                && error.message.contains(message)
            if !ok { Issue.record("got: \(error)") }
            return ok
        }
    }

    @Test func notYAMLGivesLineAndColumn() {
        #expect {
            try ExportConfiguration.parse(yaml: "destinations:\n  - id: [unclosed\n", file: "bad.yaml")
        } throws: { error in
            guard let error = error as? ProfileExportError else { return false }
            return error.location?.file == "bad.yaml" && error.location?.line != nil && error.message.contains("YAML")
        }
    }

    /// Ids become SQLite text, which GRDB binds up to a NUL: a destination "d\0x" would be
    /// written to the outbox whole and looked up as "d". The configuration refuses NUL.
    @Test func aNulCharacterInASettingIsRefusedWithItsLine() {
        let yaml = """
            destinations:
              - {id: "hub\\0x", connectionString: "Endpoint=sb://h/;SharedAccessKeyName=k;SharedAccessKey=a2V5;EntityPath=e"}
            audiences: []
            dataflows: []
            """
        #expect {
            try ExportConfiguration.parse(yaml: yaml, file: "nul.yaml")
        } throws: { error in
            guard let error = error as? ProfileExportError else { return false }
            return error.message.contains("NUL") && error.location?.line == 2
        }
    }

    @Test func separateSeedFieldsNeedAllFour() throws {
        let yaml = """
            destinations:
              - {id: hub, namespace: ns, sasKeyName: send, sasKey: k}
            """
        #expect { try ExportConfiguration.parse(yaml: yaml, file: "f.yaml") } throws: { error in
            (error as? ProfileExportError)?.location?.key == "destinations.hub.eventHubName"
        }
        let complete = try ExportConfiguration.parse(yaml: yaml.replacingOccurrences(of: "sasKey: k}", with: "sasKey: k, eventHubName: h}"))
        guard case .fields(let namespace, _, _, let hub)? = complete.destinations.first?.connection else { Issue.record("fields"); return }
        #expect(namespace == "ns" && hub == "h")
    }

    @Test func missingFileIsAClearError() {
        #expect { try ExportConfiguration.load(file: "/nonexistent/hubcast.yaml") } throws: { error in
            (error as? ProfileExportError)?.location?.file == "/nonexistent/hubcast.yaml"
        }
    }

    // MARK: - Bounded parsing

    /// A "billion laughs": ten levels of aliases, each a list of nine of the level below, so that
    /// `*a9` stands for 9^10 values.
    static let laughs =
        "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        + (1...9).map { level in "a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 9).joined(separator: ", ") + "]\n" }.joined()

    /// An alias used as a mapping key, to a node built from nested aliases: Yams' duplicate-key
    /// check hashed the expanded node, for minutes at 100 % CPU. Refused at once, naming the line
    /// (here the aliases' expansion is refused before the key is reached).
    @Test(.timeLimit(.minutes(1))) func anAliasAsAKeyIsRefusedAtOnce() {
        let yaml = Self.laughs + "*a9: boom\n"
        #expect {
            try ExportConfiguration.parse(yaml: yaml, file: "laughs.yaml")
        } throws: { error in
            guard let error = error as? ProfileExportError else { return false }
            return error.message.contains("aliases expand to more than 100000 values") && error.location?.line == 6
        }
        // A small one reaches the key.
        #expect {
            try ExportConfiguration.parse(yaml: "a: &a [x, y]\nb: 1\n*a: boom\n", file: "key.yaml")
        } throws: { error in
            guard let error = error as? ProfileExportError else { return false }
            return error.message.contains("an alias (*a) is used as a mapping key") && error.location?.line == 3
        }
        // Inside a complex key too.
        #expect(throws: ProfileExportError.self) { try ExportConfiguration.parse(yaml: "a: &a [x]\n? [*a]\n: y\n") }
        #expect(throws: ProfileExportError.self) { try ExportConfiguration.parse(yaml: "? {k: v}\n: y\n") }
    }

    /// A "billion laughs" used as a value: its expansion is bounded too.
    @Test func aliasExpansionIsBounded() {
        let yaml = Self.laughs + "audiences: *a9\n"
        #expect {
            try ExportConfiguration.parse(yaml: yaml, file: "laughs.yaml")
        } throws: { error in
            guard let error = error as? ProfileExportError else { return false }
            return error.message.contains("aliases expand to more than") && error.location?.line != nil
        }
        // A few aliases stay fine.
        let shared = Self.specExample.replacingOccurrences(
            of: "attributes: [person.name.firstName, person.name.lastName, personalEmail.address]",
            with: "attributes: &attributes [person.name.firstName, person.name.lastName, personalEmail.address]")
        #expect(throws: Never.self) { try ExportConfiguration.parse(yaml: shared, environment: ["EVENTHUBS_CONNECTION_STRING": "x"]) }
    }

    /// Yams composes recursively: deep nesting would overflow the stack. Refused with its line.
    @Test func deepNestingIsRefused() {
        for yaml in [
            String(repeating: "[", count: 100_000), String(repeating: "{a: ", count: 10_000),
            "x:\n" + (1...200).map { String(repeating: " ", count: $0) + "- \n" }.joined(),
        ] {
            #expect {
                try ExportConfiguration.parse(yaml: yaml, file: "deep.yaml")
            } throws: { error in
                // Ours, or libyaml's own limit (1,000) when its scanner meets it first.
                let message = (error as? ProfileExportError)?.message ?? ""
                return message.contains("nest more than") || message.contains("Maximum nesting level")
            }
        }
    }

    // MARK: - Environment values

    /// Read-only commands need not hold the hubs' secrets: unset variables of connection settings
    /// stay as written, listed on the destination; any other unset variable is still an error.
    @Test func inspectionLeavesConnectionVariablesUnresolved() throws {
        let seeded = Self.specExample
        let inspected = try ExportConfiguration.parse(yaml: seeded, file: "h.yaml", environment: [:], mode: .inspection)
        let destination = try #require(inspected.destinations.first)
        #expect(destination.unresolvedVariables == ["EVENTHUBS_CONNECTION_STRING"])
        guard case .connectionString(let text, _) = destination.connection else { Issue.record("connection"); return }
        #expect(text == "${EVENTHUBS_CONNECTION_STRING}")
        #expect { try destination.resolvedConnection() } throws: { error in
            (error as? ProfileExportError)?.message.contains("${EVENTHUBS_CONNECTION_STRING}") == true
        }
        // The complete mode still requires it.
        #expect(throws: ProfileExportError.self) { try ExportConfiguration.parse(yaml: seeded, environment: [:]) }
        // The separate fields too.
        let fields = """
            destinations:
              - {id: hub, namespace: "${NS}", sasKeyName: send, sasKey: "${KEY}", eventHubName: h}
            """
        let loaded = try ExportConfiguration.parse(yaml: fields, environment: ["NS": "ns"], mode: .inspection)
        #expect(loaded.destinations.first?.unresolvedVariables == ["KEY"])
        // Other settings are needed to inspect the store.
        #expect {
            try ExportConfiguration.parse(yaml: "store: ${STORE}\n" + fields, environment: [:], mode: .inspection)
        } throws: { error in
            (error as? ProfileExportError)?.location?.key == "store"
        }
        let complete = try ExportConfiguration.parse(yaml: fields, environment: ["NS": "ns", "KEY": "k"], mode: .inspection)
        #expect(complete.destinations.first?.unresolvedVariables == [])
    }

    /// A value taken from the environment may be a secret: an error about it names the variable,
    /// never the value.
    @Test func errorsNeverQuoteEnvironmentValues() {
        let secret = "c2VjcmV0LWtleQ=="
        let cases = [
            Self.specExample.replacingOccurrences(of: "createdAt: 2022-03-29T11:28:45Z", with: "createdAt: ${SECRET}"),
            Self.specExample.replacingOccurrences(of: "destination: premium-hub", with: "destination: ${SECRET}"),
            Self.specExample.replacingOccurrences(of: "personalEmail.address]", with: "'${SECRET}..x']"),
            Self.specExample.replacingOccurrences(of: "rule: 'person.name.firstName = \"John\"'", with: "rule: 'a = ${SECRET}'"),
            // In the key path of the error, through an id.
            Self.specExample.replacingOccurrences(of: "  - id: premium-hub", with: "  - id: premium${SECRET}")
                .replacingOccurrences(of: "    includeSegmentTimestamps: false", with: "    includeSegmentTimestamps: false\n    bogus: 1"),
        ]
        for yaml in cases {
            #expect {
                try ExportConfiguration.parse(yaml: yaml, environment: ["EVENTHUBS_CONNECTION_STRING": "x", "SECRET": secret])
            } throws: { error in
                let text = "\(error)"
                if text.contains(secret) || text.contains("c2VjcmV0") { Issue.record("quoted: \(text)") }
                return text.contains("${SECRET}")
            }
        }
    }

    /// A long value (20,000 characters) quoted in an error is blanked as well, and quickly enough
    /// for a test (the search for its runs was cubic in the length).
    @Test func aLongEnvironmentValueIsBlankedToo() {
        var random = SeededGenerator(seed: 7)
        let secret = String((0..<20_000).map { _ in Character(UnicodeScalar(UInt8(97 + random.next() % 26))) })
        let yaml = Self.specExample.replacingOccurrences(of: "destination: premium-hub", with: "destination: ${SECRET}")
        #expect {
            try ExportConfiguration.parse(yaml: yaml, environment: ["EVENTHUBS_CONNECTION_STRING": "x", "SECRET": secret])
        } throws: { error in
            let text = "\(error)"
            return text.contains("${SECRET}") && !text.contains(String(secret.prefix(6)))
        }
    }

    // MARK: - Files

    /// A missing upload file was found only once the store was open, and said "cannot read the
    /// upload file" without the reason. Loading the configuration names the file and the reason.
    @Test func aMissingUploadFileIsNamedWithItsReasonOnLoad() throws {
        let folder = temporaryFolder()
        let file = folder + "/hubcast.yaml"
        try Self.specExample.write(toFile: file, atomically: true, encoding: .utf8)
        #expect {
            try ExportConfiguration.load(file: file, environment: ["EVENTHUBS_CONNECTION_STRING": "x"])
        } throws: { error in
            guard let error = error as? ProfileExportError else { return false }
            return error.code == .invalidUpload && error.message.contains(folder + "/vip.csv") && error.message.contains("No such file or directory")
                && error.location?.file == file && error.location?.line == 19 && error.location?.key == "audiences.vip-upload.upload"
        }
        // Inspection does not open uploads.
        #expect(throws: Never.self) { try ExportConfiguration.load(file: file, environment: [:], mode: .inspection) }
        try "ecid,1\n".write(toFile: folder + "/vip.csv", atomically: true, encoding: .utf8)
        #expect(throws: Never.self) { try ExportConfiguration.load(file: file, environment: ["EVENTHUBS_CONNECTION_STRING": "x"]) }
        // A directory where the file should be.
        try FileManager.default.removeItem(atPath: folder + "/vip.csv")
        try FileManager.default.createDirectory(atPath: folder + "/vip.csv", withIntermediateDirectories: false)
        #expect {
            try ExportConfiguration.load(file: file, environment: ["EVENTHUBS_CONNECTION_STRING": "x"])
        } throws: { error in
            (error as? ProfileExportError)?.message.contains("Is a directory") == true
        }
        #expect {
            try UploadFile.read(file: folder + "/none.csv")
        } throws: { error in
            (error as? ProfileExportError)?.message.contains("No such file or directory") == true
        }
    }

    @Test func anUnreadableConfigurationFileSaysWhy() throws {
        #expect { try ExportConfiguration.load(file: "/nonexistent/hubcast.yaml") } throws: { error in
            (error as? ProfileExportError)?.message.contains("No such file or directory") == true
        }
        let folder = temporaryFolder()
        try Data([0x73, 0x74, 0xFF, 0xFE, 0x3A]).write(to: URL(fileURLWithPath: folder + "/bad.yaml"))
        #expect { try ExportConfiguration.load(file: folder + "/bad.yaml") } throws: { error in
            (error as? ProfileExportError)?.message.contains("not UTF-8") == true
        }
    }

    // MARK: - Duplicate keys

    static let duplicateKeyYAML =
        destinationsYAML + """

            audiences:
              - {id: a, name: A, name: B}
            dataflows: []
            """

    /// A duplicate-key error never shows the SAS key (Yams' duplicate-key error carries the whole
    /// YAML text, which the loader printed, key included).
    @Test func duplicateKeyConfigErrorNeverShowsTheSASKey() {
        #expect(throws: ProfileExportError.self) { try ExportConfiguration.parse(yaml: Self.duplicateKeyYAML, file: "hubcast.yaml") }
        do {
            _ = try ExportConfiguration.parse(yaml: Self.duplicateKeyYAML, file: "hubcast.yaml")
        } catch {
            #expect(!error.description.contains("c2VjcmV0"))
            #expect(!error.description.contains("SharedAccessKey="))
        }
    }

    /// docs/configuration.md#errors: every configuration error names the file, the line and the key.
    @Test func duplicateKeyConfigErrorNamesTheLine() {
        do {
            _ = try ExportConfiguration.parse(yaml: Self.duplicateKeyYAML, file: "hubcast.yaml")
            Issue.record("a duplicated key was accepted")
        } catch {
            #expect(error.location?.line == 6)  // "  - {id: a, name: A, name: B}"
        }
    }
}
