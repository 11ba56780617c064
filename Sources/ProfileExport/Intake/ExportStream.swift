// Hubcast — the pull interface: export items produced on demand from profile updates.

public import OrderedCollections

/// What a run has done so far.
public struct RunSummary: Sendable, Hashable {
    public var updatesRead = 0
    public var updatesApplied = 0
    public var rejected = 0
    /// Rejections by reason kind (the error code), for the summary line.
    public var rejectedByKind: OrderedDictionary<String, Int> = [:]
    /// Exports per dataflow, in configuration order.
    public var exports: OrderedDictionary<String, Int> = [:]

    public init() {}
}

/// An async sequence of ``ExportItem``s made by applying updates read from a ``LineReader``.
///
/// Work happens only when the consumer asks: ``next()`` reads and applies up to `batchSize`
/// updates in one store batch (one durable commit) and hands out their exports one at a time, so
/// the consumer's pace bounds the work in progress. A malformed update, an identity conflict or a
/// line longer than the reader's ``LineReader/maxLineBytes`` is reported with its line number,
/// counted, written to the rejects file and skipped; nothing else stops. A rejects file that cannot
/// be written throws once the batch is committed (its exports are handed out by the next call). A
/// batch that fails to commit (a store error, or `onBatch` throwing) throws from ``nextItem()``;
/// with the durable store nothing of it happened, none of its exports is handed out, and the next
/// call applies the same lines again (the memory store cannot roll back). With a
/// `checkpoint` name, the number of the last committed line is kept in the store in
/// the same batch, and a later stream over the same input skips the lines already applied.
public final class ExportStream: AsyncSequence, AsyncIteratorProtocol {
    public typealias Element = ExportItem

    private let engine: ProfileEngine
    private let reader: LineReader
    private let batchSize: Int
    private let rejects: RejectsFile?
    private let checkpoint: String?
    private let onBatch: (([ExportItem]) throws(ProfileExportError) -> Void)?
    private let onReject: ((Int, ProfileExportError) -> Void)?
    private var pending: [ExportItem] = []
    /// The lines of a batch that failed to commit, to apply again.
    private var retry: [ParsedLine] = []
    /// Reads and parses a regular file ahead, on a thread of its own.
    private var prefetcher: LinePrefetcher?
    private var pendingIndex = 0
    private var skipThrough = 0
    private var started = false
    private var exhausted = false
    /// Counters so far.
    public private(set) var summary = RunSummary()

    /// - Parameters:
    ///   - checkpoint: a store name for the input's progress (for files; `nil` for stdin).
    ///   - onBatch: runs inside each batch, before it commits, with the batch's exports (the
    ///     connector writes its outbox here, so updates and exports commit together).
    ///   - onReject: told about each rejected line (for logging).
    public init(
        engine: ProfileEngine, reader: LineReader, batchSize: Int = 256, rejects: RejectsFile? = nil,
        checkpoint: String? = nil, onBatch: (([ExportItem]) throws(ProfileExportError) -> Void)? = nil,
        onReject: ((Int, ProfileExportError) -> Void)? = nil
    ) {
        self.engine = engine
        self.reader = reader
        self.batchSize = Swift.max(1, batchSize)
        self.rejects = rejects
        self.checkpoint = checkpoint
        self.onBatch = onBatch
        self.onReject = onReject
        for dataflow in engine.configuration.dataflows { summary.exports[dataflow.id] = 0 }
    }

    deinit { prefetcher?.stop() }

    public func makeAsyncIterator() -> ExportStream { self }

    public func next() async throws -> ExportItem? {
        try nextItem()
    }

    /// The next export, applying more updates when needed; `nil` at the end of the input.
    public func nextItem() throws(ProfileExportError) -> ExportItem? {
        while pendingIndex >= pending.count {
            if exhausted && retry.isEmpty { return nil }
            try fill()
        }
        defer { pendingIndex += 1 }
        return pending[pendingIndex]
    }

    /// The exports of the next batch of updates (applied and committed together), or of what is left
    /// of the current one; empty when a batch made none; `nil` at the end of the input. Lets a
    /// consumer work batch by batch instead of item by item.
    public func nextBatch() throws(ProfileExportError) -> [ExportItem]? {
        if pendingIndex < pending.count {
            defer { pendingIndex = pending.count }
            return Array(pending[pendingIndex...])
        }
        if exhausted && retry.isEmpty { return nil }
        try fill()
        pendingIndex = pending.count
        return pending
    }

    /// After the end of a growing file: reads on from where it stopped (`--follow`). Returns false,
    /// and starts nothing (no read-ahead thread), while the file has not grown since its end.
    @discardableResult
    public func resume() -> Bool {
        guard exhausted else { return true }
        guard reader.hasUnreadBytes else { return false }
        exhausted = false
        reader.resume()
        prefetcher?.start()
        return true
    }

