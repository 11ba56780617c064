// Fuzzing the connection-string parser: mutations of valid strings and random bytes.

import EventHubs
import Foundation
import FuzzSupport
import Testing

@Suite struct ConnectionStringFuzzTests {
    static let key = "cHJvYmUtc2VjcmV0LWtleS0xMjM0NTY3ODkw9Q=="
    static let valid = [
        "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=\(key);EntityPath=hub",
        "Endpoint=sb://localhost:5672;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=\(key);UseDevelopmentEmulator=true;",
        "endpoint = sb://ns/ ; sharedaccesskeyname=a ; sharedaccesskey=\(key) ; transporttype=Amqp",
        "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessSignature=SharedAccessSignature sr=amqps%3a%2f%2fns%2fhub&sig=\(key)&se=1900000000&skn=send;EntityPath=hub",
    ]
    /// Pieces a mutation inserts: separators, field names, scheme parts, odd bytes.
    static let pieces = [
        ";", "=", " ", "  ", "\t", "\n", "sb://", "://", ":", "/", ":99999", ":0", "Endpoint=", "SharedAccessKey=",
        "SharedAccessKeyName=", "SharedAccessSignature=", "EntityPath=", "UseDevelopmentEmulator=", "TransportType=",
        "HostName=", "sig=", "&", "%", "\u{0}", "é", "\u{FEFF}", "[", "]", "@", "?", "#", "true", "yes", "cHJvYmUt",
    ]

    /// Every input either parses or throws an `EventHubsError` with a message; the key of the
    /// string never shows in an error, and a parsed string's description hides it.
    @Test func mutationsAndRandomBytesNeverCrashOrLeak() {
        var random = SeededGenerator(seed: Fuzz.seed(0x4855_4243_4153_5431))
        let cases = Fuzz.cases
        var parsed = 0
        for index in 0..<cases {
            let text = index % 5 == 4 ? Self.randomText(&random) : Self.mutate(Self.valid[Int(random.next() % UInt64(Self.valid.count))], &random)
            do {
                let string = try EventHubsConnectionString(parsing: text, eventHub: random.next() % 4 == 0 ? "hub" : nil)
                parsed += 1
                #expect(!string.description.contains(Self.key), "\(text)")
            } catch let error as EventHubsError {
                #expect(!error.message.isEmpty)
                #expect(!error.description.contains(Self.key), "leaked by \(text.debugDescription): \(error)")
            } catch {
                Issue.record("not an EventHubsError: \(error) for \(text.debugDescription)")
            }
        }
        #expect(parsed > 0 && parsed < cases, "the mutations reach both outcomes")
    }

    static func mutate(_ text: String, _ random: inout SeededGenerator) -> String {
        var characters = Array(text)
        for _ in 0..<(1 + Int(random.next() % 4)) {
            let position = characters.isEmpty ? 0 : Int(random.next() % UInt64(characters.count + 1))
            switch random.next() % 6 {
            case 0 where !characters.isEmpty:
                characters.remove(at: min(position, characters.count - 1))
            case 1:
                characters.insert(contentsOf: pieces[Int(random.next() % UInt64(pieces.count))], at: position)
            case 2 where !characters.isEmpty:
                // Replace a separator with a space (the mistyped string of the issue) or the reverse.
                characters = characters.map { $0 == ";" && random.next() % 2 == 0 ? " " : $0 }
            case 3 where !characters.isEmpty:
                let end = min(characters.count, position + Int(random.next() % 12))
                characters.insert(contentsOf: characters[min(position, end)..<end], at: position)
            case 4 where !characters.isEmpty:
                characters[min(position, characters.count - 1)] = Character(UnicodeScalar(UInt8(random.next() % 128)))
            default:
                characters = Array(String(characters).uppercased())
            }
        }
        return String(characters)
    }

    static func randomText(_ random: inout SeededGenerator) -> String {
        let bytes = (0..<Int(random.next() % 120)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
