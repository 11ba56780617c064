// TEMPORARY stub: replaced by the rules branch.

import OrderedCollections
public struct AudienceRule: Sendable, Hashable, CustomStringConvertible {
    public let description: String
    private let path: AttributePath
    private let literal: String
    public init(parsing source: String) throws(ProfileExportError) {
        let parts = source.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == 2 else { throw ProfileExportError(.invalidRule, "expected 'path = \"value\"'", at: .init(line: 1, column: 1)) }
        description = source
        path = try AttributePath(parts[0])
        literal = parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
    }
    public func matches(_ attributes: JSONValue) -> Bool { attributes.value(at: path) == .string(literal) }
    public var paths: [AttributePath] { [path] }
}
import Foundation
