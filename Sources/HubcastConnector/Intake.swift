// Hubcast — intake: uploads, backfill and profile updates into the store and the outbox.

import Foundation
import Logging
import OrderedCollections
import ProfileExport

/// Applies audience uploads, the backfill of newly mapped audiences (at a rate) and the updates of
/// the input, each batch committed together with the exports it made (the outbox rows), on a thread
/// of its own: the engine and the store are used by nothing else while it runs. Pauses while the
/// outbox is full.
final class Intake: @unchecked Sendable {
    // @unchecked: run by one thread; the fields read afterwards (`error`, `summary`, `uploads`) are
    // read only once that thread has finished.
    private let engine: ProfileEngine
    private let store: SQLiteProfileStore
    private let delivery: DeliveryStore
    private let options: ConnectorOptions
    private let control: ConnectorControl
    private let gate: OutboxGate
    private let live: LiveStats
    private let logger: Logger
    private let reader: LineReader?
    private let wake: @Sendable () -> Void
    private(set) var error: ConnectorError?
    private(set) var summary = RunSummary()
    private(set) var uploads: [UploadReport] = []

    init(
        engine: ProfileEngine, store: SQLiteProfileStore, delivery: DeliveryStore, reader: LineReader?, options: ConnectorOptions,
        control: ConnectorControl, gate: OutboxGate, live: LiveStats, logger: Logger, wake: @escaping @Sendable () -> Void
    ) {
        self.engine = engine
        self.store = store
        self.delivery = delivery
        self.reader = reader
        self.options = options
        self.control = control
        self.gate = gate
        self.live = live
        self.logger = logger
        self.wake = wake
    }

    /// Runs to the end of the input (and of the backfill), or until stopped; an error stops the
    /// whole connector.
    func run() {
        do {
            try work()
        } catch {
            self.error = error
            logger.error("intake stopped: \(error)")
            control.stop()
        }
        control.finishIntake()
        wake()
    }

    private func work() throws(ConnectorError) {
        try convert {
            // As `hubcast run --dry-run`: the backfill's candidates are the profiles that qualified
            // before this run; uploads and updates come after.
            var jobs = try startBackfill()
            try applyUploads()
            var stream: ExportStream?
            if let opened = reader {
                opened.waitsForLineEnd = options.follow && opened.isRegularFile
                let rejects = try RejectsFile(
                    path: URL(fileURLWithPath: engine.configuration.store).appendingPathComponent("rejects.jsonl").path,
                    maxBytes: options.maxRejectsBytes)
                let checkpoint = opened.checkpointName
                let store = self.store, delivery = self.delivery
                stream = ExportStream(
                    engine: engine, reader: opened, batchSize: options.batchSize, rejects: rejects, checkpoint: checkpoint,
                    onBatch: { items throws(ProfileExportError) in
                        try store.inBatch { db in try delivery.enqueue(items, in: db, at: Date().timeIntervalSince1970) }
                    },
                    onReject: { [logger] line, error in logger.warning("\(opened.source == "-" ? "stdin" : opened.source), line \(line): \(error)") })
            }
            var inputDone = stream == nil
            let chunk = max(1, min(256, Int(options.backfillRate / 20)))
            var allowance = 0.0
            var lastRefill = ContinuousClock.now
            while !control.isStopping {
                if gate.waitForRoom(limit: options.outboxLimit) { live.update { $0.intakePauses += 1 } }
                if control.isStopping { break }
                var worked = false
                if !jobs.isEmpty {
                    let now = ContinuousClock.now
                    allowance = min(Double(chunk * 2), allowance + options.backfillRate * (now - lastRefill).seconds)
                    lastRefill = now
                    if allowance >= 1 {
                        let count = min(chunk, Int(allowance))
                        allowance -= Double(count)
                        try backfill(&jobs, count: count)
                        worked = true
                    }
                }
                if !inputDone, let stream, let reader {
                    // Live input is waited for briefly, so that stopping and the backfill go on.
                    if reader.isRegularFile || reader.waitForInput(timeout: jobs.isEmpty ? 0.2 : 0) {
                        if let items = try stream.nextBatch() {
                            committed(items)
                            worked = true
                            let summary = stream.summary
                            live.update {
                                $0.updatesRead = summary.updatesRead
                                $0.updatesApplied = summary.updatesApplied
                                $0.updatesRejected = summary.rejected
                            }
                        } else if options.follow && reader.isRegularFile {
                            stream.resume()
                            if !worked && jobs.isEmpty { Thread.sleep(forTimeInterval: 0.2) }
                        } else {
                            inputDone = true
                        }
                    }
                }
                if inputDone && jobs.isEmpty { break }
                if !worked && !jobs.isEmpty && inputDone {
                    // At most 0.2 s at a time, so that stopping is not held up by a low rate.
                    Thread.sleep(forTimeInterval: min(0.2, max(0.001, (1 - allowance) / options.backfillRate)))
                }
            }
            if let stream { summary = stream.summary }
        }
    }

