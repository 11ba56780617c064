import OrderedCollections
import Foundation
import Testing
@testable import ProfileExport

/// Golden tests: both seed pages' example events, rebuilt from equivalent inputs (docs/payload.md).
@Suite struct SeedExampleTests {
    static let identities = """
        "identities": {"ecid": ["14575006536349286404619648085736425115", "66478888669296734530114754794777368480"],
                       "email_lc_sha256": ["655332b5fa2aea4498bf7a290cff017cb4", "66baf76ef9de8b42df8903f00e0e3dc0b7"]}
        """

    @Test func germanPageExample() throws {
        let harness = try Harness(
            destinationsYAML + """

                audiences:
                  - {id: 7841ba61-23c1-4bb3-a495-00d3g5fe1e93, mergePolicy: default}
                  - {id: 59bd2fkd-3c48-4b18-bf56-4f5c5e6967ae, mergePolicy: default}
                  - {id: 947c1c46-008d-40b0-92ec-3af86eaf41c1, mergePolicy: default}
                  - {id: 5114d758-ce71-43ba-b53e-e2a91d67b67f, mergePolicy: default}
                  - {id: other-policy, mergePolicy: another}
                dataflows:
                  - id: flow
                    destination: hub
                    audiences: [7841ba61-23c1-4bb3-a495-00d3g5fe1e93, 59bd2fkd-3c48-4b18-bf56-4f5c5e6967ae]
                    attributes: [person.birthDate, person.name.firstName, person.name.lastName, personalEmail.address]
                    partitionKey: ecid
                """)
        try harness.apply(
            """
            {"profileId": "p1", "timestamp": "2021-08-25T23:37:33Z", \(Self.identities),
             "attributes": {"person": {"birthDate": "YYYY-MM-DD", "name": {"firstName": "John", "lastName": "Doe"}, "gender": "x"},
                            "personalEmail": {"address": "john.doe@acme.com"}, "loyalty": {"tier": "gold"}},
             "segmentMembership": {"ups": {"7841ba61-23c1-4bb3-a495-00d3g5fe1e93": {"status": "realized"},
                                           "947c1c46-008d-40b0-92ec-3af86eaf41c1": {"status": "realized"},
                                           "other-policy": {"status": "realized"}}}}
            """.replacingOccurrences(of: "\n", with: " "))
        let items = try harness.apply(
            """
            {"profileId": "p1", "timestamp": "2022-01-11T21:24:39Z",
             "segmentMembership": {"ups": {"7841ba61-23c1-4bb3-a495-00d3g5fe1e93": {"status": "exited"},
                                           "59bd2fkd-3c48-4b18-bf56-4f5c5e6967ae": {"status": "realized", "lastQualificationTime": "2022-01-02T23:37:33Z"},
                                           "5114d758-ce71-43ba-b53e-e2a91d67b67f": {"status": "realized", "lastQualificationTime": "2022-01-11T23:37:33Z"}}}}
            """.replacingOccurrences(of: "\n", with: " "))
        #expect(items.count == 1)
        let expected = try compact(
            """
            {
              "person": {"birthDate": "YYYY-MM-DD", "name": {"firstName": "John", "lastName": "Doe"}},
              "personalEmail": {"address": "john.doe@acme.com"},
              "segmentMembership": {"ups": {
                "7841ba61-23c1-4bb3-a495-00d3g5fe1e93": {"lastQualificationTime": "2022-01-11T21:24:39Z", "status": "exited"},
                "59bd2fkd-3c48-4b18-bf56-4f5c5e6967ae": {"lastQualificationTime": "2022-01-02T23:37:33Z", "status": "realized"},
                "947c1c46-008d-40b0-92ec-3af86eaf41c1": {"lastQualificationTime": "2021-08-25T23:37:33Z", "status": "realized"},
                "5114d758-ce71-43ba-b53e-e2a91d67b67f": {"lastQualificationTime": "2022-01-11T23:37:33Z", "status": "realized"}
              }},
              "identityMap": {
                "ecid": [{"id": "14575006536349286404619648085736425115"}, {"id": "66478888669296734530114754794777368480"}],
                "email_lc_sha256": [{"id": "655332b5fa2aea4498bf7a290cff017cb4"}, {"id": "66baf76ef9de8b42df8903f00e0e3dc0b7"}]
              }
            }
            """)
        #expect(items.first?.payloadText == expected)
        #expect(items.first?.partitionKey == "14575006536349286404619648085736425115")
        #expect(items.first?.triggers.contains(.membership(audienceId: "7841ba61-23c1-4bb3-a495-00d3g5fe1e93", status: .exited)) == true)
        #expect(items.first?.triggers.contains(.membership(audienceId: "59bd2fkd-3c48-4b18-bf56-4f5c5e6967ae", status: .realized)) == true)
    }

