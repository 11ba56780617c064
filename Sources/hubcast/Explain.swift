// Hubcast — `hubcast explain`: a stored profile and why its last update was (not) exported.

import ArgumentParser
import Foundation
import OrderedCollections
import ProfileExport

struct Explain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a stored profile, its memberships, and per dataflow why its last update was or was not exported.",
        discussion: """
            Reads the store of --config read-only (a running connector may use it; this user need not be \
            able to write it; ${NAME}s of the destinations' connection settings need not be set). A store \
            that does not exist is an error: nothing is created.
            """
    )

    @Option(help: "The configuration file (YAML).") var config: String
    @Option(help: "The profile id, or an identity as namespace:id.") var profile: String

    func run() async throws {
        let configuration = try ExportConfiguration.load(file: config, mode: .inspection)
        let store = try openProfileStore(configuration, readOnly: true)
        var key = try store.key(profileId: profile)
        if key == nil, let colon = profile.firstIndex(of: ":") {
            key = try store.key(identity: Identity(namespace: String(profile[..<colon]), id: String(profile[profile.index(after: colon)...])))
        }
        guard let key, let stored = try store.profile(key: key) else {
            throw CommandError("no profile '\(profile)' in the store at \(configuration.store) (give a profile id or namespace:id)")
        }
        print(Self.describe(stored, engine: ProfileEngine(configuration: configuration, store: store)))
    }

    static func describe(_ profile: Profile, engine: ProfileEngine) -> String {
        let configuration = engine.configuration
        var lines = ["profile \(profile.profileId ?? "(no profile id)") (store key \(profile.key))"]
        lines.append("identities:")
        for identity in profile.identities.all { lines.append("  \(identity.namespace): \(identity.id)") }
        var writer = JSONWriter()
        writer.value(.object(profile.attributes))
        lines.append("attributes: \(writer.text)")
        lines.append("memberships:")
        if profile.memberships.isEmpty { lines.append("  (none)") }
        for (audienceId, membership) in profile.memberships {
            let audience = configuration.audience(audienceId)
            var origin = "evaluated upstream"
            switch audience?.origin {
            case .rule(let rule)?: origin = "rule: \(rule)"
            case .upload(let file)?: origin = "upload: \(file)"
            default: break
            }
            lines.append(
                "  \(audienceId)\(audience?.name.map { " (\($0))" } ?? ""): \(membership.status.rawValue) since \(membership.lastQualificationTime); \(origin)"
            )
        }
        lines.append("dataflows:")
        for dataflow in configuration.dataflows {
            guard let decision = profile.lastDecisions[dataflow.id], let reason = engine.explanation(of: profile, dataflow: dataflow.id) else {
                lines.append("  \(dataflow.id) → \(dataflow.destination): no decision yet")
                continue
            }
            lines.append("  \(dataflow.id) → \(dataflow.destination), update of \(decision.time): \(reason)")
        }
        return lines.joined(separator: "\n")
    }
}
