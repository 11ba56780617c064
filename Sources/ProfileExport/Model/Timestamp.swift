// Hubcast — whole-second UTC timestamps (docs/payload.md#timestamps).

import Foundation

/// A point in time, in whole seconds since 1970-01-01T00:00:00Z.
///
/// Parses ISO 8601 dates (`2026-11-22`, midnight UTC) and date-times with or without a fraction
/// and offset (`2026-11-22T10:00:00Z`, `2026-11-22T11:00:00.250+01:00`, `…+0100`); no offset means
/// UTC and fractions of a second are cut off (docs/payload.md#timestamps). Written as `2026-11-22T10:00:00Z`.
public struct Timestamp: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Seconds since the UNIX epoch.
    public var seconds: Int64

    public init(seconds: Int64) { self.seconds = seconds }

    /// The current time.
    public static func now() -> Timestamp {
        Timestamp(seconds: Int64(Date().timeIntervalSince1970.rounded(.down)))
    }

    /// UNIX epoch milliseconds, as the payload's `createdAt` family writes them.
    public var milliseconds: Int64 { seconds * 1000 }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool { lhs.seconds < rhs.seconds }

    /// Parses ISO 8601; throws ``ProfileExportError/Code/invalidTimestamp`` naming the text.
    public init(parsing text: String) throws(ProfileExportError) {
        guard let parsed = Timestamp.parse(text) else {
            throw ProfileExportError(.invalidTimestamp, "'\(text.prefix(64))' is not an ISO 8601 date or date-time")
        }
        self = parsed
    }

    /// Parses ISO 8601, or returns `nil`.
    public static func parse(_ text: String) -> Timestamp? {
        var text = text
        return text.withUTF8 { parse(bytes: $0) }
    }

    static func parse(bytes: UnsafeBufferPointer<UInt8>) -> Timestamp? {
        var index = 0
        func digits(_ count: Int) -> Int64? {
            guard index + count <= bytes.count else { return nil }
            var value: Int64 = 0
            for _ in 0..<count {
                let byte = bytes[index]
                guard byte >= 0x30, byte <= 0x39 else { return nil }
                value = value * 10 + Int64(byte - 0x30)
                index += 1
            }
            return value
        }
        func expect(_ byte: UInt8) -> Bool {
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }
        guard let year = digits(4), expect(0x2D), let month = digits(2), expect(0x2D), let day = digits(2),
            (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year)
        else { return nil }
        var seconds = daysFromCivil(year: year, month: month, day: day) * 86_400
        if index == bytes.count { return Timestamp(seconds: seconds) }
        guard expect(0x54) || expect(0x74) || expect(0x20),
            let hour = digits(2), expect(0x3A), let minute = digits(2), expect(0x3A), let second = digits(2),
            hour < 24, minute < 60, second < 61
        else { return nil }
        seconds += hour * 3600 + minute * 60 + min(second, 59)
        if index < bytes.count, bytes[index] == 0x2E || bytes[index] == 0x2C {
            index += 1
            let start = index
            while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 { index += 1 }
            guard index > start else { return nil }
        }
        if index == bytes.count { return Timestamp(seconds: seconds) }
        if expect(0x5A) || expect(0x7A) { return index == bytes.count ? Timestamp(seconds: seconds) : nil }
        let sign: Int64
        if expect(0x2B) { sign = 1 } else if expect(0x2D) { sign = -1 } else { return nil }
        guard let offsetHours = digits(2), offsetHours < 24 else { return nil }
        _ = expect(0x3A)
        guard let offsetMinutes = digits(2), offsetMinutes < 60, index == bytes.count else { return nil }
        return Timestamp(seconds: seconds - sign * (offsetHours * 3600 + offsetMinutes * 60))
    }

    /// `YYYY-MM-DDTHH:MM:SSZ`.
    public var description: String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(20)
        write(to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends `YYYY-MM-DDTHH:MM:SSZ` to `bytes`.
    func write(to output: inout [UInt8]) {
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let rest = seconds - days * 86_400
        let (year, month, day) = Timestamp.civil(fromDays: days)
        guard (0...9999).contains(year) else { return writeSlowly(year, month, day, rest, to: &output) }
        // The usual years: the 20 characters are put together on the stack and appended at once.
        let hour = rest / 3600, minute = rest / 60 % 60, second = rest % 60
        func digit(_ value: Int64) -> UInt8 { UInt8(truncatingIfNeeded: 0x30 + value) }
        let text:
            (
                UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8
            ) = (
                digit(year / 1000), digit(year / 100 % 10), digit(year / 10 % 10), digit(year % 10), 0x2D,
                digit(month / 10), digit(month % 10), 0x2D, digit(day / 10), digit(day % 10), 0x54,
                digit(hour / 10), digit(hour % 10), 0x3A, digit(minute / 10), digit(minute % 10), 0x3A,
                digit(second / 10), digit(second % 10), 0x5A
            )
        withUnsafeBytes(of: text) { output.append(contentsOf: $0) }
    }

    /// Years outside 0…9999: a sign and as many digits as the year needs (ISO 8601's expanded
    /// years), the other fields as usual.
    private func writeSlowly(_ year: Int64, _ month: Int64, _ day: Int64, _ rest: Int64, to output: inout [UInt8]) {
        func put(_ value: Int64, _ width: Int, then separator: UInt8) {
            let digits = Array(String(value.magnitude).utf8)
            if value < 0 { output.append(0x2D) }
            output.append(contentsOf: repeatElement(0x30, count: max(0, width - digits.count)))
            output.append(contentsOf: digits)
            output.append(separator)
        }
        if year > 9999 { output.append(0x2B) }
        put(year, 4, then: 0x2D)
        put(month, 2, then: 0x2D)
        put(day, 2, then: 0x54)
        put(rest / 3600, 2, then: 0x3A)
        put(rest / 60 % 60, 2, then: 0x3A)
        put(rest % 60, 2, then: 0x5A)
    }

    private static func isLeap(_ year: Int64) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }

    private static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    // Days from 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's civil algorithm).
    private static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    private static func civil(fromDays days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
