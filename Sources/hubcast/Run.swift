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
            Reads the configuration (YAML, docs/configuration.md), applies audience uploads whose file \
            changed, streams the backfill of newly mapped audiences (docs/exports.md#backfill, at \
            --backfill-rate), then applies the updates of --input (JSON lines, docs/input.md; '-' reads \
            stdin). Each batch of updates is committed to the \
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

            With --dry-run nothing is sent and nothing is written: no store folder or file is made or \
            changed and no rejects are kept (rejected lines are shown on stderr, the first 20, and \
            counted). Each export is printed as one JSON line {"dataflow", "destination", "partitionKey", \
            "triggers", "payload"} and a summary goes to stderr. Without --memory the store is read \
            read-only, as it is (a running connector is not held up), from the input's checkpoint on, \
            so the dry run shows what the next run would export; --memory starts from an empty store \
            and the first line. One connector runs on a store at a time.

            A line longer than --max-line-bytes (1 MiB) is rejected with its line number and skipped \
            without being held in memory; the rest flows. rejects.jsonl is rotated to rejects.1.jsonl \
            when it reaches --max-rejects-bytes (64 MiB).

            Exit status:
            \(RunExit.help)
              130 a second SIGINT/SIGTERM ended it at once (what was committed is kept)
              141 its standard output was a pipe that closed (killed by SIGPIPE, quietly)
            With exports both failed and left, the status is 65. A destination that cannot be used \
            keeps its exports in the outbox.
            """
    )

    @Option(help: "The configuration file (YAML).") var config: String
    @Option(help: "Profile updates, one JSON object per line; '-' reads stdin.") var input: String?
    @Flag(help: "Keep reading the input file as it grows, and keep running once everything is settled.") var follow = false
    @Flag(help: "Print the exports instead of sending them; writes nothing.") var dryRun = false
    @Flag(help: "With --dry-run: use an in-memory store instead of the configured durable one.") var memory = false
    @Option(help: "Updates applied per store batch (one commit each).") var batch = 512
    @Option(
        help: ArgumentHelp(
            "The longest input line accepted, in bytes; a longer one is rejected and skipped. Default: 1048576 (1 MiB).", valueName: "bytes"))
    var maxLineBytes: Int?
    @Option(help: ArgumentHelp("rejects.jsonl is renamed rejects.1.jsonl when it reaches this size. Default: 67108864 (64 MiB).", valueName: "bytes"))
    var maxRejectsBytes: Int?
    @OptionGroup var connector: ConnectorFlags
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        guard (1...1_000_000).contains(batch) else { throw ValidationError("--batch must be 1...1000000") }
        if let maxLineBytes, !(1...(1 << 30)).contains(maxLineBytes) { throw ValidationError("--max-line-bytes must be 1...1073741824") }
        if let maxRejectsBytes, !(1024...(1 << 40)).contains(maxRejectsBytes) {
            throw ValidationError("--max-rejects-bytes must be 1024...1099511627776")
        }
        if memory && !dryRun {
            throw ValidationError("--memory works only with --dry-run: the connector keeps its outbox in the durable store")
        }
        if follow && dryRun { throw ValidationError("--follow does not go with --dry-run") }
    }

    func run() async throws {
        // A reader of stdout or stderr that goes away makes writes fail with EPIPE instead of
        // killing the process with SIGPIPE wherever it is (in the middle of a commit).
        signal(SIGPIPE, SIG_IGN)
        let status: RunExit
        do {
            let configuration = try ExportConfiguration.load(file: config)
            status = dryRun ? try runDry(configuration) : try await send(configuration)
        } catch is StandardOutput.Closed {
            StandardOutput.endAsClosedPipe()
        } catch {
            printError("Error: \(error)")
            throw ExitCode(RunExit.of(error).code)
        }
        if status != .success { throw ExitCode(status.code) }
    }

    private func runDry(_ configuration: ExportConfiguration) throws -> RunExit {
        if memory {
            try preview(ProfileEngine(configuration: configuration, store: MemoryProfileStore()), resuming: false)
        } else {
            // The store as it is, read-only: nothing of it changes, and the input starts after its
            // checkpoint, as the next run would.
            try PreviewProfileStore.preview(folder: configuration.store) { store in
                try preview(ProfileEngine(configuration: configuration, store: store), resuming: true)
            }
        }
        return .success
    }

    /// Prints the exports `engine` makes for the backfill, the changed uploads and the input (from
    /// the input's checkpoint when `resuming`).
    private func preview(_ engine: ProfileEngine, resuming: Bool) throws {
        let output = StandardOutput()

        // Backfill first (profiles that already qualified for newly mapped audiences), then uploads.
        let backfill = try engine.backfill()
        for item in backfill { try output.write(item.jsonLine) }
        let uploads = try engine.applyChangedUploads()
        for report in uploads.reports { printError(report.summary) }
        for item in uploads.items { try output.write(item.jsonLine) }

        var summary = RunSummary()
        var skipped = 0
        if let input {
            var shown = 0
            let reader = try LineReader(path: input, maxLineBytes: maxLineBytes ?? LineReader.standardMaxLineBytes)
            let checkpoint = resuming ? reader.checkpointName : nil
            if let checkpoint, let line = try engine.store.value(named: checkpoint).flatMap(Int.init) {
                skipped = line
            }
            let stream = ExportStream(
                engine: engine, reader: reader, batchSize: batch, checkpoint: checkpoint,
                onReject: { line, error in
                    shown += 1
                    if shown <= 20 { printError("\(input == "-" ? "stdin" : input), line \(line): \(error.code): \(error.message)") }
                })
            while let item = try stream.nextItem() { try output.write(item.jsonLine) }
            summary = stream.summary
        }
        try output.flush()
        let exports = summary.exports.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")
        var line = ""
        if skipped > 0 { line += "resumed after line \(skipped) (the store's checkpoint of this input); " }
        line += "updates read \(summary.updatesRead), applied \(summary.updatesApplied), rejected \(summary.rejected)"
        if !summary.rejectedByKind.isEmpty {
            line +=
                " (" + summary.rejectedByKind.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
                + (summary.rejected > 20 ? "; the first 20 shown" : "") + "; a dry run keeps no rejects file)"
        }
        line += "; exports per dataflow: \(exports.isEmpty ? "none" : exports)"
        if !uploads.items.isEmpty { line += "; upload exports \(uploads.items.count)" }
        if !backfill.isEmpty { line += "; backfill exports \(backfill.count)" }
        printError(line)
    }

    private func send(_ configuration: ExportConfiguration) async throws -> RunExit {
        var options = ConnectorOptions()
        options.batchSize = batch
        options.follow = follow
        options.traceFrames = logging.traceFrames
        if let maxLineBytes { options.maxLineBytes = maxLineBytes }
        if let maxRejectsBytes { options.maxRejectsBytes = maxRejectsBytes }
        connector.apply(to: &options)
        if follow || input == nil { options.giveUpAfter = nil }
        let logger = makeLogger(logging)
        let running = Connector(configuration: configuration, options: options, logger: logger)
        let report = try await runConnector(running, input: input, logger: logger)
        printReport(report, configuration: configuration, rejects: configuration.store + "/rejects.jsonl")
        let failed = report.status.dataflows.values.reduce(0) { $0 + $1.counters.failed }
        if failed > 0 { printError("\(counted(failed, "export")) failed; see `hubcast failed list --config \(config)`") }
        let left = report.outbox.values.reduce(0, +)
        if left > 0 { printError("\(counted(left, "export")) left in the outbox; the next run sends them") }
        return RunExit.of(report)
    }
}

/// The summary of a connector run on stderr: intake, then the per-dataflow table.
func printReport(_ report: ConnectorReport, configuration: ExportConfiguration, rejects: String, to output: (String) -> Void = printError) {
    for upload in report.uploads { output(upload.summary) }
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

/// Standard output for many lines, buffered. A write that fails throws: ``Closed`` when the reader
/// went away (a closed pipe), otherwise an error naming the output and the system's reason.
final class StandardOutput {
    /// The reader of standard output went away (EPIPE): the run ends quietly.
    struct Closed: Error {}

    private var buffer: [UInt8] = []

    func write(_ line: String) throws {
        buffer.append(contentsOf: line.utf8)
        buffer.append(0x0A)
        if buffer.count >= 1 << 16 { try flush() }
    }

    func flush() throws {
        guard !buffer.isEmpty else { return }
        defer { buffer.removeAll(keepingCapacity: true) }
        let error = writeAll(1, buffer)
        if error == EPIPE { throw Closed() }
        if error != 0 { throw CommandError("cannot write to \(Self.name): \(String(cString: strerror(error)))") }
    }

    /// "standard output", with the file it is when it is one (`/dev/full`, `exports.jsonl`).
    static var name: String {
        var target = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/fd/1", &target, target.count - 1)
        guard count > 0, target[0] == CChar(UInt8(ascii: "/")) else { return "standard output" }
        return "standard output (" + String(decoding: target.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self) + ")"
    }

    /// Ends the process as other Unix tools end when their reader goes away: killed by SIGPIPE
    /// (exit status 141 in a shell), without a message. Called once everything is unwound (a dry
    /// run's read transaction ended).
    static func endAsClosedPipe() -> Never {
        signal(SIGPIPE, SIG_DFL)
        raise(SIGPIPE)
        exit(128 + SIGPIPE)
    }
}

/// A message line on stderr (clearing the progress line first); never fails.
func printError(_ line: String) {
    StandardError.write(line + "\n")
}
