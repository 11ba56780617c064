// Hubcast — small helpers the commands share: logging and number formatting.

import Logging

func makeLogger(_ options: LoggingOptions) -> Logger {
    var logger = Logger(label: "hubcast")
    logger.logLevel = options.verbose || options.traceFrames ? .debug : .info
    return logger
}

func format(_ duration: Duration) -> String {
    let seconds = duration / .seconds(1)
    return seconds < 1 ? "\(Int((seconds * 1000).rounded())) ms" : String(Int(seconds * 100) / 100) + "." + String(format2(Int(seconds * 100) % 100)) + " s"
}

private func format2(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }

func rate(_ count: Int, _ duration: Duration) -> Int {
    let seconds = duration / .seconds(1)
    return seconds > 0 ? Int(Double(count) / seconds) : 0
}
