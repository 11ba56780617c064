import EventHubs
import Foundation
import Testing

@Suite struct ConnectionStringTests {
    @Test func keyFormWithEntityPath() throws {
        let parsed = try EventHubsConnectionString(
            parsing: "Endpoint=sb://Contoso.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=abc+/def==;EntityPath=orders;")
        #expect(parsed.fullyQualifiedNamespace == "contoso.servicebus.windows.net")
        #expect(parsed.eventHub == "orders")
        #expect(parsed.credential == .sharedAccessKey(name: "send", key: "abc+/def=="))
        #expect(parsed.effectivePort == 5671)
        #expect(parsed.usesTLS)
        #expect(parsed.audience("orders") == "amqps://contoso.servicebus.windows.net/orders")
    }

    @Test func keysAreCaseInsensitiveAndTrimmed() throws {
        let parsed = try EventHubsConnectionString(
            parsing: " endpoint = sb://ns.servicebus.windows.net/ ; SHAREDACCESSKEYNAME=rule;sharedAccessKey=k=;entitypath=hub")
        #expect(parsed.fullyQualifiedNamespace == "ns.servicebus.windows.net")
        #expect(parsed.credential == .sharedAccessKey(name: "rule", key: "k="))
        #expect(parsed.eventHub == "hub")
    }

    @Test func emulatorForm() throws {
        let parsed = try EventHubsConnectionString(
            parsing:
                "Endpoint=sb://localhost:6000;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;",
            eventHub: "hub")
        #expect(parsed.useDevelopmentEmulator)
        #expect(!parsed.usesTLS)
        #expect(parsed.effectivePort == 6000)
        #expect(parsed.eventHub == "hub")
        let defaultPort = try EventHubsConnectionString(
            parsing: "Endpoint=sb://localhost;SharedAccessKeyName=a;SharedAccessKey=b;UseDevelopmentEmulator=true")
        #expect(defaultPort.effectivePort == 5672)
        let upper = try EventHubsConnectionString(
            parsing: "Endpoint=sb://localhost;SharedAccessKeyName=a;SharedAccessKey=b;UseDevelopmentEmulator=TRUE")
        #expect(upper.useDevelopmentEmulator)
        let off = try EventHubsConnectionString(
            parsing: "Endpoint=sb://localhost;SharedAccessKeyName=a;SharedAccessKey=b;UseDevelopmentEmulator=False")
        #expect(!off.useDevelopmentEmulator)
    }

