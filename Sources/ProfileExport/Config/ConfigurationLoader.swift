// Hubcast — loading the YAML configuration, with errors naming file, line and key.

import Foundation
import Yams

extension ExportConfiguration {
    /// How much of a configuration must resolve for what a command does with it.
    public struct LoadMode: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Base: String, Hashable, Sendable {
            case complete
            case inspection
        }

        fileprivate let base: Base

        /// Everything resolves: every `${NAME}` is set, and ``ExportConfiguration/load(file:environment:mode:)``
        /// opens every upload file (an error names the file and the reason). For whatever sends or
        /// applies updates: `hubcast run`, the connector.
        public static let complete = LoadMode(base: .complete)
        /// For reading a store or checking a file (`hubcast status`, `explain`, `failed list`,
        /// `check`, which reports each unset `${NAME}` itself): a `${NAME}` that is not
        /// set, in a destination's connection settings (`connectionString`, `namespace`,
        /// `sasKeyName`, `sasKey`, `eventHubName`), is left as written and listed in the
        /// destination's ``Destination/unresolvedVariables``, so that an operator can inspect
        /// without holding the hub's secrets; upload files are not opened. Every other `${NAME}`
        /// must still be set.
        public static let inspection = LoadMode(base: .inspection)

        public var description: String { self.base.rawValue }
    }

    /// Loads a configuration file. `${NAME}` in any value is replaced from `environment`; an unset
    /// name is an error (but see ``LoadMode/inspection``). Relative `store` and `upload` paths are
    /// relative to the file's folder. In ``LoadMode/complete`` mode every upload file must be
    /// readable, so that a missing one stops a command before it opens or creates a store. Every
    /// error names the file, the line and the key; none shows a value taken from the environment.
    public static func load(
        file: String, environment: [String: String]? = nil, mode: LoadMode = .complete
    )
        throws(ProfileExportError) -> ExportConfiguration
    {
        let environment = environment ?? ProcessInfo.processInfo.environment
        let data: [UInt8]
        do {
            data = try FileReading.contents(of: file)
        } catch {
            throw ProfileExportError(.invalidConfiguration, "cannot read the file: \(error.reason)", at: .init(file: file))
        }
        guard let text = String(validating: data, as: UTF8.self) else {
            throw ProfileExportError(.invalidConfiguration, "the file is not UTF-8 text", at: .init(file: file))
        }
        let folder = URL(fileURLWithPath: file).deletingLastPathComponent().path
        let (configuration, record) = try read(yaml: text, file: file, folder: folder, environment: environment, mode: mode)
        if mode == .complete {
            for upload in record.uploads {
                do throws(FileReading.Failure) {
                    try FileReading.checkReadable(upload.path)
                } catch {
                    throw ProfileExportError(
                        .invalidUpload, record.scrub("cannot read the upload file \(upload.path): \(error.reason)", line: upload.line),
                        at: .init(file: file, line: upload.line, key: record.scrub(upload.key, line: upload.line)))
                }
            }
        }
        return configuration
    }

    /// Reads a configuration from YAML text; `file` names it in errors, `folder` anchors relative
    /// paths. Parsing takes time and memory bounded by the text's size whatever it holds (see
    /// `YAMLGuard`: aliases as keys, alias expansion and nesting are limited). Upload files are
    /// not opened (``load(file:environment:mode:)`` checks them).
    public static func parse(
        yaml: String, file: String = "<configuration>", folder: String = ".",
        environment: [String: String] = [:], mode: LoadMode = .complete
    ) throws(ProfileExportError) -> ExportConfiguration {
        try read(yaml: yaml, file: file, folder: folder, environment: environment, mode: mode).configuration
    }

    /// ``parse(yaml:file:folder:environment:mode:)``, with what the reader noted on the way (the
    /// upload files and their lines).
    static func read(
        yaml: String, file: String, folder: String, environment: [String: String], mode: LoadMode
    )
        throws(ProfileExportError) -> (configuration: ExportConfiguration, record: ConfigReader.Record)
    {
        let reader = ConfigReader(file: file, environment: environment, mode: mode)
        do throws(YAMLGuard.Problem) {
            try YAMLGuard.check(yaml)
        } catch {
            throw ProfileExportError(.invalidConfiguration, "not a usable configuration: \(error.message)", at: .init(file: file, line: error.line))
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw reader.yamlFailure(error)
        } catch {
            throw ProfileExportError(.invalidConfiguration, "not YAML: \(error)", at: .init(file: file))
        }
        guard let root, case .mapping(let top) = root else {
            throw ProfileExportError(
                .invalidConfiguration, "the file must be a YAML mapping (store, destinations, audiences, dataflows)", at: .init(file: file, line: 1))
        }
        try reader.allow(["store", "storeCacheMiB", "destinations", "audiences", "dataflows", "retry"], in: top, context: nil)

        let store = try top["store"].map { (node) throws(ProfileExportError) in try reader.string(node, key: "store") } ?? "./hubcast-data"
        let storeCacheMiB =
            try top["storeCacheMiB"].map { (node) throws(ProfileExportError) in
                try reader.integer(node, key: "storeCacheMiB", range: SQLiteProfileStore.cacheMiBRange)
            } ?? SQLiteProfileStore.defaultCacheMiB
        let destinations = try reader.list(top["destinations"], key: "destinations") { (node, key) throws(ProfileExportError) in
            try reader.destination(node, key: key)
        }
        let audiences = try reader.list(top["audiences"], key: "audiences") { (node, key) throws(ProfileExportError) in
            try reader.audience(node, key: key, folder: folder)
        }
        let dataflows = try reader.list(top["dataflows"], key: "dataflows") { (node, key) throws(ProfileExportError) in
            try reader.dataflow(node, key: key)
        }
        var retry = RetrySettings()
        if let node = top["retry"] {
            guard case .mapping(let mapping) = node else { throw reader.failure("must be a mapping such as {retries: 2}", node, key: "retry") }
            try reader.allow(["retries"], in: mapping, context: "retry")
            if let retries = mapping["retries"] {
                retry.retries = try reader.integer(retries, key: "retry.retries", range: 0...100)
            }
        }

        try reader.unique(destinations.map { ($0.0.id, $0.1) }, what: "destination", key: "destinations")
        try reader.unique(audiences.map { ($0.0.id, $0.1) }, what: "audience", key: "audiences")
        try reader.unique(dataflows.map { ($0.0.id, $0.1) }, what: "dataflow", key: "dataflows")
        let destinationIds = Set(destinations.map(\.0.id))
        let audienceIds = Set(audiences.map(\.0.id))
        for (dataflow, node) in dataflows {
            guard destinationIds.contains(dataflow.destination) else {
                throw reader.failure(
                    "names destination '\(dataflow.destination)', which is not among the destinations", node["destination"] ?? node,
                    key: "dataflows.\(dataflow.id).destination")
            }
            for mapped in dataflow.audiences where !audienceIds.contains(mapped.id) {
                throw reader.failure(
                    "maps audience '\(mapped.id)', which is not among the audiences (declare it; without rule or upload it is evaluated upstream)",
                    node["audiences"] ?? node, key: "dataflows.\(dataflow.id).audiences")
            }
        }
        let storePath = store.hasPrefix("/") ? store : URL(fileURLWithPath: folder).appendingPathComponent(store).standardizedFileURL.path
        let configuration = ExportConfiguration(
            store: storePath, destinations: destinations.map(\.0), audiences: audiences.map(\.0),
            dataflows: dataflows.map(\.0), retry: retry, storeCacheMiB: storeCacheMiB)
        return (configuration, reader.record)
    }
}

