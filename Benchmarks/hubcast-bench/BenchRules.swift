// Hubcast — `hubcast-bench rules`: the rules engine's update rate, in memory and with the durable store.

import ArgumentParser
import Foundation
import OrderedCollections
import ProfileExport

#if canImport(Glibc)
import Glibc
#endif

struct BenchRules: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rules",
        abstract: "Updates per second through evaluate + decide + payload, on one core, in memory and with SQLite.",
        discussion: """
            Loads --profiles profiles (2 identities, 9 attributes each), then applies --updates updates to \
            random profiles (2–3 attribute writes each, mapped and unmapped) with 20 rule audiences and 2 \
            dataflows. Updates are built before the clock starts; the rate counts prefetch() and apply() \
            alone (evaluate all rules, decide both dataflows, build payloads, store the profile; each group \
            of 16 updates' profiles read ahead together, as `hubcast run` does), in store batches of \
            --batch. Each store runs in a child process so its peak RSS is its own. A second table gives \
            the cost of parsing a JSON line into an update and, for SQLite, the baseline: SQLite alone \
            doing each update's storage work (read a record of the store's mean size by its key, checking \
            its profile id, as the store finds the ids it knows; write it back changed) over as many profiles, in the same batches, with the store's settings.
            """
    )

    @Option(help: "Profiles to load first.") var profiles = 1_000_000
    @Option(help: "Updates to apply after loading.") var updates = 1_000_000
    @Option(help: "memory, sqlite, or both (each in its own child process).") var store = "both"
    @Option(help: "Updates per store batch (one commit each).") var batch = 1000
    @Option(help: "Folder for the SQLite store (default: a fresh temporary folder).") var folder: String?
    @Option(help: "The SQLite store's page cache in MiB (the configuration's storeCacheMiB).")
    var cacheMib = SQLiteProfileStore.defaultCacheMiB
    @Option(
        help:
            "Update mix: 'exports' (most writes hit mapped or rule attributes; ~1.2 exports per update) or 'typical' (most writes are behavioural, unmapped attributes)."
    )
    var mix = "exports"
    @Flag(help: .hidden) var rowsOnly = false

    func validate() throws {
        guard profiles > 0, updates > 0, batch > 0, ["memory", "sqlite", "both"].contains(store), ["exports", "typical"].contains(mix) else {
            throw ValidationError(
                "--profiles, --updates and --batch must be positive; --store is memory, sqlite or both; --mix is exports or typical")
        }
        guard SQLiteProfileStore.cacheMiBRange.contains(cacheMib) else {
            throw ValidationError(
                "--cache-mib must be from \(SQLiteProfileStore.cacheMiBRange.lowerBound) to \(SQLiteProfileStore.cacheMiBRange.upperBound)")
        }
    }

    func run() async throws {
        if store == "both" {
            var lines: [String] = []
            for kind in ["memory", "sqlite"] {
                let child = try ChildProcess(
                    executablePath(),
                    [
                        "rules", "--store", kind, "--profiles", "\(profiles)",
                        "--updates", "\(updates)", "--batch", "\(batch)", "--mix", mix,
                        "--cache-mib", "\(cacheMib)", "--rows-only",
                    ])
                child.closeInput()
                while let line = child.readLine() { if line.hasPrefix("|") { lines.append(line) } }
                let result = child.wait()
                guard result.status == 0 else { throw CommandError("bench rules --store \(kind) failed with status \(result.status)") }
            }
            printTable(lines)
            return
        }
        let lines = try measure()
        if rowsOnly {
            for line in lines { print(line) }
        } else {
            printTable(lines)
        }
    }

    private func printTable(_ lines: [String]) {
        print("| store | profiles | updates | updates/s | µs/update | exports | load profiles/s | peak RSS MiB | store file MiB |")
        print("|---|---|---|---|---|---|---|---|---|")
        for line in lines where !line.hasPrefix("| parse") && !line.hasPrefix("| SQLite alone") { print(line) }
        // Each store's run measures parsing: its first row is enough. The SQLite run adds its baseline.
        let steps = lines.filter { $0.hasPrefix("| parse") }.prefix(1) + lines.filter { $0.hasPrefix("| SQLite alone") }
        if !steps.isEmpty {
            print("\n| step | per second | µs each |\n|---|---|---|")
            for line in steps { print(line) }
        }
    }

    private func measure() throws -> [String] {
        let configuration = try ExportConfiguration.parse(yaml: Self.yaml)
        var path: String?
        let profileStore: any ProfileStore
        var sqliteStore: SQLiteProfileStore?
        var temporary: String?
        defer { if let temporary { try? FileManager.default.removeItem(atPath: temporary) } }
        if store == "sqlite" {
            let folder = self.folder ?? FileManager.default.temporaryDirectory.appendingPathComponent("hubcast-bench-\(getpid())").path
            if self.folder == nil { temporary = folder }
            try? FileManager.default.removeItem(atPath: folder)
            let sqlite = try SQLiteProfileStore(folder: folder, cacheMiB: cacheMib)
            path = sqlite.path
            profileStore = sqlite
            sqliteStore = sqlite
        } else {
            profileStore = MemoryProfileStore()
        }
        let engine = ProfileEngine(configuration: configuration, store: profileStore)
        var random = SplitMix(seed: 42)
        let time = Timestamp(seconds: 1_764_000_000)

        // Load.
        let loadStart = ContinuousClock.now
        var index = 0
        while index < profiles {
            let end = min(profiles, index + batch)
            let chunk = (index..<end).map { Self.newProfile($0, &random) }
            try profileStore.batch { () throws(ProfileExportError) in
                for update in chunk { _ = try engine.apply(update, receivedAt: time) }
            }
            index = end
            if index % 200_000 == 0 { FileHandleStderr.write("\(store): loaded \(index) profiles\n") }
        }
        let loadRate = Double(profiles) / seconds(ContinuousClock.now - loadStart)

        // Updates: built per chunk before the clock runs; only prefetch() and apply() are timed.
        var elapsed = Duration.zero
        var exports = 0
        var applied = 0
        var samples: [ProfileUpdate] = []
        while applied < updates {
            let count = min(batch, updates - applied)
            let chunk = (0..<count).map { _ in Self.randomUpdate(profiles: profiles, typical: mix == "typical", &random) }
            if samples.count < 10_000 { samples += chunk.prefix(10_000 - samples.count) }
            let start = ContinuousClock.now
            try profileStore.batch { () throws(ProfileExportError) in
                // As `ExportStream` does: each group's profiles read ahead together.
                for first in stride(from: 0, to: chunk.count, by: ProfileEngine.prefetchGroup) {
                    let group = chunk[first..<min(chunk.count, first + ProfileEngine.prefetchGroup)]
                    engine.prefetch(group)
                    for update in group { exports += try engine.apply(update, receivedAt: time).count }
                }
            }
            elapsed += ContinuousClock.now - start
            withExtendedLifetime(chunk) {}  // the updates are freed outside the timed part
            applied += count
        }
        let rate = Double(updates) / seconds(elapsed)
        let rss = Double(selfUsage().maxRSSKiB) / 1024
        let fileSize = path.flatMap { try? FileManager.default.attributesOfItem(atPath: $0)[.size] as? Int } ?? 0
        var lines = [
            "| \(store == "sqlite" ? "SQLite (WAL, \(cacheMib) MiB cache)" : "memory"), \(mix) mix | \(profiles) | \(updates) | \(Int(rate)) | "
                + "\(format2f(1e6 / rate)) | \(exports) | \(Int(loadRate)) | \(Int(rss)) | \(path == nil ? "–" : "\(fileSize >> 20)") |"
        ]

        // Parsing JSON lines into updates.
        let jsonLines = samples.map(Self.jsonLine)
        let parseStart = ContinuousClock.now
        var parsed = 0
        for _ in 0..<5 {
            for line in jsonLines { if (try? ProfileUpdate(jsonLine: line)) != nil { parsed += 1 } }
        }
        let parseRate = Double(parsed) / seconds(ContinuousClock.now - parseStart)
        lines.append("| parse JSON line → update | \(Int(parseRate)) | \(format2f(1e6 / parseRate)) |")

        // The baseline for the durable store: SQLite alone doing each update's storage work.
        if let sqliteStore, let folder = path.map({ URL(fileURLWithPath: $0).deletingLastPathComponent().path + "-ceiling" }) {
            defer { try? FileManager.default.removeItem(atPath: folder) }
            try? FileManager.default.removeItem(atPath: folder)
            let recordBytes = try sqliteStore.meanRecordBytes()
            var order = SplitMix(seed: 7)
            let ceiling =
                Double(updates)
                / seconds(
                    try SQLiteProfileStore.rewriteCeiling(
                        folder: folder, profiles: profiles, recordBytes: recordBytes,
                        order: (0..<updates).map { _ in order.next(profiles) }, batch: batch, cacheMiB: cacheMib))
            lines.append("| SQLite alone: read a \(recordBytes)-byte record by key, write it back | \(Int(ceiling)) | \(format2f(1e6 / ceiling)) |")
        }
        return lines
    }

    static let firstNames = [
        "John", "Anna", "Maria", "Peter", "Sofia", "Jean", "Lukas", "Emma", "Noah", "Mia",
        "Liam", "Olivia", "Paul", "Lea", "Max", "Clara", "Tom", "Nina", "Ben", "Eva",
    ]
    static let lastNames = ["Miller", "Martin", "Meyer", "Dupont", "Schmidt", "Rossi", "Garcia", "Smith", "Novak", "Berg"]
    static let countries = ["FR", "DE", "ES", "IT", "US", "GB", "NL", "PL", "SE", "PT"]
    static let tiers = ["bronze", "silver", "gold", "platinum"]

    static func newProfile(_ index: Int, _ random: inout SplitMix) -> ProfileUpdate {
        var update = ProfileUpdate(profileId: "p\(index)")
        update.identities = [Identity(namespace: "ecid", id: "e\(index)"), Identity(namespace: "email_lc_sha256", id: "h\(index)")]
        let first = firstNames[random.next(firstNames.count)]
        update.attributes = [
            "person": .object([
                "name": .object(["firstName": .string(first), "lastName": .string(lastNames[random.next(lastNames.count)])]),
                "age": .int(Int64(18 + random.next(63))),
            ]),
            "personalEmail": .object(["address": .string("\(first.lowercased()).\(index)@\(random.next(4) == 0 ? "acme.com" : "example.org")")]),
            "loyalty": .object(["tier": .string(tiers[random.next(4)]), "points": .int(Int64(random.next(10_000)))]),
            "homeAddress": .object(["country": .string(countries[random.next(countries.count)])]),
            "commerce": .object(["lastPurchase": .string(date(random.next(900)))]),
            "consent": .object(["email": .bool(random.next(2) == 0)]),
        ]
        return update
    }

    static func date(_ daysAfter2024: Int) -> String {
        Timestamp(seconds: 1_704_067_200 + Int64(daysAfter2024) * 86_400).description
    }

    static func randomUpdate(profiles: Int, typical: Bool, _ random: inout SplitMix) -> ProfileUpdate {
        var update = ProfileUpdate(profileId: "p\(random.next(profiles))")
        var attributes = JSONObject()
        for _ in 0..<(2 + random.next(2)) {
            if typical, random.next(10) < 8 {
                switch random.next(4) {
                case 0: attributes["web"] = .object(["visits": .int(Int64(random.next(1000))), "lastPage": .string("/p/\(random.next(500))")])
                case 1: attributes["device"] = .object(["os": .string(random.next(2) == 0 ? "ios" : "android")])
                case 2: attributes["session"] = .object(["count": .int(Int64(random.next(100)))])
                default: attributes["cart"] = .object(["value": .double(Double(random.next(50_000)) / 100)])
                }
                continue
            }
            switch random.next(6) {
            case 0: attributes["loyalty", default: .object([:])] = merged(attributes["loyalty"], "points", .int(Int64(random.next(10_000))))
            case 1: attributes["loyalty", default: .object([:])] = merged(attributes["loyalty"], "tier", .string(tiers[random.next(4)]))
            case 2: attributes["homeAddress"] = .object(["country": .string(countries[random.next(countries.count)])])
            case 3: attributes["commerce"] = .object(["lastPurchase": .string(date(random.next(900)))])
            case 4: attributes["web"] = .object(["visits": .int(Int64(random.next(1000)))])
            default: attributes["consent"] = .object(["email": .bool(random.next(2) == 0)])
            }
        }
        update.attributes = attributes
        return update
    }

    private static func merged(_ value: JSONValue?, _ key: String, _ member: JSONValue) -> JSONValue {
        var object = value?.object ?? [:]
        object[key] = member
        return .object(object)
    }

    static func jsonLine(_ update: ProfileUpdate) -> String {
        var writer = JSONWriter()
        writer.beginObject()
        if let profileId = update.profileId { writer.key("profileId"); writer.value(profileId) }
        writer.key("timestamp")
        writer.value("2026-11-22T10:00:00Z")
        writer.key("attributes")
        writer.value(.object(update.attributes))
        writer.endObject()
        return writer.text
    }

    static let yaml = """
        destinations:
          - {id: hub-a, connectionString: "Endpoint=sb://localhost/;SharedAccessKeyName=k;SharedAccessKey=a2V5;EntityPath=a"}
          - {id: hub-b, connectionString: "Endpoint=sb://localhost/;SharedAccessKeyName=k;SharedAccessKey=a2V5;EntityPath=b", includeSegmentNames: true, includeSegmentTimestamps: true}
        audiences:
          - {id: a01, name: Johns, rule: 'person.name.firstName = "John"', createdAt: 2026-01-01T00:00:00Z, updatedAt: 2026-01-02T00:00:00Z}
          - {id: a02, rule: 'loyalty.tier = "gold"'}
          - {id: a03, rule: 'loyalty.points >= 5000'}
          - {id: a04, rule: 'homeAddress.country in ["FR", "DE", "ES"]'}
          - {id: a05, rule: 'person.age < 30'}
          - {id: a06, rule: 'person.age >= 65'}
          - {id: a07, rule: 'consent.email = true and loyalty.tier != "bronze"'}
          - {id: a08, rule: 'personalEmail.address contains "@acme."'}
          - {id: a09, rule: 'person.name.lastName startsWith "M"'}
          - {id: a10, rule: 'commerce.lastPurchase >= date("2026-01-01")'}
          - {id: a11, rule: 'loyalty.points > 8000 or loyalty.tier = "platinum"'}
          - {id: a12, rule: 'homeAddress.country = "US" and person.age >= 21'}
          - {id: a13, rule: 'not consent.email = true'}
          - {id: a14, rule: 'person.name.firstName in ["Anna", "Maria", "Sofia"]'}
          - {id: a15, rule: 'loyalty.points < 1000'}
          - {id: a16, rule: 'commerce.lastPurchase < date("2024-06-01")'}
          - {id: a17, rule: 'homeAddress.country = "FR" and loyalty.tier in ["gold", "platinum"]'}
          - {id: a18, rule: 'person.age >= 40 and person.age < 50'}
          - {id: a19, rule: 'personalEmail.address exists and not web.visits exists'}
          - {id: a20, rule: 'loyalty.points >= 2500 and loyalty.points < 5000', mergePolicy: other}
        dataflows:
          - id: flow-a
            destination: hub-a
            audiences: [a01, a02, a03, a04, a05]
            attributes: [person.name.firstName, person.name.lastName, personalEmail.address, loyalty.tier]
            partitionKey: ecid
          - id: flow-b
            destination: hub-b
            audiences: [a06, a07, a08, a09, a10]
            attributes: [homeAddress.country, loyalty.points, person.age]
        """
}

/// A small deterministic random generator (SplitMix64), so every run applies the same updates.
struct SplitMix {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next(_ bound: Int) -> Int {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Int((z ^ (z >> 31)) % UInt64(bound))
    }
}
