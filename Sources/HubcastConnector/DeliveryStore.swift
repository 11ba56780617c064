// Hubcast — the connector's durable tables: outbox, failed exports, counters, status.

import Foundation
import GRDB
public import ProfileExport

/// An export waiting in the outbox.
struct OutboxEntry: Sendable {
    var seq: Int64
    var dataflow: String
    var partitionKey: String
    var profileKey: Int64
    var payload: [UInt8]
    /// When it was committed (seconds since 1970): latency is measured from here.
    var enqueued: Double
    /// Put back by a redrive while a connector ran: not yet counted in the outbox depth intake waits on.
    var redriven = false
}

/// An export that was not accepted after its retries, or was refused for good.
public struct FailedExport: Sendable, Hashable {
    public var id: Int64
    public var dataflow: String
    public var destination: String
    public var partitionKey: String
    public var profileKey: Int64
    /// The triggers, as the JSON array `hubcast run --dry-run` prints.
    public var triggers: String
    public var payload: [UInt8]
    /// How many times it was sent.
    public var attempts: Int
    /// The AMQP condition (or error kind) of the last failure, for example `amqp:link:message-size-exceeded`.
    public var condition: String
    /// The last failure in words.
    public var reason: String
    /// When it entered the outbox and when it failed (seconds since 1970).
    public var enqueuedAt: Double
    public var failedAt: Double
}

/// Per dataflow, what the connector has done, over every run (kept in the store).
public struct DeliveryCounters: Sendable, Hashable, Codable {
    /// Exports committed to the outbox.
    public var exported = 0
    /// Exports the hub settled as `accepted`.
    public var acknowledged = 0
    /// Sends beyond each export's first.
    public var retried = 0
    /// Exports moved to the failed-exports store (a redrive does not undo it: a redriven export that
    /// is then accepted counts as acknowledged as well).
    public var failed = 0
    /// Exports dropped because a later one of the same profile replaced them (coalescing).
    public var skipped = 0

    public init() {}

    /// Adds `other`'s counts to these.
    mutating func add(_ other: DeliveryCounters) {
        exported += other.exported
        acknowledged += other.acknowledged
        retried += other.retried
        failed += other.failed
        skipped += other.skipped
    }
}

/// The connector's tables in the profile store's SQLite file: the outbox (exports committed with
/// the updates that caused them, deleted when acknowledged), the failed exports, per-dataflow
/// counters and the last status snapshot. Safe to use from any thread (GRDB serializes access).
public final class DeliveryStore: Sendable {
    let queue: DatabaseQueue

    /// Uses the tables in `store`'s file, creating them when needed. On a store opened read-only
    /// (``SQLiteProfileStore/isReadOnly``) nothing is written: tables no connector made yet (a store
    /// only dry runs or `explain` used) read as empty.
    public init(store: SQLiteProfileStore) throws(ConnectorError) {
        self.queue = store.databaseQueue
        if store.isReadOnly {
            try Self.attempt("cannot read the connector's tables") { try Self.standInForMissingTables(self.queue) }
            return
        }
        try Self.attempt("cannot create the connector's tables") {
            try self.queue.write { db in
                // AUTOINCREMENT: a sequence number is never reused, so a dispatcher reading on
                // from the last one it saw misses no row, even after the outbox was empty. No index
                // on the destination: a dispatcher reads on from its last sequence number, skipping
                // the other destinations' rows, and an index would cost every export two more
                // B-tree writes on the intake's path (BENCHMARKS.md, connector, first round).
                try db.execute(
                    sql: """
                        CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, dataflow TEXT NOT NULL,
                            destination TEXT NOT NULL, partition_key TEXT NOT NULL, profile_key INTEGER NOT NULL,
                            triggers TEXT NOT NULL, payload BLOB NOT NULL, enqueued REAL NOT NULL);
                        CREATE TABLE IF NOT EXISTS failed_exports (id INTEGER PRIMARY KEY AUTOINCREMENT, dataflow TEXT NOT NULL,
                            destination TEXT NOT NULL, partition_key TEXT NOT NULL, profile_key INTEGER NOT NULL,
                            triggers TEXT NOT NULL, payload BLOB NOT NULL, enqueued REAL NOT NULL, attempts INTEGER NOT NULL,
                            condition TEXT NOT NULL, reason TEXT NOT NULL, failed_at REAL NOT NULL);
                        CREATE TABLE IF NOT EXISTS delivery_counters (dataflow TEXT PRIMARY KEY, exported INTEGER NOT NULL,
                            acknowledged INTEGER NOT NULL, retried INTEGER NOT NULL, failed INTEGER NOT NULL,
                            skipped INTEGER NOT NULL) WITHOUT ROWID;
                        CREATE TABLE IF NOT EXISTS connector_status (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
                        DROP INDEX IF EXISTS outbox_by_destination;
                        """)
                if try !db.columns(in: "outbox").contains(where: { $0.name == "redriven" }) {
                    try db.execute(sql: "ALTER TABLE outbox ADD COLUMN redriven INTEGER NOT NULL DEFAULT 0")
                }
            }
        }
    }