/// Walks a composed YAML tree, turning every problem into an error that names file, line and key.
struct ConfigReader {
    let file: String
    let environment: [String: String]
    let mode: ExportConfiguration.LoadMode
    /// What the walk notes on the way (shared by the copies of this reader).
    let record = Record()

    /// What a walk noted: the values taken from the environment (kept out of error messages), the
    /// variables left unresolved, the upload files.
    final class Record {
        /// Each `${NAME}` replaced, with its value and the line of the value it was in.
        var substitutions: [(name: String, value: String, line: Int?)] = []
        /// The unset `${NAME}`s left as written (``ExportConfiguration/LoadMode/inspection``), in order.
        var unresolved: [String] = []
        /// Each upload file (absolute path) with the line and key naming it.
        var uploads: [(path: String, line: Int?, key: String)] = []

        /// `message` without the values taken from the environment: each becomes its `${NAME}`. A
        /// message may quote the value it is about (a date that does not parse, an id used twice, a
        /// token of a rule), whole or in part, and that value may be a secret. Runs of 6 characters or
        /// more of a value go (all of a shorter one), for the values of the line in question, and for
        /// values of 8 characters or more from anywhere; values under 4 characters, and short ones
        /// elsewhere, would only blank common words.
        func scrub(_ message: String, line: Int?) -> String {
            var message = message
            let relevant = substitutions.filter { $0.value.count >= 4 && ($0.line == line || $0.value.count >= 8) }
            for substitution in relevant.sorted(by: { $0.value.count > $1.value.count }) {
                message = Self.blank(substitution.value, in: message, with: "${\(substitution.name)}", minimum: min(6, substitution.value.count))
            }
            return message
        }