    /// Counts committed outbox rows and wakes the dispatchers.
    private func committed(_ items: [ExportItem]) {
        guard !items.isEmpty else { return }
        gate.add(items.count)
        let depth = gate.current
        live.update {
            $0.outboxDepth = depth
            $0.outboxPeak = max($0.outboxPeak, depth)
            for item in items { $0.dataflows[item.dataflow, default: .init()].counters.exported += 1 }
        }
        wake()
    }

    private func applyUploads() throws {
        let (reports, items) = try store.batch { () throws(ProfileExportError) in
            let result = try engine.applyChangedUploads()
            try store.inBatch { db in try delivery.enqueue(result.items, in: db, at: Date().timeIntervalSince1970) }
            return result
        }
        uploads = reports
        for report in reports {
            logger.notice("\(report.summary)")
        }
        committed(items)
    }

    /// One dataflow's backfill still to do: the candidates' keys, in key order.
    private struct BackfillJob {
        var dataflow: String
        var audiences: [String]
        var keys: [Int64]
        var position = 0
    }

    /// Records newly mapped audiences as backfills to do (so the mappings are recorded at once, and a
    /// restart resumes a backfill after the last profile done instead of starting again), then lists
    /// the candidates of every backfill not finished.
    private func startBackfill() throws -> [BackfillJob] {
        try store.batch { () throws(ProfileExportError) in
            for (dataflow, audiences) in try engine.newlyMappedAudiences() {
                var all = audiences
                if let (pending, _) = try progress(of: dataflow) { all = pending + audiences.filter { !pending.contains($0) } }
                try store.setValue(all.joined(separator: ",") + "|0", named: "backfill.\(dataflow)")
            }
            try engine.recordMappings()
        }
        var jobs: [BackfillJob] = []
        for dataflow in engine.configuration.dataflows {
            guard let (audiences, after) = try progress(of: dataflow.id) else { continue }
            let keys = try engine.backfillCandidates(audiences: audiences).filter { $0 > after }
            if keys.isEmpty {
                try store.setValue(nil, named: "backfill.\(dataflow.id)")
                continue
            }
            logger.notice("backfill of \(dataflow.id): \(keys.count) profiles already qualified for \(audiences.joined(separator: ", "))")
            jobs.append(BackfillJob(dataflow: dataflow.id, audiences: audiences, keys: keys))
            live.update { $0.backfill[dataflow.id] = .init(done: 0, total: keys.count) }
        }
        return jobs
    }

    private func progress(of dataflow: String) throws(ProfileExportError) -> (audiences: [String], after: Int64)? {
        guard let value = try store.value(named: "backfill.\(dataflow)") else { return nil }
        let parts = value.split(separator: "|", omittingEmptySubsequences: false)
        guard parts.count == 2, let after = Int64(parts[1]) else { return nil }
        return (parts[0].split(separator: ",").map(String.init), after)
    }

    /// Exports the next `count` backfill candidates, committed with the job's progress.
    private func backfill(_ jobs: inout [BackfillJob], count: Int) throws {
        var job = jobs[0]
        let end = min(job.keys.count, job.position + count)
        let keys = job.keys[job.position..<end]
        let items = try store.batch { () throws(ProfileExportError) -> [ExportItem] in
            var items: [ExportItem] = []
            for key in keys {
                if let item = try engine.backfillExport(profileKey: key, dataflowId: job.dataflow, audiences: job.audiences) { items.append(item) }
            }
            let done = end == job.keys.count
            try store.setValue(done ? nil : job.audiences.joined(separator: ",") + "|\(keys.last!)", named: "backfill.\(job.dataflow)")
            try store.inBatch { db in try delivery.enqueue(items, in: db, at: Date().timeIntervalSince1970) }
            return items
        }
        job.position = end
        committed(items)
        live.update { $0.backfill[job.dataflow, default: .init()].done = end }
        if end == job.keys.count {
            logger.notice("backfill of \(job.dataflow) done: \(job.keys.count) profiles")
            jobs.removeFirst()
        } else {
            jobs[0] = job
        }
    }

    private func convert(_ body: () throws -> Void) throws(ConnectorError) {
        do {
            try body()
        } catch let error as ConnectorError {
            throw error
        } catch let error as ProfileExportError {
            throw ConnectorError(error.code == .store ? .store : .input, "\(error)")
        } catch {
            throw ConnectorError(.store, "\(error)")
        }
    }
}

extension Duration {
    /// The duration in seconds.
    var seconds: Double { self / .seconds(1) }
}
