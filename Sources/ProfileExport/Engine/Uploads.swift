// Hubcast — uploaded audiences: CSV files of identities.

import Foundation

/// A CSV line of an upload that was not imported.
public struct UploadRejection: Sendable, Hashable, CustomStringConvertible {
    public var line: Int
    public var reason: String

    public var description: String { "line \(line): \(reason)" }
}

/// What applying an upload did.
public struct UploadReport: Sendable, Hashable {
    public var audienceId: String
    /// Identities read from the file (after rejected lines).
    public var identities: Int
    /// Profiles that joined (`realized`), stayed (`existing`) and left (`exited`).
    public var joined = 0
    public var stayed = 0
    public var left = 0
    /// Profiles made for identities no profile had.
    public var created = 0
    public var rejected: [UploadRejection] = []
}

extension UploadReport {
    /// One line on what applying the upload did: identities, members joined, stayed and left,
    /// profiles created, bad lines (the first few line numbers).
    public var summary: String {
        "upload \(audienceId): \(Self.counted(identities, "identity", "identities")), \(joined) joined, \(stayed) stayed, "
            + "\(left) left, \(Self.counted(created, "new profile", "new profiles")), \(Self.badLines(rejected))"
    }

    /// An upload's bad lines: "0 bad lines", "1 bad line (line 7: reason)", or the count and the
    /// first five line numbers.
    public static func badLines(_ rejected: [UploadRejection]) -> String {
        switch rejected.count {
        case 0: return "0 bad lines"
        case 1: return "1 bad line (\(rejected[0]))"
        default:
            let numbers = rejected.prefix(5).map { String($0.line) }.joined(separator: ", ")
            return "\(rejected.count) bad lines (lines \(numbers)\(rejected.count > 5 ? ", …" : ""))"
        }
    }

    private static func counted(_ count: Int, _ singular: String, _ plural: String) -> String {
        "\(count) \(count == 1 ? singular : plural)"
    }
}

/// Reads an upload: one identity per line as `namespace,id`, with or without a `namespace,id`
/// header; fields may be double-quoted (`""` inside quotes is a quote). Bad lines are reported
/// with their line numbers and skipped; the rest is imported.
public enum UploadFile {
    /// Reads and parses the upload at `file`. Throws ``ProfileExportError/Code/invalidUpload`` naming
    /// the file and the system's reason ("No such file or directory", "Permission denied", …).
    public static func read(file: String) throws(ProfileExportError) -> (identities: [Identity], rejected: [UploadRejection]) {
        let data: [UInt8]
        do throws(FileReading.Failure) {
            data = try FileReading.contents(of: file)
        } catch {
            throw ProfileExportError(.invalidUpload, "cannot read the upload file: \(error.reason)", at: .init(file: file))
        }
        return parse(String(decoding: data, as: UTF8.self))
    }

    public static func parse(_ text: String) -> (identities: [Identity], rejected: [UploadRejection]) {
        var identities: [Identity] = []
        var rejected: [UploadRejection] = []
        var seen = Set<Identity>()
        var sawRow = false
        for (index, rawLine) in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).enumerated() {
            var line = Substring(rawLine)
            if line.hasSuffix("\r") { line = line.dropLast() }
            if index == 0, line.hasPrefix("\u{FEFF}") { line = line.dropFirst() }
            if line.allSatisfy(\.isWhitespace) { continue }
            let number = index + 1
            guard let fields = fields(of: line) else {
                rejected.append(UploadRejection(line: number, reason: "unclosed quote"))
                continue
            }
            if !sawRow {
                sawRow = true
                if fields.count == 2, fields[0].lowercased() == "namespace", fields[1].lowercased() == "id" { continue }
            }
            guard fields.count == 2 else {
                rejected.append(UploadRejection(line: number, reason: "expected 2 fields (namespace,id), found \(fields.count)"))
                continue
            }
            guard !fields[0].isEmpty, !fields[1].isEmpty else {
                rejected.append(UploadRejection(line: number, reason: fields[0].isEmpty ? "empty namespace" : "empty id"))
                continue
            }
            guard !fields[0].utf8.contains(0), !fields[1].utf8.contains(0) else {
                rejected.append(UploadRejection(line: number, reason: "a NUL character in the namespace or id"))
                continue
            }
            let identity = Identity(namespace: fields[0], id: fields[1])
            if seen.insert(identity).inserted { identities.append(identity) }
        }
        return (identities, rejected)
    }

    private static func fields(of line: Substring) -> [String]? {
        var fields: [String] = []
        var current = ""
        var quoted = false
        var index = line.startIndex
        while index < line.endIndex {
            let character = line[index]
            if quoted {
                if character == "\"" {
                    let next = line.index(after: index)
                    if next < line.endIndex, line[next] == "\"" {
                        current.append("\"")
                        index = next
                    } else {
                        quoted = false
                    }
                } else {
                    current.append(character)
                }
            } else if character == "\"" {
                quoted = true
            } else if character == "," {
                fields.append(current.trimmingCharacters(in: .whitespaces))
                current = ""
            } else {
                current.append(character)
            }
            index = line.index(after: index)
        }
        guard !quoted else { return nil }
        fields.append(current.trimmingCharacters(in: .whitespaces))
        return fields
    }

    /// A content fingerprint (FNV-1a, 64 bits) to tell whether an upload changed since it was applied.
    static func fingerprint(file: String) -> String? {
        guard let data = FileManager.default.contents(atPath: file) else { return nil }
        var fingerprint = Fingerprint()
        fingerprint.add(data)
        return String(fingerprint.value, radix: 16)
    }
}

