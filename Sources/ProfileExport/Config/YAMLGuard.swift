// Hubcast — a pass over a configuration's YAML events before it is composed: bounded nesting,
// bounded alias expansion, plain keys.

// The YAML parser Yams is built on (a dependency of Yams, not a product of its own): its event
// stream is the only view of aliases before Yams composes them.
internal import CYaml

/// Checks the YAML event stream of a configuration before Yams composes it into nodes, so that
/// no input can make the loader run for minutes or run out of stack.
///
/// Yams shares an aliased node rather than copying it, but its duplicate-key check hashes every
/// key *as expanded*: an alias used as a mapping key, to a node built from nested aliases (the
/// "billion laughs"), takes time exponential in the file's size. And Yams composes recursively,
/// one stack frame per nesting level. The checks, each an error naming the line:
/// - a mapping key is a plain value: not an alias, not a list, not a mapping (a configuration's
///   keys are names);
/// - the nodes aliases stand for add up to at most ``maxAliasedNodes``;
/// - lists and mappings nest at most ``maxDepth`` deep.
///
/// Text libyaml cannot parse is let through: Yams reports it with its own message and place.
enum YAMLGuard {
    /// How deep lists and mappings may nest (a configuration needs five levels).
    static let maxDepth = 64
    /// How many nodes the aliases of one document may stand for, in all.
    static let maxAliasedNodes = 100_000

    /// A problem and its line (1-based).
    struct Problem: Error {
        var message: String
        var line: Int
    }

    private struct Open {
        var mapping: Bool
        var anchor: String?
        var size = 1
        /// Children so far (a mapping's even children are keys).
        var children = 0
    }

    /// Throws the first problem of `yaml`, if any.
    static func check(_ yaml: String) throws(Problem) {
        var text = yaml
        let problem: Problem? = text.withUTF8 { bytes in
            var parser = yaml_parser_t()
            guard yaml_parser_initialize(&parser) == 1 else { return nil }
            defer { yaml_parser_delete(&parser) }
            yaml_parser_set_input_string(&parser, bytes.baseAddress, bytes.count)
            return scan(&parser)
        }
        if let problem { throw problem }
    }

    private static func scan(_ parser: inout yaml_parser_t) -> Problem? {
        var stack: [Open] = []
        var anchors: [String: Int] = [:]
        var aliased = 0
        while true {
            var event = yaml_event_t()
            guard yaml_parser_parse(&parser, &event) == 1 else { return nil }
            defer { yaml_event_delete(&event) }
            let line = Int(event.start_mark.line) + 1
            /// Counts the node this event starts as a child of the innermost open collection; a
            /// problem when it is a mapping key and not a plain value (`kind` names it; nil for a
            /// plain value).
            func place(_ kind: String?) -> Problem? {
                guard var parent = stack.popLast() else { return nil }
                defer { stack.append(parent) }
                let isKey = parent.mapping && parent.children % 2 == 0
                parent.children += 1
                guard isKey, let kind else { return nil }
                return Problem(message: "\(kind) is used as a mapping key; a configuration's keys are plain names", line: line)
            }
            func add(_ size: Int) {
                guard !stack.isEmpty else { return }
                stack[stack.count - 1].size = stack[stack.count - 1].size.addingReportingOverflow(size).partialValue
            }
            switch event.type {
            case YAML_STREAM_END_EVENT:
                return nil
            case YAML_DOCUMENT_START_EVENT:
                anchors = [:]
                aliased = 0
            case YAML_SCALAR_EVENT:
                _ = place(nil)
                if let anchor = string(event.data.scalar.anchor) { anchors[anchor] = 1 }
                add(1)
            case YAML_ALIAS_EVENT:
                let name = string(event.data.alias.anchor) ?? ""
                if let problem = place("an alias (*\(name))") { return problem }
                // An undefined alias: Yams says so.
                guard let size = anchors[name] else { return nil }
                aliased += size
                if aliased > maxAliasedNodes {
                    return Problem(
                        message: "the aliases expand to more than \(maxAliasedNodes) values (a 'billion laughs'?); write the values out instead",
                        line: line)
                }
                add(size)
            case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                let mapping = event.type == YAML_MAPPING_START_EVENT
                if let problem = place(mapping ? "a mapping" : "a list") { return problem }
                guard stack.count < maxDepth else {
                    return Problem(message: "lists and mappings nest more than \(maxDepth) deep", line: line)
                }
                let anchor = mapping ? string(event.data.mapping_start.anchor) : string(event.data.sequence_start.anchor)
                stack.append(Open(mapping: mapping, anchor: anchor))
            case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                guard let closed = stack.popLast() else { return nil }
                if let anchor = closed.anchor { anchors[anchor] = closed.size }
                add(closed.size)
            default:
                break
            }
        }
    }

    private static func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        pointer.map { String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self)) }
    }
}
