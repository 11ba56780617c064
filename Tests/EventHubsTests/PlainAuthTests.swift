import AMQP
import HubcastEmulator
import Testing

/// SASL PLAIN against the emulator: user name = rule name, password = the rule's key, as the service
/// documents it for plain AMQP clients (no `$cbs`).
@Suite struct PlainAuthTests {
    func plain(_ emulator: HubcastEmulator, user: String, password: String) -> AMQPConnectionConfiguration {
        AMQPConnectionConfiguration(
            host: "127.0.0.1", port: emulator.port, sasl: .plain(username: user, password: password))
    }

    @Test func rightKeySendsWithoutCBS() async throws {
        try await withEmulator { emulator in
            let connection = try await AMQPConnection.connect(
                self.plain(emulator, user: "RootManageSharedAccessKey", password: "SAS_KEY_VALUE"))
            let sender = try await connection.openSender(target: "hub/Partitions/1")
            for index in 0..<5 {
                #expect(try await sender.send(AMQPMessage(bytes: [UInt8(index)])) == .accepted)
            }
            #expect(emulator.events(hub: "hub", partition: 1).map { $0.message.bodyBytes ?? [] } == (0..<5).map { [UInt8($0)] })
            await connection.close()
        }
    }

    @Test func wrongKeyIsRefusedAtConnectWithoutShowingTheKey() async throws {
        try await withEmulator { emulator in
            do {
                let connection = try await AMQPConnection.connect(
                    self.plain(emulator, user: "RootManageSharedAccessKey", password: "WRONG_SECRET"))
                await connection.close()
                Issue.record("connected with a wrong key")
            } catch let error as AMQPError {
                #expect(error.code == .authenticationFailed)
                #expect(error.message.contains("PLAIN"))
                #expect(!"\(error)".contains("WRONG_SECRET"))
                #expect(!"\(error)".contains("SAS_KEY_VALUE"))
            }
            #expect(emulator.events(hub: "hub").flatMap { $0 }.isEmpty)
        }
    }

    @Test func unknownRuleIsRefused() async throws {
        try await withEmulator { emulator in
            await #expect(throws: AMQPError.self) {
                _ = try await AMQPConnection.connect(self.plain(emulator, user: "nobody", password: "SAS_KEY_VALUE"))
            }
        }
    }

    /// The rule's rights still apply: a Listen-only rule may not send.
    @Test func ruleWithoutSendRightCannotSend() async throws {
        try await withEmulator { emulator in
            let connection = try await AMQPConnection.connect(self.plain(emulator, user: "listen-only", password: "LISTEN_KEY"))
            do {
                let sender = try await connection.openSender(target: "hub")
                _ = try await sender.send(AMQPMessage(bytes: [1]))
                Issue.record("sent without the Send right")
            } catch let error as AMQPError {
                #expect(error.remoteCondition?.name == AMQPCondition.unauthorizedAccess)
            }
            #expect(emulator.events(hub: "hub").flatMap { $0 }.isEmpty)
            await connection.close()
        }
    }
}