extension ProfileEngine {
    /// Makes the listed identities the members of upload audience `audienceId` at `time`:
    /// their profiles join (`realized`) or stay (`existing`); members not listed any more exit.
    /// Identities no profile has get a new profile. Returns the report and the exports.
    public func applyUpload(
        audienceId: String, identities: [Identity], rejected: [UploadRejection] = [],
        at time: Timestamp
    ) throws(ProfileExportError) -> (UploadReport, [ExportItem]) {
        var report = UploadReport(audienceId: audienceId, identities: identities.count, rejected: rejected)
        var items: [ExportItem] = []
        var members = Set<Int64>()
        var before: [Int64] = []
        try store.forEachProfile { profile in
            if profile.isMember(of: audienceId) { before.append(profile.key) }
        }
        for identity in identities {
            var previous: Profile?
            var profile: Profile
            if let key = try store.key(identity: identity), let stored = try store.profile(key: key) {
                guard members.insert(key).inserted else { continue }
                previous = stored
                profile = stored
            } else {
                profile = Profile(key: try store.newKey())
                profile.identities.add(identity)
                members.insert(profile.key)
                report.created += 1
            }
            guard let change = Self.evaluate(true, audienceId, in: &profile, at: time) else {
                report.stayed += 1
                continue
            }
            if change.isTransition {
                report.joined += 1
                items += decide(&profile, time: time, changes: [change], added: [], removed: [], changedAttributes: ChangedAttributes())
            } else {
                report.stayed += 1
            }
            try store.save(profile, previousIdentities: previous?.identities)
        }
        for key in before where !members.contains(key) {
            guard let stored = try store.profile(key: key) else { continue }
            var profile = stored
            guard let change = Self.evaluate(false, audienceId, in: &profile, at: time) else { continue }
            report.left += 1
            items += decide(&profile, time: time, changes: [change], added: [], removed: [], changedAttributes: ChangedAttributes())
            try store.save(profile, previousIdentities: stored.identities)
        }
        return (report, items)
    }

    /// Applies every upload audience whose file changed since it was last applied (a fingerprint is
    /// kept in the store), at `time`. Unchanged files are skipped, so a restart does not re-apply.
    public func applyChangedUploads(at time: Timestamp = .now()) throws(ProfileExportError) -> (reports: [UploadReport], items: [ExportItem]) {
        var reports: [UploadReport] = []
        var items: [ExportItem] = []
        for audience in configuration.audiences {
            guard case .upload(let file) = audience.origin else { continue }
            let (identities, rejected) = try UploadFile.read(file: file)
            let fingerprint = UploadFile.fingerprint(file: file)
            let name = "upload.\(audience.id).fingerprint"
            guard try store.value(named: name) != fingerprint else { continue }
            try store.batch { () throws(ProfileExportError) in
                let (report, exports) = try applyUpload(audienceId: audience.id, identities: identities, rejected: rejected, at: time)
                try store.setValue(fingerprint, named: name)
                reports.append(report)
                items += exports
            }
        }
        return (reports, items)
    }
}