    /// On a read-only connection: an empty TEMP table (the connection's own, in memory) for each
    /// connector table the file lacks, so that reading it finds no rows instead of failing.
    private static func standInForMissingTables(_ queue: DatabaseQueue) throws {
        try queue.inDatabase { db in
            let present = Set(try String.fetchAll(db, sql: "SELECT name FROM main.sqlite_master WHERE type = 'table'"))
            let tables = [
                "outbox":
                    "seq INTEGER PRIMARY KEY, dataflow TEXT, destination TEXT, partition_key TEXT, profile_key INTEGER, triggers TEXT, payload BLOB, enqueued REAL, redriven INTEGER",
                "failed_exports":
                    "id INTEGER PRIMARY KEY, dataflow TEXT, destination TEXT, partition_key TEXT, profile_key INTEGER, triggers TEXT, payload BLOB, enqueued REAL, attempts INTEGER, condition TEXT, reason TEXT, failed_at REAL",
                "delivery_counters":
                    "dataflow TEXT PRIMARY KEY, exported INTEGER, acknowledged INTEGER, retried INTEGER, failed INTEGER, skipped INTEGER",
                "connector_status": "name TEXT PRIMARY KEY, value TEXT",
            ]
            for (name, columns) in tables where !present.contains(name) {
                try db.execute(sql: "CREATE TEMP TABLE IF NOT EXISTS \(name) (\(columns))")
            }
        }
    }

    static func attempt<T>(_ what: @autoclosure () -> String, _ body: () throws -> T) throws(ConnectorError) -> T {
        do {
            return try body()
        } catch let error as ConnectorError {
            throw error
        } catch {
            throw ConnectorError(.store, "\(what()): \(error)")
        }
    }

    // MARK: Outbox

    /// Adds exports to the outbox on `db` (the store batch that applied their updates).
    func enqueue(_ items: [ExportItem], in db: Database, at time: Double) throws {
        guard !items.isEmpty else { return }
        let insert = try db.cachedStatement(
            sql: """
                INSERT INTO outbox (dataflow, destination, partition_key, profile_key, triggers, payload, enqueued)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """)
        var perDataflow: [String: Int] = [:]
        var triggers = JSONWriter(capacity: 256)
        for item in items {
            // One row per export, through SQLite's C API (the intake's hottest statement).
            triggers.clear()
            triggers.beginArray()
            for trigger in item.triggers { trigger.write(to: &triggers) }
            triggers.endArray()
            let run = try RawStatement(insert, in: db)
            try run.bind(item.dataflow, at: 1)
            try run.bind(item.destination, at: 2)
            try run.bind(item.partitionKey, at: 3)
            try run.bind(item.profileKey, at: 4)
            try run.bind(utf8: triggers.bytes, at: 5)
            try run.bind(blob: item.payload, at: 6)
            try run.bind(time, at: 7)
            _ = try run.step()
            perDataflow[item.dataflow, default: 0] += 1
        }
        for (dataflow, count) in perDataflow {
            var counters = DeliveryCounters()
            counters.exported = count
            try Self.add(counters, dataflow: dataflow, in: db)
        }
    }