    /// `UseDevelopmentEmulator=yes` used to mean false silently, and the connection then failed in
    /// TLS: anything but true or false is an error naming the field.
    @Test(arguments: ["yes", "1", "on", "tru"])
    func developmentEmulatorMustBeTrueOrFalse(_ value: String) {
        #expect {
            try EventHubsConnectionString(parsing: "Endpoint=sb://localhost;SharedAccessKeyName=a;SharedAccessKey=b;UseDevelopmentEmulator=\(value)")
        } throws: { error in
            guard let error = error as? EventHubsError, error.code == .invalidConnectionString else { return false }
            return error.message.contains("UseDevelopmentEmulator must be true or false")
        }
    }

    /// The service's fields are a fixed set: a misspelled one is named, not taken for a missing key.
    @Test func unknownFieldsAreNamed() {
        #expect {
            try EventHubsConnectionString(parsing: "Endpoint=sb://ns/;SharedAccessKeyName=a;SharedAcessKey=TOPSECRET")
        } throws: { error in
            guard let error = error as? EventHubsError else { return false }
            return error.message.contains("unknown field SharedAcessKey") && !error.description.contains("TOPSECRET")
        }
        for name in EventHubsConnectionString.fieldNames {
            #expect(
                [
                    "Endpoint", "SharedAccessKeyName", "SharedAccessKey", "SharedAccessSignature", "EntityPath",
                    "UseDevelopmentEmulator", "TransportType",
                ].contains(name))
        }
        #expect(EventHubsConnectionString.fieldNames.count == 7)
    }

    @Test func transportTypeIsAmqp() throws {
        let amqp = try EventHubsConnectionString(parsing: "Endpoint=sb://ns/;SharedAccessKeyName=a;SharedAccessKey=b;TransportType=amqp")
        #expect(amqp.usesTLS)
        #expect {
            try EventHubsConnectionString(parsing: "Endpoint=sb://ns/;SharedAccessKeyName=a;SharedAccessKey=b;TransportType=AmqpWebSockets")
        } throws: { error in
            (error as? EventHubsError)?.message.contains("not supported") == true
        }
        #expect(throws: EventHubsError.self) {
            try EventHubsConnectionString(parsing: "Endpoint=sb://ns/;SharedAccessKeyName=a;SharedAccessKey=b;TransportType=tcp")
        }
    }

    /// Spaces instead of semicolons made one Endpoint of the whole string, and its error quoted it,
    /// key and all.
    @Test func fieldsRunTogetherAreNamedWithoutTheKey() {
        let key = "cHJvYmUtc2VjcmV0LWtleS0xMjM0NTY3ODkw="
        for text in [
            "Endpoint=sb://127.0.0.1:45777 SharedAccessKeyName=RootManageSharedAccessKey SharedAccessKey=\(key)",
            "Endpoint=sb://127.0.0.1:45777/ SharedAcessKey=\(key)",
            "Endpoint=sb://bad host/;SharedAccessKeyName=a;SharedAccessKey=\(key)",
            "Endpoint=sb://h/;SharedAccessKeyName=a;SharedAccessKey=\(key);EntityPath=one SharedAccessKey=\(key)",
            "Endpoint=sb://h/;SharedAccessKeyName=a;SharedAccessKey=\(key);UseDevelopmentEmulator=maybe SharedAccessKey=\(key)",
            "\(key)",
            "Endpoint=sb://h:99999/;SharedAccessKeyName=a;SharedAccessKey=\(key)",
        ] {
            do {
                _ = try EventHubsConnectionString(parsing: text, eventHub: "two")
                Issue.record("accepted: \(text)")
            } catch {
                #expect(!"\(error)".contains(key), "\(error)")
                #expect(!"\(error)".contains("cHJvYmUt"), "\(error)")
            }
        }
        #expect {
            try EventHubsConnectionString(parsing: "Endpoint=sb://127.0.0.1:45777 SharedAccessKeyName=Root SharedAccessKey=\(key)")
        } throws: { error in
            (error as? EventHubsError)?.message.contains("separate the fields with ';'") == true
        }
    }

    @Test func preMadeSignature() throws {
        let token = EventHubsSASToken(
            resource: "amqps://ns.servicebus.windows.net/hub", keyName: "send", key: "secret", expiresAt: 1_900_000_000)
        let parsed = try EventHubsConnectionString(
            parsing: "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessSignature=\(token.token);EntityPath=hub")
        guard case .sharedAccessSignature(let read) = parsed.credential else {
            Issue.record("expected a signature credential")
            return
        }
        #expect(read.expiresAt == 1_900_000_000)
        #expect(read.keyName == "send")
        #expect(read.resource == "amqps://ns.servicebus.windows.net/hub")
    }

    @Test func separateFields() throws {
        let short = try EventHubsConnectionString(namespace: "contoso", eventHub: "hub", sasKeyName: "send", sasKey: "k")
        #expect(short.fullyQualifiedNamespace == "contoso.servicebus.windows.net")
        let full = try EventHubsConnectionString(
            namespace: "contoso.servicebus.chinacloudapi.cn", eventHub: "hub", sasKeyName: "send", sasKey: "k")
        #expect(full.fullyQualifiedNamespace == "contoso.servicebus.chinacloudapi.cn")
        #expect(throws: EventHubsError.self) {
            try EventHubsConnectionString(namespace: "contoso", eventHub: "hub", sasKeyName: "send", sasKey: "")
        }
    }

    static let badStrings: [(String, String)] = [
        ("SharedAccessKeyName=a;SharedAccessKey=b", "Endpoint is missing"),
        ("Endpoint=sb://ns/;SharedAccessKeyName=a", "without SharedAccessKey"),
        ("Endpoint=sb://ns/;SharedAccessKey=TOPSECRET", "without SharedAccessKeyName"),
        ("Endpoint=sb://ns/", "no credential"),
        ("Endpoint=sb://ns/;SharedAccessKeyName=a;SharedAccessKey=TOPSECRET;SharedAccessSignature=sr=x&sig=y&se=1", "not both"),
        ("Endpoint=sb://ns/;SharedAccessKeyName=;SharedAccessKey=TOPSECRET", "empty value"),
        ("Endpoint=sb://ns/;SharedAccessKeyName=a;SharedAccessKey=TOPSECRET;EntityPath=one", "differs"),
        ("HostName=x.azure-devices.net;SharedAccessKeyName=a;SharedAccessKey=TOPSECRET", "IoT Hub"),
        ("Endpoint=sb://ns/;SharedAccessSignature=sig=TOPSECRET&se=1", "sr"),
        ("Endpoint=sb://ns/;SharedAccessKeyName=a;SharedAccessKey=TOPSECRET;SharedAccessKeyName=b", "twice"),
        ("Endpoint=;SharedAccessKeyName=a;SharedAccessKey=TOPSECRET", "empty value"),
        ("garbage", "no '='"),
        ("TOPSECRET", "segment 1 has no '='"),
        ("Endpoint=sb://ns/;SharedAccessKeyName=a;SharedAccessKey=TOPSECRET;Foo=bar", "unknown field Foo"),
    ]

    @Test(arguments: badStrings)
    func badStringsGetClearErrorsThatNeverShowTheKey(_ text: String, _ expected: String) {
        do {
            _ = try EventHubsConnectionString(parsing: text, eventHub: text.contains("EntityPath=one") ? "two" : nil)
            Issue.record("\(text) was accepted")
        } catch let error as EventHubsError {
            #expect(error.code == .invalidConnectionString || error.code == .invalidToken)
            #expect(error.message.contains(expected), "\(error.message)")
            #expect(!error.description.contains("TOPSECRET"))
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test func descriptionHidesSecrets() throws {
        let parsed = try EventHubsConnectionString(
            parsing: "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=TOPSECRET;EntityPath=hub")
        #expect(!parsed.description.contains("TOPSECRET"))
        let token = EventHubsSASToken(resource: "amqps://ns/hub", keyName: "send", key: "k", expiresAt: 1)
        #expect(!token.description.contains("sig="))
    }
}

@Suite struct SASTokenTests {
    /// The golden vector of docs/eventhubs-wire.md#sas-tokens (from the Rust SDK's tests).
    @Test func goldenVector() {
        let token = EventHubsSASToken(
            resource: "amqps://example.servicebus.windows.net/myhub", keyName: "RootManageSharedAccessKey", key: "mykey",
            expiresAt: 1_700_000_000)
        #expect(
            token.token
                == "SharedAccessSignature sr=amqps%3a%2f%2fexample.servicebus.windows.net%2fmyhub&sig=SgJoMn7K6nWDCF6e1%2BfsxrmJLsorqPeZ3B8N1uQ31dc%3D&se=1700000000&skn=RootManageSharedAccessKey"
        )
    }

    @Test func resourceIsLowerCasedBeforeSigning() {
        let upper = EventHubsSASToken(resource: "amqps://Example.servicebus.windows.net/MyHub", keyName: "r", key: "k", expiresAt: 5)
        let lower = EventHubsSASToken(resource: "amqps://example.servicebus.windows.net/myhub", keyName: "r", key: "k", expiresAt: 5)
        #expect(upper.token == lower.token)
    }

    @Test func parsedTokenKeepsItsFields() throws {
        let made = EventHubsSASToken(resource: "amqps://ns.servicebus.windows.net/hub", keyName: "my rule", key: "k", expiresAt: 42)
        let read = try EventHubsSASToken(parsing: made.token)
        #expect(read.expiresAt == 42)
        #expect(read.keyName == "my rule")
        #expect(read.resource == "amqps://ns.servicebus.windows.net/hub")
        #expect(read.token == made.token)
        #expect(read.isValid(at: 41))
        #expect(!read.isValid(at: 42))
        #expect(!read.isValid(at: 30, margin: 20))
    }

    @Test func malformedTokensAreRefused() {
        for text in ["", "SharedAccessSignature sig=a&se=1", "sr=a&se=1", "sr=a&sig=b", "sr=a&sig=b&se=soon"] {
            #expect(throws: EventHubsError.self) { try EventHubsSASToken(parsing: text) }
        }
    }
}

