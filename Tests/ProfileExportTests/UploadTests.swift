import OrderedCollections
import Foundation
import Testing
@testable import ProfileExport

/// Uploaded audiences: CSV files of identities, uploads and re-uploads.
@Suite struct UploadTests {
    func harness(folder: String) throws -> Harness {
        try Harness(
            destinationsYAML + """

                audiences:
                  - {id: vip, name: VIP list, mergePolicy: default, upload: vip.csv}
                dataflows:
                  - {id: flow, destination: hub, audiences: [vip], attributes: [person.name.firstName], partitionKey: ecid}
                """, store: try SQLiteProfileStore(folder: folder + "/store"), folder: folder)
    }

    @Test func csvWithOrWithoutHeaderAndBadLinesReported() {
        let (identities, rejected) = UploadFile.parse("namespace,id\r\necid,1\n\"email\",\"a,b\"\"c\"\n\nbad line\necid,\n,x\nx,\"open\n ecid , 1 \n")
        #expect(identities == [Identity(namespace: "ecid", id: "1"), Identity(namespace: "email", id: "a,b\"c")])
        #expect(rejected.map(\.line) == [5, 6, 7, 8])
        #expect(rejected[0].reason.contains("expected 2 fields"))
        #expect(UploadFile.parse("ecid,9\necid,10").identities.count == 2)
    }

    @Test func uploadMakesMembersAndReuploadMakesTheMissingExit() throws {
        let folder = temporaryFolder()
        let harness = try harness(folder: folder)
        try harness.apply(#"{"profileId": "p1", "identities": {"ecid": ["1"]}, "attributes": {"person": {"name": {"firstName": "A"}}}}"#)
        try "namespace,id\necid,1\necid,2\nbroken\n".write(toFile: folder + "/vip.csv", atomically: true, encoding: .utf8)
        let first = try harness.engine.applyChangedUploads(at: try Timestamp(parsing: "2026-11-22T10:00:00Z"))
        #expect(first.reports.first?.joined == 2)
        #expect(first.reports.first?.created == 1)
        #expect(first.reports.first?.rejected.map(\.line) == [4])
        #expect(first.items.count == 2)
        #expect(
            first.items.first?.payloadText
                == #"{"person":{"name":{"firstName":"A"}},"segmentMembership":{"ups":{"vip":{"lastQualificationTime":"2026-11-22T10:00:00Z","status":"realized"}}},"identityMap":{"ecid":[{"id":"1"}]}}"#
        )
        // Unchanged file: not applied again.
        #expect(try harness.engine.applyChangedUploads().items.isEmpty)
        // Re-upload without 1: it exits; 2 stays (existing, no export); 3 joins.
        try "ecid,2\necid,3\n".write(toFile: folder + "/vip.csv", atomically: true, encoding: .utf8)
        let second = try harness.engine.applyChangedUploads(at: try Timestamp(parsing: "2026-11-23T10:00:00Z"))
        #expect(second.reports.first.map { [$0.joined, $0.stayed, $0.left] } == [1, 1, 1])
        #expect(second.items.map(\.partitionKey).sorted() == ["1", "3"])
        let exit = try #require(second.items.first { $0.partitionKey == "1" })
        #expect(exit.triggers == [.membership(audienceId: "vip", status: .exited)])
        #expect(try harness.profile("p1")?.memberships["vip"]?.status == .exited)
        // Updates do not touch upload memberships.
        #expect(try harness.apply(#"{"profileId": "p1", "attributes": {"person": {"name": {"firstName": "B"}}}}"#).isEmpty)
    }

    @Test func missingUploadFileIsAClearError() throws {
        let harness = try harness(folder: temporaryFolder())
        #expect { try harness.engine.applyChangedUploads() } throws: { error in
            guard let error = error as? ProfileExportError else { return false }
            return error.code == .invalidUpload && error.location?.file?.hasSuffix("vip.csv") == true
        }
    }
}