    /// Up to `limit` outbox entries for `destination` after sequence number `after`, oldest first.
    func load(destination: String, after: Int64, limit: Int) async throws(ConnectorError) -> [OutboxEntry] {
        do {
            return try await queue.read { db in
                let rows = try Row.fetchCursor(
                    db.cachedStatement(
                        sql: """
                            SELECT seq, dataflow, partition_key, profile_key, payload, enqueued, redriven FROM outbox
                            WHERE destination = ? AND seq > ? ORDER BY seq LIMIT ?
                            """), arguments: [destination, after, limit])
                var entries: [OutboxEntry] = []
                while let row = try rows.next() {
                    let payload = try row.withUnsafeData(atIndex: 4) { data in data.map { [UInt8]($0) } ?? [] }
                    entries.append(
                        OutboxEntry(
                            seq: row[0], dataflow: row[1], partitionKey: row[2], profileKey: row[3],
                            payload: payload, enqueued: row[5], redriven: row[6]))
                }
                return entries
            }
        } catch {
            throw ConnectorError(.store, "cannot read the outbox: \(error)")
        }
    }

    /// What one wave of sends settled, written in one transaction.
    struct Settlement {
        var acknowledged: [OutboxEntry] = []
        var failed: [(entry: OutboxEntry, attempts: Int, condition: String, reason: String)] = []
        var skipped: [OutboxEntry] = []
        var retried: [String: Int] = [:]

        /// What it adds to each dataflow's counters (the stored ones and the live status's alike).
        var counters: [String: DeliveryCounters] {
            var counters: [String: DeliveryCounters] = [:]
            for entry in acknowledged { counters[entry.dataflow, default: .init()].acknowledged += 1 }
            for entry in skipped { counters[entry.dataflow, default: .init()].skipped += 1 }
            for failure in failed { counters[failure.entry.dataflow, default: .init()].failed += 1 }
            for (dataflow, count) in retried { counters[dataflow, default: .init()].retried += count }
            return counters
        }
    }

    /// Removes what was acknowledged or skipped from the outbox, moves what failed to the failed
    /// exports, and counts it all, in one transaction; returns what it added to each dataflow's counters.
    @discardableResult
    func settle(_ settlement: Settlement) async throws(ConnectorError) -> [String: DeliveryCounters] {
        let now = Date().timeIntervalSince1970
        let counters = settlement.counters
        do {
            try await queue.write { db in
                // The acknowledged and skipped exports, while the intake waits for the writer: one
                // statement per run of consecutive sequence numbers (a wave's are mostly one run),
                // through SQLite's C API.
                let delete = try db.cachedStatement(sql: "DELETE FROM outbox WHERE seq BETWEEN ? AND ?")
                func remove(_ seqs: ClosedRange<Int64>) throws {
                    let run = try RawStatement(delete, in: db)
                    try run.bind(seqs.lowerBound, at: 1)
                    try run.bind(seqs.upperBound, at: 2)
                    _ = try run.step()
                }
                for seqs in Self.runs(of: settlement.acknowledged.map(\.seq) + settlement.skipped.map(\.seq)) { try remove(seqs) }
                for failure in settlement.failed {
                    try db.execute(
                        sql: """
                            INSERT INTO failed_exports (dataflow, destination, partition_key, profile_key, triggers, payload,
                                enqueued, attempts, condition, reason, failed_at)
                            SELECT dataflow, destination, partition_key, profile_key, triggers, payload, enqueued, ?, ?, ?, ?
                            FROM outbox WHERE seq = ?
                            """, arguments: [failure.attempts, failure.condition, failure.reason, now, failure.entry.seq])
                    try remove(failure.entry.seq...failure.entry.seq)
                }
                for (dataflow, added) in counters { try Self.add(added, dataflow: dataflow, in: db) }
            }
        } catch {
            throw ConnectorError(.store, "cannot record deliveries in the outbox: \(error)")
        }
        return counters
    }