    @Test func frenchPageExample() throws {
        let harness = try Harness(
            destinationsYAML + """

                audiences:
                  - {id: 7841ba61-23c1-4bb3-a495-00d3g5fe1e93}
                  - {id: 59bd2fkd-3c48-4b18-bf56-4f5c5e6967ae}
                dataflows:
                  - id: flow
                    destination: hub
                    audiences: [7841ba61-23c1-4bb3-a495-00d3g5fe1e93, 59bd2fkd-3c48-4b18-bf56-4f5c5e6967ae]
                    attributes: [person.email]
                """)
        try harness.apply(
            """
            {"timestamp": "2020-05-20T10:00:00Z", \(Self.identities), "attributes": {"person": {"email": "yourstruly@adobe.con", "name": "Y"}},
             "segmentMembership": {"ups": {"7841ba61-23c1-4bb3-a495-00d3g5fe1e93": {"status": "realized"},
                                           "59bd2fkd-3c48-4b18-bf56-4f5c5e6967ae": {"status": "realized", "lastQualificationTime": "2020-05-25T23:37:33Z"}}}}
            """.replacingOccurrences(of: "\n", with: " "))
        let items = try harness.apply(
            """
            {"identities": {"ecid": ["14575006536349286404619648085736425115"]}, "timestamp": "2020-05-25T21:24:39Z",
             "segmentMembership": {"ups": {"7841ba61-23c1-4bb3-a495-00d3g5fe1e93": {"status": "exited"},
                                           "59bd2fkd-3c48-4b18-bf56-4f5c5e6967ae": {"status": "existing", "lastQualificationTime": "2020-05-25T23:37:33Z"}}}}
            """.replacingOccurrences(of: "\n", with: " "))
        let expected = try compact(
            """
            {"person": {"email": "yourstruly@adobe.con"},
             "segmentMembership": {"ups": {
               "7841ba61-23c1-4bb3-a495-00d3g5fe1e93": {"lastQualificationTime": "2020-05-25T21:24:39Z", "status": "exited"},
               "59bd2fkd-3c48-4b18-bf56-4f5c5e6967ae": {"lastQualificationTime": "2020-05-25T23:37:33Z", "status": "existing"}}},
             "identityMap": {
               "ecid": [{"id": "14575006536349286404619648085736425115"}, {"id": "66478888669296734530114754794777368480"}],
               "email_lc_sha256": [{"id": "655332b5fa2aea4498bf7a290cff017cb4"}, {"id": "66baf76ef9de8b42df8903f00e0e3dc0b7"}]}}
            """)
        #expect(items.map(\.payloadText) == [expected])
        // No profileId and no partitionKey namespace: the first identity keys the partition.
        #expect(items.first?.partitionKey == "14575006536349286404619648085736425115")
    }

    /// The German page's option examples: each option adds only its own fields
    /// (docs/payload.md#optional-segment-fields).
    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func segmentOptions(names: Bool, timestamps: Bool) throws {
        let harness = try Harness(
            """
            destinations:
              - id: hub
                connectionString: "Endpoint=sb://example.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=c2VjcmV0;EntityPath=profiles"
                includeSegmentNames: \(names)
                includeSegmentTimestamps: \(timestamps)
            audiences:
              - id: 5b998cb9-9488-4ec3-8d95-fa8338ced490
                name: First name equals John
                mergePolicy: default
                rule: 'person.name.firstName = "John"'
                createdAt: 2022-03-29T11:28:45Z
                updatedAt: 2022-03-29T11:28:50Z
            dataflows:
              - id: flow
                destination: hub
                audiences:
                  - id: 5b998cb9-9488-4ec3-8d95-fa8338ced490
                    mappingCreatedAt: 2022-04-13T13:29:30Z
                    mappingUpdatedAt: 2022-04-13T13:29:30Z
                attributes: []
            """)
        let items = try harness.apply(
            #"{"profileId": "p", "timestamp": "2019-04-15T02:41:50+0000", "attributes": {"person": {"name": {"firstName": "John"}}}}"#)
        var entry = #""lastQualificationTime":"2019-04-15T02:41:50Z","status":"realized""#
        if timestamps {
            entry += #","createdAt":1648553325000,"updatedAt":1648553330000,"mappingCreatedAt":1649856570000,"mappingUpdatedAt":1649856570000"#
        }
        if names { entry += #","name":"First name equals John""# }
        #expect(
            items.map(\.payloadText) == [
                #"{"segmentMembership":{"ups":{"5b998cb9-9488-4ec3-8d95-fa8338ced490":{"# + entry + #"}}},"identityMap":{}}"#
            ])
    }
}