    private func fill() throws(ProfileExportError) {
        pending.removeAll(keepingCapacity: true)
        pendingIndex = 0
        if !started {
            // Started only once the checkpoint is read: a failed read is tried again, never skipped.
            if let checkpoint, let value = try engine.store.value(named: checkpoint), let line = Int(value) { skipThrough = line }
            started = true
            if reader.isRegularFile {
                prefetcher = LinePrefetcher(reader: reader, batchSize: batchSize, skipThrough: skipThrough)
                prefetcher?.start()
            }
        }
        // The lines of this batch: those of a batch that failed to commit come first, again.
        var lines = retry
        retry = []
        if lines.isEmpty, let prefetcher {
            let batch = prefetcher.next()
            lines = batch.lines
            exhausted = batch.ended
        }
        while lines.count < batchSize, !exhausted, prefetcher == nil {
            // Live input (a pipe): apply what has arrived rather than wait for a full batch.
            if !lines.isEmpty, !reader.isRegularFile, !reader.hasWaitingLine { break }
            guard let line = ParsedLine.next(from: reader, skipThrough: skipThrough) else {
                exhausted = true
                break
            }
            lines.append(line)
        }
        if lines.isEmpty, let failure = reader.failure {
            throw ProfileExportError(
                .unreadableInput, "cannot read the input after line \(reader.lineNumber): \(failure)",
                at: .init(file: reader.source))
        }
        guard !lines.isEmpty else { return }
        let lastLine = lines[lines.count - 1].number
        let receivedAt = Timestamp.now()
        var counts = RunSummary()
        var rejected: [(number: Int, line: [UInt8], error: ProfileExportError)] = []
        var items: [ExportItem] = []
        do {
            try engine.store.batch { () throws(ProfileExportError) in
                var ahead: [ProfileUpdate] = []
                for (offset, line) in lines.enumerated() {
                    if offset % ProfileEngine.prefetchGroup == 0 {
                        // The next group's profiles are read from memory together (a hint; see
                        // `ProfileEngine.prefetch`).
                        ahead.removeAll(keepingCapacity: true)
                        for next in lines[offset..<Swift.min(lines.count, offset + ProfileEngine.prefetchGroup)] {
                            if case .success(let update) = next.update { ahead.append(update) }
                        }
                        engine.prefetch(ahead[...])
                    }
                    counts.updatesRead += 1
                    do throws(ProfileExportError) {
                        let applied = try engine.apply(line.update.get(), receivedAt: receivedAt)
                        counts.updatesApplied += 1
                        for item in applied { counts.exports[item.dataflow, default: 0] += 1 }
                        items += applied
                    } catch  where error.code != .store {
                        rejected.append((line.number, line.bytes, error))
                    }
                }
                if let checkpoint { try engine.store.setValue(String(lastLine), named: checkpoint) }
                try onBatch?(items)
            }
        } catch {
            // Rolled back (the durable store): nothing of this batch happened. Its lines are
            // applied again on the next call; its exports are never handed out.
            retry = lines
            throw error
        }
        pending = items
        summary.updatesRead += counts.updatesRead
        summary.updatesApplied += counts.updatesApplied
        for (dataflow, count) in counts.exports { summary.exports[dataflow, default: 0] += count }
        for (number, _, error) in rejected {
            summary.rejected += 1
            summary.rejectedByKind[error.code.description, default: 0] += 1
            onReject?(number, error)
        }
        if let rejects, !rejected.isEmpty { try keep(rejected, in: rejects) }
    }

    /// Appends the rejected lines of a committed batch to the rejects file. When it cannot be
    /// written (a full disk) this throws, naming the file, the reason and the lines not kept: the
    /// batch is committed and its exports stay pending for the next call.
    private func keep(_ rejected: [(number: Int, line: [UInt8], error: ProfileExportError)], in rejects: RejectsFile) throws(ProfileExportError) {
        var kept = 0
        do {
            for (number, line, error) in rejected {
                try rejects.append(source: reader.source, line: number, reason: error.description, text: line)
                kept += 1
            }
            try rejects.synchronize()
        } catch {
            let lost = rejected[kept...].map(\.number)
            let lines =
                lost.isEmpty
                ? ""
                : " (rejected \(lost.count == 1 ? "line" : "lines") "
                    + lost.prefix(10).map(String.init).joined(separator: ", ") + (lost.count > 10 ? ", …" : "") + " not kept there)"
            throw ProfileExportError(error.code, error.message + lines, at: error.location)
        }
    }
}