    /// `seqs` as runs of consecutive numbers, in order (duplicates fall into their run).
    static func runs(of seqs: [Int64]) -> [ClosedRange<Int64>] {
        var runs: [ClosedRange<Int64>] = []
        for seq in seqs.sorted() {
            if let last = runs.last, seq <= last.upperBound &+ 1 {
                runs[runs.count - 1] = last.lowerBound...max(last.upperBound, seq)
            } else {
                runs.append(seq...seq)
            }
        }
        return runs
    }

    private static func add(_ counters: DeliveryCounters, dataflow: String, in db: Database) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO delivery_counters (dataflow, exported, acknowledged, retried, failed, skipped) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (dataflow) DO UPDATE SET exported = exported + excluded.exported,
                    acknowledged = acknowledged + excluded.acknowledged, retried = retried + excluded.retried,
                    failed = failed + excluded.failed, skipped = skipped + excluded.skipped
                """
        ).execute(arguments: [dataflow, counters.exported, counters.acknowledged, counters.retried, counters.failed, counters.skipped])
    }

    // MARK: Reading

    /// Exports waiting in the outbox, per dataflow.
    public func outboxDepth() throws(ConnectorError) -> [String: Int] {
        try Self.attempt("cannot read the outbox") {
            try queue.read { db in
                var depth: [String: Int] = [:]
                for row in try Row.fetchAll(db, sql: "SELECT dataflow, count(*) FROM outbox GROUP BY dataflow") { depth[row[0]] = row[1] }
                return depth
            }
        }
    }

    /// Exports waiting in the outbox, per destination and dataflow. With `counting`, marks every row
    /// as counted first (at the start of a run: rows redriven before it are in these numbers).
    func outboxDepths(counting: Bool = false) async throws(ConnectorError) -> [(destination: String, dataflow: String, count: Int)] {
        @Sendable func depths(_ db: Database) throws -> [(destination: String, dataflow: String, count: Int)] {
            try Row.fetchAll(db, sql: "SELECT destination, dataflow, count(*) FROM outbox GROUP BY destination, dataflow")
                .map { ($0[0], $0[1], $0[2]) }
        }
        do {
            guard counting else { return try await queue.read(depths) }
            return try await queue.write { db in
                try db.execute(sql: "UPDATE outbox SET redriven = 0 WHERE redriven != 0")
                return try depths(db)
            }
        } catch {
            throw ConnectorError(.store, "cannot read the outbox: \(error)")
        }
    }

    /// The counters per dataflow, over every run.
    public func counters() throws(ConnectorError) -> [String: DeliveryCounters] {
        try Self.attempt("cannot read the delivery counters") {
            try queue.read { db in
                var result: [String: DeliveryCounters] = [:]
                for row in try Row.fetchAll(db, sql: "SELECT dataflow, exported, acknowledged, retried, failed, skipped FROM delivery_counters") {
                    var counters = DeliveryCounters()
                    (counters.exported, counters.acknowledged, counters.retried, counters.failed, counters.skipped) = (
                        row[1], row[2], row[3], row[4], row[5]
                    )
                    result[row[0]] = counters
                }
                return result
            }
        }
    }

    // MARK: Failed exports

    /// Failed exports, oldest first, optionally of one dataflow only.
    public func failedExports(dataflow: String? = nil, limit: Int = .max) throws(ConnectorError) -> [FailedExport] {
        try Self.attempt("cannot read the failed exports") {
            try queue.read { db in
                try Row.fetchAll(
                    db,
                    sql: """
                        SELECT * FROM failed_exports WHERE ?1 IS NULL OR dataflow = ?1 ORDER BY id LIMIT ?2
                        """, arguments: [dataflow, limit]
                ).map(Self.failedExport)
            }
        }
    }

    /// How many failed exports there are, optionally of one dataflow only.
    public func failedCount(dataflow: String? = nil) throws(ConnectorError) -> Int {
        try Self.attempt("cannot read the failed exports") {
            try queue.read { db in
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM failed_exports WHERE ?1 IS NULL OR dataflow = ?1", arguments: [dataflow]) ?? 0
            }
        }
    }

    /// One failed export, or nil.
    public func failedExport(id: Int64) throws(ConnectorError) -> FailedExport? {
        try Self.attempt("cannot read the failed exports") {
            try queue.read { db in try Row.fetchOne(db, sql: "SELECT * FROM failed_exports WHERE id = ?", arguments: [id]).map(Self.failedExport) }
        }
    }

    private static func failedExport(_ row: Row) -> FailedExport {
        FailedExport(
            id: row["id"], dataflow: row["dataflow"], destination: row["destination"], partitionKey: row["partition_key"],
            profileKey: row["profile_key"], triggers: row["triggers"], payload: [UInt8](row["payload"] as Data),
            attempts: row["attempts"], condition: row["condition"], reason: row["reason"],
            enqueuedAt: row["enqueued"], failedAt: row["failed_at"])
    }

    /// Moves failed exports back into the outbox (behind what waits there), to be sent again by the
    /// next or running connector: the given ids (each must exist), or every one of `dataflow` (or
    /// all) when `ids` is nil. Returns how many were moved.
    @discardableResult
    public func redrive(ids: [Int64]?, dataflow: String? = nil) throws(ConnectorError) -> Int {
        try move(ids: ids, dataflow: dataflow, what: "redrive") { db, id in
            try db.execute(
                sql: """
                    INSERT INTO outbox (dataflow, destination, partition_key, profile_key, triggers, payload, enqueued, redriven)
                    SELECT dataflow, destination, partition_key, profile_key, triggers, payload, ?, 1 FROM failed_exports WHERE id = ?
                    """, arguments: [Date().timeIntervalSince1970, id])
        }
    }

    /// Deletes failed exports for good: the given ids (each must exist), or every one of `dataflow`
    /// (or all) when `ids` is nil. Returns how many were deleted.
    @discardableResult
    public func purge(ids: [Int64]?, dataflow: String? = nil) throws(ConnectorError) -> Int {
        try move(ids: ids, dataflow: dataflow, what: "purge") { _, _ in }
    }

    private func move(ids: [Int64]?, dataflow: String?, what: String, _ body: (Database, Int64) throws -> Void) throws(ConnectorError) -> Int {
        try Self.attempt("cannot \(what) failed exports") {
            try queue.write { db in
                let chosen: [Int64]
                if let ids {
                    let known = Set(try Int64.fetchAll(db, sql: "SELECT id FROM failed_exports"))
                    if let missing = ids.first(where: { !known.contains($0) }) {
                        throw ConnectorError(.notFound, "no failed export has id \(missing) (see `hubcast failed list`)")
                    }
                    var seen: Set<Int64> = []
                    chosen = ids.filter { seen.insert($0).inserted }
                } else {
                    chosen = try Int64.fetchAll(
                        db, sql: "SELECT id FROM failed_exports WHERE ?1 IS NULL OR dataflow = ?1 ORDER BY id",
                        arguments: [dataflow])
                }
                for id in chosen {
                    try body(db, id)
                    try db.execute(sql: "DELETE FROM failed_exports WHERE id = ?", arguments: [id])
                }
                return chosen.count
            }
        }
    }

    // MARK: Status

    /// Keeps the running connector's status snapshot (JSON) for `hubcast status`.
    func writeStatus(_ json: String) async throws(ConnectorError) {
        do {
            try await queue.write { db in
                try db.execute(sql: "INSERT OR REPLACE INTO connector_status (name, value) VALUES ('status', ?)", arguments: [json])
            }
        } catch {
            throw ConnectorError(.store, "cannot write the status: \(error)")
        }
    }

    /// The last status snapshot a connector wrote (JSON), or nil.
    public func statusSnapshot() throws(ConnectorError) -> String? {
        try Self.attempt("cannot read the status") {
            try queue.read { db in try String.fetchOne(db, sql: "SELECT value FROM connector_status WHERE name = 'status'") }
        }
    }
}
