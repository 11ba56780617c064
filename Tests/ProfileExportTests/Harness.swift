import Foundation
@testable import ProfileExport

/// A configuration and an engine over a store, fed JSON lines.
struct Harness {
    let engine: ProfileEngine

    init(_ yaml: String, store: any ProfileStore = MemoryProfileStore(), folder: String = ".") throws {
        let configuration = try ExportConfiguration.parse(yaml: yaml, folder: folder)
        engine = ProfileEngine(configuration: configuration, store: store)
    }

    @discardableResult
    func apply(_ line: String) throws -> [ExportItem] {
        try engine.store.batch { () throws(ProfileExportError) in
            try engine.apply(try ProfileUpdate(jsonLine: line), receivedAt: Timestamp(seconds: 0))
        }
    }

    func profile(_ id: String) throws -> Profile? {
        guard let key = try engine.store.key(profileId: id) else { return nil }
        return try engine.store.profile(key: key)
    }
}

/// Compact JSON in our writer's form, from any JSON text (keeps member order).
func compact(_ json: String) throws -> String {
    var writer = JSONWriter()
    writer.value(try JSONParser.parse(json))
    return writer.text
}

let destinationsYAML = """
    destinations:
      - id: hub
        name: Premium customers
        connectionString: "Endpoint=sb://example.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=c2VjcmV0;EntityPath=profiles"
    """

/// A fresh folder under the system's temporary directory, removed when the test process exits.
func temporaryFolder(_ name: String = #function) -> String {
    let folder = FileManager.default.temporaryDirectory
        .appendingPathComponent("hubcast-tests-\(UUID().uuidString.prefix(8))-\(name.prefix(20).filter(\.isLetter))").path
    try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    TemporaryFolders.shared.add(folder)
    return folder
}

/// The folders tests made, removed at exit (a test's folder may be read until its last line).
final class TemporaryFolders: @unchecked Sendable {
    static let shared: TemporaryFolders = {
        atexit { TemporaryFolders.shared.removeAll() }
        return TemporaryFolders()
    }()

    private let lock = NSLock()
    private var folders: [String] = []

    func add(_ folder: String) { lock.withLock { folders.append(folder) } }

    func removeAll() {
        for folder in lock.withLock({ folders }) { try? FileManager.default.removeItem(atPath: folder) }
    }
}
