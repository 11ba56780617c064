// Hubcast — loading the YAML configuration of spec §10, with errors naming file, line and key.

import Foundation
import Yams

extension ExportConfiguration {
    /// Loads a configuration file. `${NAME}` in any value is replaced from `environment`; an unset
    /// name is an error. Relative `store` and `upload` paths are relative to the file's folder.
    /// Every error names the file, the line and the key.
    public static func load(file: String, environment: [String: String]? = nil)
        throws(ProfileExportError) -> ExportConfiguration
    {
        let environment = environment ?? ProcessInfo.processInfo.environment
        let text: String
        do {
            text = try String(contentsOfFile: file, encoding: .utf8)
        } catch {
            throw ProfileExportError(.invalidConfiguration, "cannot read the file", at: .init(file: file))
        }
        let folder = URL(fileURLWithPath: file).deletingLastPathComponent().path
        return try parse(yaml: text, file: file, folder: folder, environment: environment)
    }

    /// Reads a configuration from YAML text; `file` names it in errors, `folder` anchors relative paths.
    public static func parse(yaml: String, file: String = "<configuration>", folder: String = ".",
                             environment: [String: String] = [:]) throws(ProfileExportError) -> ExportConfiguration
    {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw ConfigReader(file: file, environment: environment).yamlFailure(error)
        } catch {
            throw ProfileExportError(.invalidConfiguration, "not YAML: \(error)", at: .init(file: file))
        }
        let reader = ConfigReader(file: file, environment: environment)
        guard let root, case .mapping(let top) = root else {
            throw ProfileExportError(.invalidConfiguration, "the file must be a YAML mapping (store, destinations, audiences, dataflows)", at: .init(file: file, line: 1))
        }
        try reader.allow(["store", "storeCacheMiB", "destinations", "audiences", "dataflows", "retry"], in: top, context: nil)

        let store = try top["store"].map { (node) throws(ProfileExportError) in try reader.string(node, key: "store") } ?? "./hubcast-data"
        let storeCacheMiB = try top["storeCacheMiB"].map { (node) throws(ProfileExportError) in
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
                throw reader.failure("names destination '\(dataflow.destination)', which is not among the destinations", node["destination"] ?? node, key: "dataflows.\(dataflow.id).destination")
            }
            for mapped in dataflow.audiences where !audienceIds.contains(mapped.id) {
                throw reader.failure("maps audience '\(mapped.id)', which is not among the audiences (declare it; without rule or upload it is evaluated upstream)", node["audiences"] ?? node, key: "dataflows.\(dataflow.id).audiences")
            }
        }
        let storePath = store.hasPrefix("/") ? store : URL(fileURLWithPath: folder).appendingPathComponent(store).standardizedFileURL.path
        return ExportConfiguration(store: storePath, destinations: destinations.map(\.0), audiences: audiences.map(\.0),
                                   dataflows: dataflows.map(\.0), retry: retry, storeCacheMiB: storeCacheMiB)
    }
}

/// Walks a composed YAML tree, turning every problem into an error that names file, line and key.
struct ConfigReader {
    let file: String
    let environment: [String: String]

    func failure(_ message: String, _ node: Node?, key: String?) -> ProfileExportError {
        ProfileExportError(.invalidConfiguration, message, at: .init(file: file, line: node?.mark?.line, key: key))
    }

    /// A YAML syntax error with its place; never the text around it (it may hold a key).
    func yamlFailure(_ error: YamlError) -> ProfileExportError {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            return ProfileExportError(.invalidConfiguration, "not valid YAML: \(problem)", at: .init(file: file, line: mark.line, column: mark.column))
        case .duplicatedKeysInMapping(let duplicates, let context):
            let names = duplicates.sorted().map { "'\($0)'" }.joined(separator: ", ")
            return ProfileExportError(.invalidConfiguration, "\(names) appears twice in one mapping",
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

    /// A scalar as text, with `${NAME}` replaced.
    func string(_ node: Node, key: String) throws(ProfileExportError) -> String {
        guard case .scalar(let scalar) = node else { throw failure("must be a single value", node, key: key) }
        let text = try substitute(scalar.string, node: node, key: key)
        // Ids end up as SQLite text, which ends at a NUL (and no setting has a use for one).
        guard !text.utf8.contains(0) else { throw failure("must not contain a NUL character (\\0)", node, key: key) }
        return text
    }

    func substitute(_ text: String, node: Node, key: String) throws(ProfileExportError) -> String {
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
            guard let value = environment[name] else {
                throw failure("uses ${\(name)}, which is not set in the environment", node, key: key)
            }
            result += value
            rest = rest[rest.index(after: end)...]
        }
        return result + rest
    }

    func nonEmpty(_ node: Node?, key: String, in context: Node) throws(ProfileExportError) -> String {
        guard let node else { throw failure("is required", context, key: key) }
        let text = try string(node, key: key)
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

    func list<T>(_ node: Node?, key: String, _ item: (Node, String) throws(ProfileExportError) -> T)
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
