import Foundation
import Testing
@testable import ProfileExport

/// The YAML configuration of spec §10: every error names file, line and key.
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
        let configuration = try ExportConfiguration.parse(yaml: Self.specExample, file: "hubcast.yaml", folder: "/etc/hubcast",
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
        ("rule: 'person.name.firstName = \"John\"'", "rule: 'person.name.firstName = '", 13, "audiences.5b998cb9-9488-4ec3-8d95-fa8338ced490.rule", "rule does not parse"),
    ])
    func errorsNameFileLineAndKey(original: String, replacement: String, line: Int, key: String, message: String) {
        let yaml = Self.specExample.replacingOccurrences(of: original, with: replacement)
        #expect {
            try ExportConfiguration.parse(yaml: yaml, file: "hubcast.yaml", environment: ["EVENTHUBS_CONNECTION_STRING": "x"])
        } throws: { error in
            guard let error = error as? ProfileExportError, error.code == .invalidConfiguration else { return false }
            let ok = error.location?.file == "hubcast.yaml" && error.location?.line == line && error.location?.key == key
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
}
