// Hubcast — `hubcast check`: validates a configuration, and with --connect each destination's
// credentials, one line per check.

import AMQP
import ArgumentParser
import EventHubs
import Foundation
import ProfileExport

struct Check: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate a configuration: YAML, audiences (rules, upload files), destinations, dataflows; with --connect, each hub's credentials.",
        discussion: """
            Prints one line per check, `ok`, `warn` or `FAIL`, and exits non-zero when any check failed. \
            Connection strings are parsed and shown without their key. --connect also opens each \
            destination that a dataflow sends to as the connector does (TLS, a token put on $cbs, a \
            sender link attached to the hub), sends nothing, and closes: a refused key, an unknown hub \
            or an unreachable namespace fails. Nothing is written; the store is not opened.
            """
    )

    @Option(help: "The configuration file (YAML).") var config: String
    @Flag(help: "Also connect to each destination and check that it accepts the credentials.") var connect = false
    @Option(help: "With --connect: a CA file to trust for TLS (for example the emulator's test CA, certs/ca.pem).") var caFile: String?
    @Option(help: "With --connect: seconds each destination may take to accept.") var timeout: Double = 20
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        guard timeout.isFinite, (1...600).contains(timeout) else { throw ValidationError("--timeout must be 1...600 seconds") }
    }

    func run() async throws {
        var report = CheckReport()
        defer { report.finish() }
        // Loaded for inspection first, so that an unset variable of one destination is reported
        // on its line and the other checks still run.
        let configuration: ExportConfiguration
        do {
            configuration = try ExportConfiguration.load(file: config, mode: .inspection)
        } catch {
            report.fail("configuration", "\(error)")
            throw ExitCode.failure
        }
        report.ok(
            "configuration",
            "\(config): \(configuration.destinations.count) destinations, \(configuration.audiences.count) audiences, "
                + "\(configuration.dataflows.count) dataflows, retries \(configuration.retry.retries)")
        let storeFile = URL(fileURLWithPath: configuration.store).appendingPathComponent("profiles.sqlite").path
        report.ok("store", FileManager.default.fileExists(atPath: storeFile) ? storeFile : "\(storeFile) (a run makes it)")

        for audience in configuration.audiences { checkAudience(audience, &report) }
        var targets: [(Destination, EventHubsConnectionString)] = []
        for destination in configuration.destinations {
            if let target = checkDestination(destination, in: configuration, &report) { targets.append((destination, target)) }
        }
        for dataflow in configuration.dataflows {
            let audiences = dataflow.audiences.map(\.id).joined(separator: ", ")
            report.ok(
                "dataflow \(dataflow.id)",
                "→ \(dataflow.destination); audiences \(audiences); \(dataflow.attributes.count) attributes; "
                    + "partition key \(dataflow.partitionKey ?? "the profile id")")
        }
        if connect {
            if let caFile {
                do throws(FileReading.Failure) {
                    try FileReading.checkReadable(caFile)
                    report.ok("CA file", caFile)
                } catch {
                    report.fail("CA file", "cannot read \(caFile): \(error.reason)")
                }
            }
            for (destination, target) in targets where configuration.dataflows.contains(where: { $0.destination == destination.id }) {
                await checkConnection(destination, target, &report)
            }
        }
        if report.failures > 0 { throw ExitCode.failure }
    }

    private func checkAudience(_ audience: AudienceDefinition, _ report: inout CheckReport) {
        let what = "audience \(audience.id)"
        switch audience.origin {
        case .rule(let rule):
            report.ok(what, "rule \(rule)")
        case .upload(let file):
            do {
                let (identities, rejected) = try UploadFile.read(file: file)
                if rejected.isEmpty {
                    report.ok(what, "upload \(file): \(counted(identities.count, "identity", "identities"))")
                } else {
                    report.warn(
                        what, "upload \(file): \(counted(identities.count, "identity", "identities")), \(UploadReport.badLines(rejected)) skipped")
                }
            } catch {
                report.fail(what, "upload \(file): \(error.message)")
            }
        case .upstream:
            report.ok(what, "evaluated upstream (statuses arrive with the updates)")
        }
    }

    /// The destination's connection, parsed; nil (and a failed line) when it cannot be.
    private func checkDestination(
        _ destination: Destination, in configuration: ExportConfiguration,
        _ report: inout CheckReport
    ) -> EventHubsConnectionString? {
        let what = "destination \(destination.id)"
        let target: EventHubsConnectionString
        do {
            switch try destination.resolvedConnection() {
            case .connectionString(let text, let hub):
                target = try EventHubsConnectionString(parsing: text, eventHub: hub)
            case .fields(let namespace, let keyName, let key, let hub):
                target = try EventHubsConnectionString(namespace: namespace, eventHub: hub, sasKeyName: keyName, sasKey: key)
            }
        } catch let error as ProfileExportError {
            report.fail(what, error.message)
            return nil
        } catch {
            report.fail(what, "\(error)")
            return nil
        }
        guard target.eventHub != nil else {
            report.fail(what, "no event hub: add EntityPath to the connection string or set eventHubName")
            return nil
        }
        if configuration.dataflows.contains(where: { $0.destination == destination.id }) {
            report.ok(what, "\(target)")
        } else {
            report.warn(what, "\(target); no dataflow sends to it")
        }
        return target
    }

    /// Opens the destination as the connector does (connection, token, sender link), sends nothing.
    private func checkConnection(_ destination: Destination, _ target: EventHubsConnectionString, _ report: inout CheckReport) async {
        let what = "destination \(destination.id)"
        var options = EventHubsProducerOptions()
        options.client.trustedCAFile = caFile
        options.client.traceFrames = logging.traceFrames
        // A refusal is final here; an unreachable hub is retried briefly, up to --timeout.
        options.client.retry.maxRetries = 0
        options.client.retry.initialDelay = .milliseconds(200)
        options.client.retry.maxDelay = .seconds(2)
        options.client.retry.deadline = .milliseconds(Int(timeout * 1000))
        let started = ContinuousClock.now
        do {
            let producer = try EventHubsProducer(connectionString: target, options: options, logger: makeLogger(logging))
            let attempt = Task { try await producer.attach() }
            let watchdog = Task {
                try await Task.sleep(for: .milliseconds(Int(timeout * 1000)))
                attempt.cancel()
            }
            defer { watchdog.cancel() }
            do {
                try await attempt.value
            } catch {
                await producer.close()
                throw error
            }
            await producer.close()
            report.ok(
                what,
                "connected to \(target.fullyQualifiedNamespace):\(target.effectivePort), credentials accepted, "
                    + "sender attached to \(producer.eventHub) (\(format(ContinuousClock.now - started)))")
        } catch is CancellationError {
            report.fail(what, "no answer from \(target.fullyQualifiedNamespace):\(target.effectivePort) within \(Int(timeout)) s")
        } catch {
            report.fail(what, "cannot send to \(target.eventHub ?? "?") at \(target.fullyQualifiedNamespace):\(target.effectivePort): \(error)")
        }
    }
}

/// The lines `hubcast check` prints, each through ``AMQPRedaction`` (a message may quote a
/// mistyped connection string), and the count of failures.
struct CheckReport {
    private(set) var failures = 0
    private(set) var warnings = 0
    private(set) var checks = 0

    mutating func ok(_ what: String, _ detail: String) { line("ok  ", what, detail) }

    mutating func warn(_ what: String, _ detail: String) {
        warnings += 1
        line("warn", what, detail)
    }

    mutating func fail(_ what: String, _ detail: String) {
        failures += 1
        line("FAIL", what, detail)
    }

    private mutating func line(_ status: String, _ what: String, _ detail: String) {
        checks += 1
        print(AMQPRedaction.redact("\(status)  \(what): \(detail)"))
    }

    /// The summary line.
    func finish() {
        print(
            failures == 0
                ? "\(checks) checks passed\(warnings > 0 ? " (\(warnings) with a warning)" : "")"
                : "\(failures) of \(checks) checks failed")
    }
}
