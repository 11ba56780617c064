// Hubcast — SQLite's C API on a GRDB prepared statement, for the statements run once per update.

package import GRDB
import GRDBSQLite

/// One run of a prepared statement of GRDB's, bound and stepped through SQLite's C API: no
/// argument arrays, no row objects, blobs read in place. Used for the few statements every update
/// or export runs; everything else goes through GRDB.
///
/// Make one per run, bind every parameter, then ``step()`` (and read columns while it is on a row).
/// The statement is reset and its bindings cleared when the run ends, so GRDB (or the next run)
/// finds it as it expects. Text and blobs are copied by SQLite when bound.
package struct RawStatement: ~Copyable {
    /// GRDB's statement, kept so that its handle lives as long as the run.
    private let statement: Statement
    private let handle: OpaquePointer
    private let connection: OpaquePointer

    package init(_ statement: Statement, in db: Database) throws(ProfileExportError) {
        guard let connection = db.sqliteConnection else { throw ProfileExportError(.store, "the database is closed") }
        self.statement = statement
        handle = statement.sqliteStatement
        self.connection = connection
        sqlite3_reset(handle)
    }

    deinit {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    /// SQLite's "copy the value now" destructor.
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    /// Binds text. Text with a NUL is refused: GRDB binds strings up to their first NUL, and the two
    /// must find the same rows (updates and the configuration refuse NUL before it gets here).
    package func bind(_ text: String, at index: Int32) throws(ProfileExportError) {
        guard !text.utf8.contains(0) else { throw Self.nulText }
        var text = text
        try check(text.withUTF8 { bindText($0, at: index) })
    }

    /// Binds UTF-8 text already encoded (JSON a writer made), without making a string of it.
    package func bind(utf8 text: [UInt8], at index: Int32) throws(ProfileExportError) {
        guard !text.contains(0) else { throw Self.nulText }
        try check(text.withUnsafeBufferPointer { bindText($0, at: index) })
    }

    private static let nulText = ProfileExportError(.store, "cannot store text with a NUL character")

    private func bindText(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int32) -> Int32 {
        sqlite3_bind_text(handle, index, bytes.baseAddress, Int32(bytes.count), Self.transient)
    }

    package func bind(_ text: String?, at index: Int32) throws(ProfileExportError) {
        if let text { try bind(text, at: index) } else { try check(sqlite3_bind_null(handle, index)) }
    }

    package func bind(_ value: Int64, at index: Int32) throws(ProfileExportError) {
        try check(sqlite3_bind_int64(handle, index, value))
    }

    package func bind(_ value: Double, at index: Int32) throws(ProfileExportError) {
        try check(sqlite3_bind_double(handle, index, value))
    }

    /// Binds a blob without copying it: `bytes` must stay valid until the run ends.
    package func bind(blobInPlace bytes: UnsafeBufferPointer<UInt8>, at index: Int32) throws(ProfileExportError) {
        // SQLITE_STATIC (a null destructor): SQLite reads the bytes where they are, until the
        // binding is cleared when the run ends.
        try check(sqlite3_bind_blob(handle, index, bytes.baseAddress, Int32(bytes.count), nil))
    }

    package func bind(blob bytes: [UInt8], at index: Int32) throws(ProfileExportError) {
        try check(bytes.withUnsafeBytes { sqlite3_bind_blob(handle, index, $0.baseAddress, Int32($0.count), Self.transient) })
    }

    /// Runs the statement to its first row: `true` on a row (read it with the column accessors),
    /// `false` when done.
    package func step() throws(ProfileExportError) -> Bool {
        switch sqlite3_step(handle) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw failure("'\(sql)' failed")
        }
    }

    package func int64(at column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }

    /// Calls `body` with the blob (or text) of `column` where SQLite holds it (no copy); the bytes
    /// are valid only inside `body`.
    package func withBytes<T>(at column: Int32, _ body: (UnsafeBufferPointer<UInt8>) throws(ProfileExportError) -> T) throws(ProfileExportError) -> T
    {
        let start = sqlite3_column_blob(handle, column)?.assumingMemoryBound(to: UInt8.self)
        return try body(UnsafeBufferPointer(start: start, count: start == nil ? 0 : Int(sqlite3_column_bytes(handle, column))))
    }

    /// Whether `column` holds exactly `text` (`false` when it is NULL).
    package func column(_ column: Int32, holds text: String) -> Bool {
        guard sqlite3_column_type(handle, column) == SQLITE_TEXT else { return false }
        let start = sqlite3_column_text(handle, column)
        return text.utf8.elementsEqual(UnsafeBufferPointer(start: start, count: start == nil ? 0 : Int(sqlite3_column_bytes(handle, column))))
    }

    /// How many rows the last INSERT, UPDATE or DELETE on the connection changed.
    package var changes: Int { Int(sqlite3_changes(connection)) }

    private func check(_ result: Int32) throws(ProfileExportError) {
        guard result == SQLITE_OK else { throw failure("cannot bind a value of '\(sql)'") }
    }

    /// The statement's text, for errors (GRDB's `sql` is worked out on every call: too slow for each run).
    private var sql: String { String(cString: sqlite3_sql(handle)) }

    private func failure(_ what: String) -> ProfileExportError {
        ProfileExportError(.store, "\(what): \(String(cString: sqlite3_errmsg(connection)))")
    }
}
