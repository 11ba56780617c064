// Hubcast — the command-line tool.

import AMQP
import ArgumentParser

@main
struct Hubcast: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hubcast",
        abstract: "Streams customer-profile exports to Azure Event Hubs over AMQP 1.0.",
        discussion: """
            `hubcast run --config FILE --input FILE` is the connector; `hubcast demo` runs it on the sample \
            data against the built-in Event Hubs emulator. `run`, `bench`, `demo` and `emulator` restart \
            themselves once at launch with glibc's huge-page malloc (GLIBC_TUNABLES; see the README's \
            "Memory"); HUBCAST_HUGE_PAGES=0 turns that off.
            """,
        subcommands: [Run.self, Status.self, Failed.self, Explain.self, Send.self, Receive.self, Hub.self, Emulator.self, Demo.self, Listen.self, Bench.self]
    )

    static func main() async {
        HugePages.restartIfUseful()
        await main(nil)
    }
}

/// Options every command that logs shares.
struct LoggingOptions: ParsableArguments {
    @Flag(name: .long, help: "Log every AMQP frame (Proton's frame trace) to stderr.")
    var traceFrames = false

    @Flag(name: .shortAndLong, help: "Log at debug level.")
    var verbose = false
}
