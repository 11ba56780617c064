// Hubcast — `hubcast run`: apply profile updates and decide the exports.

import ArgumentParser
import Foundation
import OrderedCollections
import HubcastConnector
import ProfileExport

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the connector: apply profile updates and send what is export-worthy to Event Hubs.",
        discussion: """
            Reads the configuration (YAML, spec §10), applies audience uploads whose file changed, streams \
            the backfill of newly mapped audiences (spec §5, at --backfill-rate), then applies the updates \
            of --input (JSON lines, spec §9; '-' reads stdin). Each batch of updates is committed to the \
            store in --config's `store` folder together with the exports it made (the outbox); each \
            destination's exports are sent over one AMQP connection, and leave the outbox only when Event \
            Hubs accepts them. Failed sends are retried (`retry.retries`, default 2) with backoff; throttling \
            and an unreachable hub use up no retries (the exports wait in the outbox and an alert is \
            logged). Exports that still fail go to the failed-exports store (`hubcast failed`).

            With --input, run exits once the input is consumed and every export is acknowledged or failed; \
            --follow keeps reading a growing file and keeps running. Without --input it sends what waits \
            in the outbox and runs until stopped. A restart with the same file resumes after the last \
            committed line. SIGINT/SIGTERM stops intake, lets in-flight sends settle for --drain-timeout \
            seconds and keeps the rest in the outbox for the next run. `hubcast status` shows progress \
            from another terminal. Malformed lines are reported with their line numbers, kept in \
            rejects.jsonl in the store folder, and skipped.

            With --dry-run nothing is sent and the store is left as it was (everything runs in one \
            transaction that is rolled back; --memory starts from an empty store instead): each export \
            is printed as one JSON line {"dataflow", "destination", "partitionKey", "triggers", "payload"} \
            and a summary goes to stderr. One connector runs on a store at a time.
            """
    )

    @Option(help: "The configuration file (YAML).") var config: String
    @Option(help: "Profile updates, one JSON object per line; '-' reads stdin.") var input: String?
    @Flag(help: "Keep reading the input file as it grows, and keep running once everything is settled.") var follow = false
    @Flag(help: "Print the exports instead of sending them.") var dryRun = false
    @Flag(help: "With --dry-run: use an in-memory store instead of the configured durable one.") var memory = false
    @Option(help: "Updates applied per store batch (one commit each).") var batch = 512
    @OptionGroup var connector: ConnectorFlags
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        guard (1...1_000_000).contains(batch) else { throw ValidationError("--batch must be 1...1000000") }
        if memory && !dryRun {
            throw ValidationError("--memory works only with --dry-run: the connector keeps its outbox in the durable store")
        }
        if follow && dryRun { throw ValidationError("--follow does not go with --dry-run") }
    }

    func run() async throws {
        let configuration = try ExportConfiguration.load(file: config)
        guard dryRun else { return try await send(configuration) }
        if memory { return try preview(ProfileEngine(configuration: configuration, store: MemoryProfileStore())) }
        // On the durable store: everything in one transaction, rolled back at the end, so that the
        // connector later still sends what this previewed (backfills, uploads, updates).
        let store = try SQLiteProfileStore(folder: configuration.store, cacheMiB: configuration.storeCacheMiB)
        try store.withoutCommitting { () throws(ProfileExportError) in
            do {
                try preview(ProfileEngine(configuration: configuration, store: store))
            } catch let error as ProfileExportError {
                throw error
            } catch {
                throw ProfileExportError(.store, "\(error)")
            }
        }
    }

    /// Prints the exports `engine` makes for the backfill, the changed uploads and the input.
    private func preview(_ engine: ProfileEngine) throws {
        let configuration = engine.configuration
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

    private func send(_ configuration: ExportConfiguration) async throws {
        var options = ConnectorOptions()
        options.batchSize = batch
        options.follow = follow
        connector.apply(to: &options)
        if follow || input == nil { options.giveUpAfter = nil }
        let logger = makeLogger(logging)
        let running = Connector(configuration: configuration, options: options, logger: logger)
        let report = try await runConnector(running, input: input, logger: logger)
        printReport(report, configuration: configuration, rejects: configuration.store + "/rejects.jsonl")
        let failed = report.status.dataflows.values.reduce(0) { $0 + $1.counters.failed }
        if failed > 0 { printError("\(failed) exports failed; see `hubcast failed list --config \(config)`") }
    }
}

/// The summary of a connector run on stderr: intake, then the per-dataflow table.
func printReport(_ report: ConnectorReport, configuration: ExportConfiguration, rejects: String, to output: (String) -> Void = printError) {
    for upload in report.uploads {
        output("upload \(upload.audienceId): \(upload.identities) identities, \(upload.joined) joined, \(upload.stayed) stayed, "
            + "\(upload.left) left, \(upload.created) new profiles, \(upload.rejected.count) bad lines")
    }
    let intake = report.intake
    var line = "updates read \(intake.updatesRead), applied \(intake.updatesApplied), rejected \(intake.rejected)"
    if !intake.rejectedByKind.isEmpty {
        line += " (" + intake.rejectedByKind.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + "; kept in \(rejects))"
    }
    output(line)
    let rows = configuration.dataflows.map { dataflow in
        let status = report.status.dataflows[dataflow.id]
        return (dataflow.id, status?.counters ?? DeliveryCounters(), report.outbox[dataflow.id] ?? 0, status)
    }
    output(dataflowTable(rows))
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
