// Hubcast — `hubcast run`: apply profile updates and decide the exports.

import ArgumentParser
import Foundation
import OrderedCollections
import ProfileExport

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply profile updates to the store and export what is export-worthy.",
        discussion: """
            Reads the configuration (YAML, spec §10), exports the backfill for newly mapped audiences, \
            applies audience uploads whose file changed, then applies the updates of --input (JSON lines, spec §9; \
            '-' reads stdin). With --dry-run each export is printed as one JSON line \
            {"dataflow", "destination", "partitionKey", "triggers", "payload"} instead of being sent, and \
            a summary goes to stderr. Malformed lines are reported with their line numbers, kept in \
            rejects.jsonl in the store folder, and skipped.

            Updates are applied to the configured store (use --memory for a throw-away one). Sending to \
            Event Hubs arrives with the connector; until then --dry-run is required.
            """
    )

    @Option(help: "The configuration file (YAML).") var config: String
    @Option(help: "Profile updates, one JSON object per line; '-' reads stdin.") var input: String?
    @Flag(help: "Print the exports instead of sending them.") var dryRun = false
    @Flag(help: "Use an in-memory store instead of the configured durable one.") var memory = false
    @Option(help: "Updates applied per store batch (one commit each).") var batch = 512

    func run() async throws {
        guard dryRun else {
            throw CommandError("sending to Event Hubs arrives with the connector; use --dry-run to print the exports")
        }
        let configuration = try ExportConfiguration.load(file: config)
        let store: any ProfileStore = memory ? MemoryProfileStore() : try SQLiteProfileStore(folder: configuration.store)
        let engine = ProfileEngine(configuration: configuration, store: store)
        try FileManager.default.createDirectory(atPath: configuration.store, withIntermediateDirectories: true)
        let rejects = try RejectsFile(path: configuration.store + "/rejects.jsonl")
        let output = OutputLines()

        // Backfill first (profiles that already qualified for newly mapped audiences), then uploads.
        let backfill = try engine.backfill()
        for item in backfill { output.write(item.jsonLine) }
        let uploads = try engine.applyChangedUploads()
        for report in uploads.reports {
            var line = "upload \(report.audienceId): \(report.identities) identities, \(report.joined) joined, "
                + "\(report.stayed) stayed, \(report.left) left, \(report.created) new profiles"
            if !report.rejected.isEmpty { line += ", \(report.rejected.count) bad lines (\(report.rejected.prefix(5).map(\.description).joined(separator: "; ")))" }
            printError(line)
        }
        for item in uploads.items { output.write(item.jsonLine) }

        var summary = RunSummary()
        if let input {
            var shown = 0
            let stream = ExportStream(engine: engine, reader: try LineReader(path: input), batchSize: batch, rejects: rejects,
                                      onReject: { line, error in
                                          shown += 1
                                          if shown <= 20 { printError("\(input == "-" ? "stdin" : input), line \(line): \(error.code): \(error.message)") }
                                      })
            while let item = try stream.nextItem() { output.write(item.jsonLine) }
            summary = stream.summary
        }
        output.flush()
        let exports = summary.exports.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")
        var line = "updates read \(summary.updatesRead), applied \(summary.updatesApplied), rejected \(summary.rejected)"
        if !summary.rejectedByKind.isEmpty {
            line += " (" + summary.rejectedByKind.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + "; kept in \(rejects.path))"
        }
        line += "; exports per dataflow: \(exports.isEmpty ? "none" : exports)"
        if !uploads.items.isEmpty { line += "; upload exports \(uploads.items.count)" }
        if !backfill.isEmpty { line += "; backfill exports \(backfill.count)" }
        printError(line)
    }
}

/// Buffered standard output for many lines.
final class OutputLines {
    private var buffer: [UInt8] = []

    func write(_ line: String) {
        buffer.append(contentsOf: line.utf8)
        buffer.append(0x0A)
        if buffer.count >= 1 << 16 { flush() }
    }

    func flush() {
        guard !buffer.isEmpty else { return }
        FileHandle.standardOutput.write(Data(buffer))
        buffer.removeAll(keepingCapacity: true)
    }
}

func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