        /// `message` with every run of at least `minimum` characters that occurs in `value` replaced
        /// by `name`, the longest run first from left to right. Time in proportion to the product of
        /// the lengths (a long value quoted in a long message stays quick), memory to their sum.
        private static func blank(_ value: String, in message: String, with name: String, minimum: Int) -> String {
            let text = Array(message), pattern = Array(value)
            guard !text.isEmpty, !pattern.isEmpty else { return message }
            // longest[i]: the longest run starting at text[i] that occurs in the value. From the end,
            // one row per position: run[j] is the common run of text[i...] and pattern[j...].
            var longest = [Int](repeating: 0, count: text.count)
            var next = [Int](repeating: 0, count: pattern.count + 1)
            var run = next
            for i in stride(from: text.count - 1, through: 0, by: -1) {
                var best = 0
                for j in 0..<pattern.count {
                    run[j] = text[i] == pattern[j] ? next[j + 1] + 1 : 0
                    best = max(best, run[j])
                }
                longest[i] = best
                swap(&run, &next)
            }
            var result = ""
            var index = 0
            while index < text.count {
                if longest[index] >= minimum {
                    result += name
                    index += longest[index]
                } else {
                    result.append(text[index])
                    index += 1
                }
            }
            return result
        }
    }

    init(file: String, environment: [String: String], mode: ExportConfiguration.LoadMode = .complete) {
        self.file = file
        self.environment = environment
        self.mode = mode
    }

    func failure(_ message: String, _ node: Node?, key: String?) -> ProfileExportError {
        let line = node?.mark?.line
        return ProfileExportError(
            .invalidConfiguration, scrub(message, line: line),
            at: .init(file: file, line: line, key: key.map { scrub($0, line: line) }))
    }

    /// `text` (a message, a key path) without the values taken from the environment (see
    /// ``Record/scrub(_:line:)``).
    func scrub(_ text: String, line: Int?) -> String { record.scrub(text, line: line) }

