// Hubcast — small helpers the commands share: logging, standard error, counts and number formatting.

import AMQP
import Foundation
import Logging
import ProfileExport
import Synchronization

func makeLogger(_ options: LoggingOptions) -> Logger {
    var logger = Logger(label: "hubcast")
    logger.logLevel = options.verbose || options.traceFrames ? .debug : .info
    return logger
}

/// Sends every logger's lines to ``StandardError`` (swift-log's usual format), so that a log line
/// first clears the progress line on the terminal instead of being glued to its end.
func bootstrapLogging() {
    LoggingSystem.bootstrap { label in StreamLogHandler(label: label, stream: StandardError.Stream()) }
}

/// Standard error, shared by log lines, messages and the progress line. One lock orders them: a
/// line written while the progress line is shown first clears it (`\r` and erase to the end of the
/// line), and the progress line is drawn again at its next refresh. Writes never stop the process:
/// a full disk or a closed pipe there has nowhere to be reported, so the text is dropped.
enum StandardError {
    /// Whether the progress line is on the terminal now.
    private static let progressShown = Mutex(false)

    /// Writes `text` (the caller ends its lines), after clearing the progress line. Every log line
    /// and error message passes here, so credentials are blanked here once (``AMQPRedaction``),
    /// whatever put them in the text: an error quoting a hub's answer, a mistyped option.
    static func write(_ text: String) {
        let text = AMQPRedaction.redact(text)
        progressShown.withLock { shown in
            if shown {
                writeAll(2, Array("\r\u{1B}[K".utf8))
                shown = false
            }
            writeAll(2, Array(text.utf8))
        }
    }

    /// Draws `line` as the progress line (no line break), replacing the one shown.
    static func showProgress(_ line: String) {
        progressShown.withLock { shown in
            writeAll(2, Array(("\r\u{1B}[K" + line).utf8))
            shown = true
        }
    }

    /// Clears the progress line, if one is shown.
    static func clearProgress() {
        progressShown.withLock { shown in
            if shown { writeAll(2, Array("\r\u{1B}[K".utf8)) }
            shown = false
        }
    }

    /// swift-log's output stream for ``StandardError``.
    struct Stream: TextOutputStream, Sendable {
        mutating func write(_ string: String) { StandardError.write(string) }
    }
}

/// `count` and the noun for it, singular for exactly one: "1 event", "2 events", "0 events".
func counted(_ count: Int, _ singular: String, _ plural: String? = nil) -> String {
    "\(count) \(count == 1 ? singular : plural ?? singular + "s")"
}

func format(_ duration: Duration) -> String {
    let seconds = duration / .seconds(1)
    return seconds < 1
        ? "\(Int((seconds * 1000).rounded())) ms" : String(Int(seconds * 100) / 100) + "." + String(format2(Int(seconds * 100) % 100)) + " s"
}

private func format2(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }

func rate(_ count: Int, _ duration: Duration) -> Int {
    let seconds = duration / .seconds(1)
    return seconds > 0 ? Int(Double(count) / seconds) : 0
}

/// A command failure, printed as `Error: <description>` without the usage text.
struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Writes out what `print` buffered (all of C's streams: `stdout` itself is not Sendable).
func flushStandardOutput() { fflush(nil) }

/// A duration in seconds.
func seconds(_ duration: Duration) -> Double { duration / .seconds(1) }
