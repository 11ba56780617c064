import Testing
@testable import ProfileExport

@Suite struct TimestampTests {
    @Test func parsesAndWritesWholeSecondsUTC() throws {
        #expect(try Timestamp(parsing: "2026-11-22T10:00:00Z").description == "2026-11-22T10:00:00Z")
        #expect(try Timestamp(parsing: "2026-11-22T11:00:00.999+01:00").description == "2026-11-22T10:00:00Z")
        #expect(try Timestamp(parsing: "2019-04-15T02:41:50+0000").description == "2019-04-15T02:41:50Z")
        #expect(try Timestamp(parsing: "2026-11-22T10:00:00").description == "2026-11-22T10:00:00Z")
        #expect(try Timestamp(parsing: "2022-03-29T11:28:45Z").milliseconds == 1_648_553_325_000)
        #expect(try Timestamp(parsing: "1970-01-01").seconds == 0)
        #expect(try Timestamp(parsing: "1969-12-31T23:59:59Z").description == "1969-12-31T23:59:59Z")
        #expect(try Timestamp(parsing: "2024-02-29").description == "2024-02-29T00:00:00Z")
    }

    /// Times outside years 0…9999 (an epoch-seconds value far off, or an offset across year 0)
    /// are written as ISO 8601 expanded years instead of stopping the process.
    @Test func writesYearsOutsideFourDigits() throws {
        #expect(try Timestamp(parsing: "0000-01-01T00:30:00+01:00").description == "-0001-12-31T23:30:00Z")
        #expect(Timestamp(seconds: 253_402_300_800).description == "+10000-01-01T00:00:00Z")
        #expect(Timestamp(seconds: 253_402_300_799).description == "9999-12-31T23:59:59Z")
        #expect(Timestamp(seconds: -62_167_219_200).description == "0000-01-01T00:00:00Z")
    }

    @Test func refusesWhatIsNotISO8601() {
        for text in ["", "2026-13-01", "2023-02-29", "2026-11-22T25:00:00Z", "yesterday", "2026-11-22T10:00:00Zjunk", "2026-11-22T10:00"] {
            #expect(throws: ProfileExportError.self) { try Timestamp(parsing: text) }
        }
    }
}
