// The connector's input: a file replaced at the same path, an input that cannot be read, and a
// pipe that holds half a line when the run is stopped.

import Foundation
import HubcastConnector
import HubcastEmulator
import ProfileExport
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite struct InputTests {
    /// A new file written at the same path as an input already read (the next export of the upstream
    /// system, a rotated log) is read from its first line (the file checkpoint was keyed by the path
    /// only, so its first N lines were silently skipped, N being the line count of the earlier file:
    /// accepted-looking input was never applied).
    @Test func newFileAtTheSamePathIsNotSkipped() async throws {
        try await Fixture.with { fixture in
            let input = try fixture.writeUpdates(60, profiles: 20)
            let first = try await fixture.connector().run(input: input)
            #expect(first.intake.updatesRead == 60)

            // Different content at the same path: 60 updates of other profiles.
            var text = ""
            for index in 0..<60 {
                text +=
                    #"{"profileId":"q-\#(index)","timestamp":"2026-11-21T00:00:00Z","identities":{"email":["q\#(index)@example.org"]},"#
                    + #""attributes":{"tier":"gold","score":\#(index),"name":"q\#(index)"}}"# + "\n"
            }
            try text.write(toFile: input, atomically: true, encoding: .utf8)
            let second = try await fixture.connector().run(input: input)
            #expect(second.intake.updatesRead == 60, "the new file's lines were skipped as if already applied")
            let received = fixture.receivedEvents()
            #expect(received.contains { $0.contains("q7@example.org") })
        }
    }

    /// An input that cannot be read (here a directory) is an error (it was taken as an empty input:
    /// the run reported 0 updates read and succeeded, `LineReader` taking a failing read(2) for the
    /// end of the input).
    @Test func anUnreadableInputIsAnError() async throws {
        try await Fixture.with { fixture in
            await #expect(throws: ConnectorError.self) { _ = try await fixture.connector().run(input: fixture.folder) }
        }
    }

    /// On live input (stdin, a pipe), stop() (SIGINT/SIGTERM) returns while the pipe holds a partial
    /// line (the intake thread blocked in read(2), and stop() did not return until the writer sent
    /// the rest of the line).
    @Test func stopReturnsWhileAPipeHoldsAPartialLine() async throws {
        try await Fixture.with { fixture in
            let fifo = fixture.folder + "/updates.fifo"
            #expect(mkfifo(fifo, 0o600) == 0)
            // Held open for reading and writing: the reader never sees the end of the input.
            let writer = open(fifo, O_RDWR)
            try #require(writer >= 0)
            defer { close(writer) }
            @Sendable func send(_ text: String) { _ = text.utf8CString.withUnsafeBufferPointer { write(writer, $0.baseAddress, $0.count - 1) } }
            @Sendable func pipeIsEmpty() -> Bool {
                var descriptor = pollfd(fd: writer, events: Int16(POLLIN), revents: 0)
                return poll(&descriptor, 1, 0) == 0
            }
            let line =
                #"{"profileId":"p-1","timestamp":"2026-11-20T00:00:00Z","identities":{"email":["e1@example.org"]},"attributes":{"tier":"gold","score":1,"name":"n1"}}"#
            let connector = try fixture.connector()
            let outcome = try await runWithWatchdog(connector, input: fifo, seconds: 3) {
                send(line + "\n")
                #expect(await eventually { connector.status.updatesApplied == 1 })
                // Half a line; once the intake has taken it from the pipe it waits in read(2) for the rest.
                send(String(line.prefix(40)))
                #expect(await eventually { pipeIsEmpty() })
                connector.stop()
            } onFire: {
                // Unblocks the intake so that the test ends.
                send(String(line.dropFirst(40)) + "\n")
            }
            #expect(!outcome.fired, "stop() did not return: the intake thread is blocked reading the rest of a line")
        }
    }
}
