// Hubcast — the command-line tool.

import AMQP
import ArgumentParser
import Foundation

@main
struct Hubcast: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hubcast",
        abstract: "Streams customer-profile exports to Azure Event Hubs over AMQP 1.0.",
        discussion: """
            `hubcast run --config FILE --input FILE` is the connector; `hubcast demo` runs it on the sample \
            data against the built-in Event Hubs emulator. `run`, `demo` and `emulator` restart \
            themselves once at launch with glibc's huge-page malloc (GLIBC_TUNABLES; see the README's \
            "Memory"); HUBCAST_HUGE_PAGES=0 turns that off.
            """,
        version: "hubcast \(Hubcast.version)",
        subcommands: [
            Run.self, Status.self, Failed.self, Explain.self, Check.self, Send.self, Receive.self, Hub.self, Emulator.self, Demo.self, Listen.self,
        ]
    )

    /// Hubcast's version, defined here only (`hubcast --version`).
    static let version = "0.1.0"

    /// Parses and runs the command. Errors (the parser's included) go out through
    /// ``StandardError``, which blanks credentials; help and the version go to stdout.
    static func main() async {
        HugePages.restartIfUseful()
        bootstrapLogging()
        do {
            var command = try parseAsRoot(nil)
            if var asynchronous = command as? any AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            let message = fullMessage(for: error)
            if code == .success {
                if !message.isEmpty { print(message) }
            } else if !message.isEmpty {
                StandardError.write(message + "\n")
            }
            Foundation.exit(code.rawValue)
        }
    }
}

/// Options every command that logs shares.
struct LoggingOptions: ParsableArguments {
    @Flag(name: .long, help: "Log every AMQP frame (Proton's frame trace) to stderr.")
    var traceFrames = false

    @Flag(name: .shortAndLong, help: "Log at debug level.")
    var verbose = false
}
