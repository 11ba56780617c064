// Credentials never reach a log or a message: AMQPRedaction, and the frame trace through it.

import AMQP
import EventHubs
import Foundation
import FuzzSupport
import HubcastEmulator
import Logging
import Synchronization
import Testing

@Suite struct RedactionTests {
    @Test(arguments: [
        (
            "SharedAccessSignature sr=amqps%3a%2f%2fns%2fhub&sig=AbC%2bdEf%3d&se=1796680795&skn=Root",
            "SharedAccessSignature <redacted>"
        ),
        (
            #"\xa1\x95SharedAccessSignature sr=amqps%3a%2f%2flocalhost%2fhub&sig=AbC%2b&se=17&skn=Root"#,
            #"\xa1\x95SharedAccessSignature <redacted>"#
        ),
        (
            "Endpoint=sb://ns/;SharedAccessKeyName=Root;SharedAccessKey=c2VjcmV0+/==;EntityPath=hub",
            "Endpoint=sb://ns/;SharedAccessKeyName=Root;SharedAccessKey=<redacted>;EntityPath=hub"
        ),
        (
            "Endpoint=sb://h:1 SharedAccessKeyName=Root SharedAccessKey=c2VjcmV0==",
            "Endpoint=sb://h:1 SharedAccessKeyName=Root SharedAccessKey=<redacted>"
        ),
        (
            "Endpoint=sb://ns/;SharedAccessSignature=SharedAccessSignature sr=x&sig=y&se=1;EntityPath=hub",
            "Endpoint=sb://ns/;SharedAccessSignature=<redacted>;EntityPath=hub"
        ),
        ("sharedaccesskey = abc;x=1", "sharedaccesskey = <redacted>;x=1"),
        ("SharedAcessKey=misspelled", "SharedAcessKey=<redacted>"),
        (
            #"@sasl-init(65) [mechanism=:PLAIN, initial-response=b"\x00Root\x00SAS_KEY_VALUE", hostname="h"]"#,
            #"@sasl-init(65) [mechanism=:PLAIN, initial-response=<redacted>, hostname="h"]"#
        ),
        (#"{"security_token"="SharedAccessSignature sr=a&sig=b&se=1"}"#, #"{"security_token"=<redacted>}"#),
        (#"[SharedAccessSignature sr=a&sig=b&se=1]"#, #"[SharedAccessSignature <redacted>]"#),
        (#"{"security_token"="sr=a&sig=b&se=1"}"#, #"{"security_token"=<redacted>}"#),
        ("sr=a&sig=b&se=1", "sr=a&sig=<redacted>&se=1"),
        ("password=hunter2 user=me", "password=<redacted> user=me"),
        ("SharedAccessKeyName=Root;partitionKey=p-1;x-opt-partition-key=p-2", "SharedAccessKeyName=Root;partitionKey=p-1;x-opt-partition-key=p-2"),
        ("the SharedAccessSignature has no sig (signature) field", "the SharedAccessSignature has no sig (signature) field"),
        ("naïve — SharedAccessKey=ключ; ok", "naïve — SharedAccessKey=<redacted>; ok"),
        ("nothing to see here", "nothing to see here"),
    ])
    func blanksCredentialsAndNothingElse(_ text: String, _ expected: String) {
        #expect(AMQPRedaction.redact(text) == expected)
    }

    /// Random text never makes it trap, and what it returns holds no run of a key that was there.
    @Test func randomTextIsSafe() {
        var random = SeededGenerator(seed: 7)
        let pieces = ["SharedAccessKey=", "SharedAccessSignature ", "sr=", "&sig=", "=", ";", " ", "\"", "b\"", "\\x95", "KEY123", "é"]
        for _ in 0..<5000 {
            var text = ""
            for _ in 0..<Int(random.next() % 12) {
                text += pieces[Int(random.next() % UInt64(pieces.count))]
            }
            let redacted = AMQPRedaction.redact(text)
            #expect(!redacted.contains("SharedAccessKey=KEY123"), "\(text)")
            #expect(AMQPRedaction.redact(redacted) == redacted, "redaction is stable: \(text)")
        }
    }

    /// `--trace-frames` logged the put-token body verbatim: a live SAS token. The trace still shows
    /// the frames, with the token blanked.
    @Test func frameTraceShowsNoToken() async throws {
        let lines = LogLines()
        var logger = Logger(label: "test.trace") { _ in lines }
        logger.logLevel = .debug
        try await withEmulator { emulator in
            var options = EventHubsProducerOptions()
            options.client.traceFrames = true
            let producer = try EventHubsProducer(
                connectionString: EventHubsConnectionString(parsing: emulator.connectionString(eventHub: "hub")), options: options, logger: logger)
            #expect(try await producer.send(EventHubsEvent(body: Array("hello".utf8))) == .accepted)
            await producer.close()
            _ = try await EventHubsManagement.hubProperties(
                connectionString: EventHubsConnectionString(parsing: emulator.connectionString(eventHub: "hub")), options: options.client)
        }
        let text = lines.all.joined(separator: "\n")
        #expect(text.contains("put-token"), "the put-token frame is traced")
        #expect(text.contains("SharedAccessSignature <redacted>"))
        #expect(!text.contains("sig="))
        #expect(!text.contains("SAS_KEY_VALUE"))
    }

    /// SASL PLAIN sends the key itself (as the password): the trace blanks the response.
    @Test func frameTraceShowsNoPlainPassword() async throws {
        let lines = LogLines()
        var logger = Logger(label: "test.trace") { _ in lines }
        logger.logLevel = .debug
        try await withEmulator { emulator in
            var configuration = AMQPConnectionConfiguration(
                host: "127.0.0.1", port: emulator.port, sasl: .plain(username: "RootManageSharedAccessKey", password: "SAS_KEY_VALUE"))
            configuration.traceFrames = true
            let connection = try await AMQPConnection.connect(configuration, logger: logger)
            await connection.close()
        }
        let text = lines.all.joined(separator: "\n")
        #expect(text.contains("sasl-init"))
        #expect(!text.contains("SAS_KEY_VALUE"))
    }
}

/// A log handler that keeps every message.
final class LogLines: LogHandler, @unchecked Sendable {
    // @unchecked: the lines are behind a mutex; the rest is set once, before use.
    private let lines = Mutex<[String]>([])
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    var all: [String] { lines.withLock { $0 } }

    func log(event: LogEvent) {
        lines.withLock { $0.append("\(event.message)") }
    }
}