    /// A YAML syntax error with its place; never the text around it (it may hold a key).
    func yamlFailure(_ error: YamlError) -> ProfileExportError {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            return ProfileExportError(
                .invalidConfiguration, "not valid YAML: \(problem)", at: .init(file: file, line: mark.line, column: mark.column))
        case .duplicatedKeysInMapping(let duplicates, let context):
            let names = duplicates.sorted().map { "'\($0)'" }.joined(separator: ", ")
            return ProfileExportError(
                .invalidConfiguration, "\(names) appears twice in one mapping",
                at: .init(file: file, line: context.mark.line, key: duplicates.sorted().first))
        case .reader(let problem, _, _, _):
            return ProfileExportError(.invalidConfiguration, "not readable as YAML text: \(problem)", at: .init(file: file))
        default:
            return ProfileExportError(.invalidConfiguration, "not valid YAML", at: .init(file: file))
        }
    }

    func allow(_ keys: Set<String>, in mapping: Node.Mapping, context: String?) throws(ProfileExportError) {
        for (keyNode, _) in mapping {
            let name = keyNode.string ?? ""
            if !keys.contains(name) {
                let full = context.map { "\($0).\(name)" } ?? name
                throw failure("unknown key (expected one of: \(keys.sorted().joined(separator: ", ")))", keyNode, key: full)
            }
        }
    }

    /// A scalar as text, with `${NAME}` replaced. With `deferrable` (a destination's connection
    /// settings), an unset name is left as written in ``ExportConfiguration/LoadMode/inspection``.
    func string(_ node: Node, key: String, deferrable: Bool = false) throws(ProfileExportError) -> String {
        guard case .scalar(let scalar) = node else { throw failure("must be a single value", node, key: key) }
        let text = try substitute(scalar.string, node: node, key: key, deferrable: deferrable)
        // Ids end up as SQLite text, which ends at a NUL (and no setting has a use for one).
        guard !text.utf8.contains(0) else { throw failure("must not contain a NUL character (\\0)", node, key: key) }
        return text
    }

    func substitute(_ text: String, node: Node, key: String, deferrable: Bool = false) throws(ProfileExportError) -> String {
        guard text.contains("${") else { return text }
        var result = ""
        var rest = Substring(text)
        while let start = rest.range(of: "${") {
            result += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                throw failure("has '${' without a closing '}'", node, key: key)
            }
            let name = String(rest[start.upperBound..<end])
            guard !name.isEmpty else { throw failure("has an empty '${}'", node, key: key) }
            if let value = environment[name] {
                record.substitutions.append((name, value, node.mark?.line))
                result += value
            } else if deferrable && mode == .inspection {
                record.unresolved.append(name)
                result += "${\(name)}"
            } else {
                throw failure("uses ${\(name)}, which is not set in the environment", node, key: key)
            }
            rest = rest[rest.index(after: end)...]
        }
        return result + rest
    }

    func nonEmpty(_ node: Node?, key: String, in context: Node, deferrable: Bool = false) throws(ProfileExportError) -> String {
        guard let node else { throw failure("is required", context, key: key) }
        let text = try string(node, key: key, deferrable: deferrable)
        guard !text.isEmpty else { throw failure("must not be empty", node, key: key) }
        return text
    }

    func bool(_ node: Node?, key: String) throws(ProfileExportError) -> Bool {
        guard let node else { return false }
        switch try string(node, key: key).lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw failure("must be true or false", node, key: key)
        }
    }

    func integer(_ node: Node, key: String, range: ClosedRange<Int>) throws(ProfileExportError) -> Int {
        guard let value = Int(try string(node, key: key)), range.contains(value) else {
            throw failure("must be a whole number from \(range.lowerBound) to \(range.upperBound)", node, key: key)
        }
        return value
    }

    func timestamp(_ node: Node?, key: String) throws(ProfileExportError) -> Timestamp? {
        guard let node else { return nil }
        let text = try string(node, key: key)
        guard let time = Timestamp.parse(text) else { throw failure("'\(text)' is not an ISO 8601 date-time", node, key: key) }
        return time
    }

    func list<T>(
        _ node: Node?, key: String, _ item: (Node, String) throws(ProfileExportError) -> T
    )
        throws(ProfileExportError) -> [(T, Node)]
    {
        guard let node else { return [] }
        guard case .sequence(let sequence) = node else { throw failure("must be a list", node, key: key) }
        var result: [(T, Node)] = []
        for (index, element) in sequence.enumerated() {
            result.append((try item(element, "\(key)[\(index)]"), element))
        }
        return result
    }

    func unique(_ ids: [(String, Node)], what: String, key: String) throws(ProfileExportError) {
        var seen = Set<String>()
        for (id, node) in ids where !seen.insert(id).inserted {
            throw failure("\(what) id '\(id)' is used twice", node, key: key)
        }
    }

    func mapping(_ node: Node, key: String) throws(ProfileExportError) -> Node.Mapping {
        guard case .mapping(let mapping) = node else { throw failure("must be a mapping", node, key: key) }
        return mapping
    }
}