@Suite struct SASVerificationTests {
    @Test func verifiesWithTheRightKeyOnly() throws {
        let made = EventHubsSASToken(resource: "amqps://ns.servicebus.windows.net/hub", keyName: "r", key: "right", expiresAt: 99)
        let read = try EventHubsSASToken(parsing: made.token)
        #expect(read.isSigned(byKey: "right"))
        #expect(!read.isSigned(byKey: "wrong"))
        let tampered = try EventHubsSASToken(parsing: made.token.replacingOccurrences(of: "se=99", with: "se=999"))
        #expect(!tampered.isSigned(byKey: "right"))
    }

    @Test func coversItsResourceAndBelow() {
        let token = EventHubsSASToken(resource: "amqps://ns.servicebus.windows.net/hub", keyName: "r", key: "k", expiresAt: 1)
        #expect(token.covers("amqps://ns.servicebus.windows.net/hub"))
        #expect(token.covers("sb://NS.servicebus.windows.net/hub/Partitions/3"))
        #expect(!token.covers("amqps://ns.servicebus.windows.net/hub2"))
        #expect(!token.covers("amqps://other.servicebus.windows.net/hub"))
        let namespaceWide = EventHubsSASToken(resource: "sb://ns.servicebus.windows.net/", keyName: "r", key: "k", expiresAt: 1)
        #expect(namespaceWide.covers("amqps://ns.servicebus.windows.net/any"))
    }
}
