// Hubcast — one connector per store: the lock on the store folder, and two connectors started on
// one store.

import Foundation
@testable import HubcastConnector
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite struct StoreLockTests {
    private func folder() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("hubcast-lock-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// A second lock is refused, naming the holder's pid; once the first is closed, it is taken.
    @Test func aHeldStoreIsRefusedAndAReleasedOneTaken() throws {
        let folder = try folder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let first = try StoreLock(folder: folder)
        #expect { try StoreLock(folder: folder) } throws: { error in
            guard let error = error as? ConnectorError, error.code == .storeInUse else { return false }
            return "\(error)".contains("pid \(getpid())")
        }
        first.close()
        let second = try StoreLock(folder: folder)
        second.close()
    }

    /// A lock that another holder gives up within the wait is taken rather than refused (a child
    /// process being started keeps the holder's file description for a moment after it closed it).
    @Test func aLockReleasedDuringTheWaitIsTaken() throws {
        let folder = try folder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let held = open(URL(fileURLWithPath: folder).appendingPathComponent("connector.lock").path, O_RDWR | O_CREAT, 0o644)
        try #require(held >= 0 && flock(held, LOCK_EX | LOCK_NB) == 0)
        // Released by a thread of its own 100 ms from now, well within the lock's one-second wait.
        Thread.detachNewThread {
            usleep(100_000)
            close(held)
        }
        let lock = try StoreLock(folder: folder)
        lock.close()
    }

    /// A second connector on the same store (a restart overlapping the old process, two terminals)
    /// refuses to start (the store is in use), or duplicates stay within what was in flight (nothing
    /// stopped it: both applied the input from the same checkpoint and sent the same outbox rows, so
    /// far more than the in-flight window arrived twice).
    @Test func twoConnectorsOnOneStoreDoNotSendEverythingTwice() async throws {
        try await Fixture.with { fixture in
            let input = try fixture.writeUpdates(3000, profiles: 600)
            let expected = try Fixture.expected(fixture.dryRun(input))
            let first = try fixture.connector { $0.window = 100 }
            let second = try fixture.connector { $0.window = 100 }
            func refuses(_ connector: Connector) async -> Bool {
                do {
                    _ = try await connector.run(input: input)
                    return false
                } catch {
                    return true
                }
            }
            async let a = refuses(first)
            async let b = refuses(second)
            let (refusedA, refusedB) = await (a, b)
            let refused = refusedA || refusedB
            let duplicates = fixture.receivedEvents().count - expected.count
            #expect(refused || duplicates <= 2 * 100, "\(duplicates) duplicates of \(expected.count) exports")
        }
    }
}
