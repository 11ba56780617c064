// Hubcast — the one place that knows what a credential looks like in text, and blanks it.

/// Blanks the credentials a text may carry before it is printed or logged.
///
/// Hubcast never means to print a credential, but some texts carry one by nature: a frame trace
/// shows the body of a `put-token` (a live SAS token) and a SASL PLAIN response (a key), and a
/// mistyped connection string may end up quoted in an error. Whatever prints such text passes it
/// through ``redact(_:)`` first: the frame trace, the connection-string parser's errors, the report
/// of `hubcast check`, and everything the `hubcast` command writes to standard error (its log lines
/// and error messages; standard output carries data, such as a failed export's payload, as it is). Keeping the patterns here, once, means a new kind of secret is taught to
/// every printer at the same time.
///
/// What is blanked (names in any case, `-` and `_` ignored):
/// - a SAS token, `SharedAccessSignature sr=…&sig=…&se=…&skn=…`, becomes
///   `SharedAccessSignature <redacted>` (the `sr`, `se` and `skn` fields are not secret, but the
///   token is only ever useful whole);
/// - the value of `NAME=VALUE` (or `"NAME"=VALUE`) when the name says it is a secret: `SharedAccessKey` (and its
///   misspellings: any name with `key` in it, except `…KeyName` and partition keys),
///   `SharedAccessSignature`, `sig`, `password`, `secret`, `…token`, and Proton's
///   `initial-response` (a SASL PLAIN response holds the password). A connection-string field's
///   value (a name starting with `Shared`) runs to the next `;`, spaces included; any other value
///   runs to the next space, `;`, `&`, `,`, quote or bracket, or is one quoted string.
///
/// A value that starts with `<` is taken for a placeholder (`<hidden>`, the mask) and kept. The
/// rest of the text is left as it is, byte for byte.
public enum AMQPRedaction {
    /// What stands in for a blanked value.
    public static let mask = "<redacted>"

    /// `text` with every credential it holds blanked (see ``AMQPRedaction``).
    public static func redact(_ text: String) -> String {
        // Every pattern has an '=' in it (a token's `sr=`, a field's `NAME=`).
        guard text.utf8.contains(UInt8(ascii: "=")) else { return text }
        let bytes = Array(text.utf8)
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        var index = 0
        var changed = false
        while index < bytes.count {
            if let end = self.tokenEnd(bytes, at: index) {
                // `SharedAccessSignature` as written, one space, the mask.
                output += bytes[index..<index + signaturePrefix.count]
                output.append(UInt8(ascii: " "))
                output += Array(self.mask.utf8)
                index = end
                changed = true
                continue
            }
            let byte = bytes[index]
            output.append(byte)
            index += 1
            guard byte == UInt8(ascii: "="), let kind = self.secretName(before: index - 1, in: bytes) else { continue }
            while index < bytes.count, bytes[index] == UInt8(ascii: " ") {
                output.append(bytes[index])
                index += 1
            }
            // A placeholder already (`<hidden>`, the mask): left as it is.
            if index < bytes.count, bytes[index] == UInt8(ascii: "<") { continue }
            let end = self.valueEnd(bytes, from: index, field: kind == .field)
            if end > index {
                output += Array(self.mask.utf8)
                index = end
                changed = true
            }
        }
        return changed ? String(decoding: output, as: UTF8.self) : text
    }

    // MARK: - Patterns

    private static let signaturePrefix = Array("sharedaccesssignature".utf8)

    /// Where the SAS token starting at `start` ends: `SharedAccessSignature`, spaces, then a token
    /// whose first field is `sr=`, `sig=`, `se=` or `skn=`; nil when there is none.
    private static func tokenEnd(_ bytes: [UInt8], at start: Int) -> Int? {
        // Whatever comes before it: in a frame trace, the escaped length of the string (`\x95`).
        guard self.matches(self.signaturePrefix, in: bytes, at: start) else { return nil }
        var index = start + self.signaturePrefix.count
        guard index < bytes.count, bytes[index] == UInt8(ascii: " ") else { return nil }
        while index < bytes.count, bytes[index] == UInt8(ascii: " ") { index += 1 }
        let fields = ["sr=", "sig=", "se=", "skn="].map { Array($0.utf8) }
        guard fields.contains(where: { self.matches($0, in: bytes, at: index) }) else { return nil }
        while index < bytes.count, !self.endsToken(bytes[index]) { index += 1 }
        return index
    }

    private enum SecretKind { case field, value }

    /// Whether the name just before the `=` at `equals` names a secret, and how far its value runs.
    private static func secretName(before equals: Int, in bytes: [UInt8]) -> SecretKind? {
        var end = equals
        while end > 0, bytes[end - 1] == UInt8(ascii: " ") { end -= 1 }
        // A quoted name, as Proton prints a map's keys: `"security_token"=…`.
        let quoted = end > 0 && bytes[end - 1] == UInt8(ascii: "\"")
        if quoted { end -= 1 }
        var start = end
        while start > 0, self.isNameByte(bytes[start - 1]) { start -= 1 }
        guard start < end, !quoted || (start > 0 && bytes[start - 1] == UInt8(ascii: "\"")) else { return nil }
        let name = String(
            decoding: bytes[start..<end].compactMap { byte -> UInt8? in
                byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") ? nil : (byte >= 65 && byte <= 90 ? byte | 0x20 : byte)
            }, as: UTF8.self)
        let secret =
            name == "sig" || name.contains("signature") || name.contains("password") || name.contains("secret")
            || name.hasSuffix("token") || name == "initialresponse"
            || (name.contains("key") && !name.hasSuffix("name") && !name.contains("partition"))
        guard secret else { return nil }
        return name.hasPrefix("shared") ? .field : .value
    }

    /// Where a value starting at `start` ends.
    private static func valueEnd(_ bytes: [UInt8], from start: Int, field: Bool) -> Int {
        var index = start
        if field {
            while index < bytes.count, bytes[index] != UInt8(ascii: ";"), bytes[index] != 0x0A, bytes[index] != 0x0D,
                bytes[index] != UInt8(ascii: "\""), bytes[index] != UInt8(ascii: "'")
            {
                index += 1
            }
            return index
        }
        // A quoted value (`"…"`, `'…'`, or Proton's binary `b"…"`): to its closing quote.
        if index + 1 < bytes.count, bytes[index] == UInt8(ascii: "b"), bytes[index + 1] == UInt8(ascii: "\"") { index += 1 }
        if index < bytes.count, bytes[index] == UInt8(ascii: "\"") || bytes[index] == UInt8(ascii: "'") {
            let quote = bytes[index]
            index += 1
            while index < bytes.count, bytes[index] != quote {
                index += bytes[index] == UInt8(ascii: "\\") ? 2 : 1
            }
            return min(index + 1, bytes.count)
        }
        while index < bytes.count, !self.endsValue(bytes[index]) { index += 1 }
        return index
    }

    private static func matches(_ pattern: [UInt8], in bytes: [UInt8], at start: Int) -> Bool {
        guard start + pattern.count <= bytes.count else { return false }
        for offset in 0..<pattern.count {
            let byte = bytes[start + offset]
            let lower = byte >= 65 && byte <= 90 ? byte | 0x20 : byte
            if lower != pattern[offset] { return false }
        }
        return true
    }

    private static func isNameByte(_ byte: UInt8) -> Bool {
        (byte >= 48 && byte <= 57) || (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122)
            || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
    }

    /// The bytes that end a token: blanks, a field separator, quotes, escapes and brackets.
    private static func endsToken(_ byte: UInt8) -> Bool {
        byte <= 0x20 || byte == 0x7F || Self.closers.contains(byte) || byte == UInt8(ascii: ";") || byte == UInt8(ascii: ",")
    }

    /// The bytes that end a plain value: a token's, and `&`.
    private static func endsValue(_ byte: UInt8) -> Bool {
        self.endsToken(byte) || byte == UInt8(ascii: "&")
    }

    private static let closers: Set<UInt8> = Set("\"'\\)]}<>".utf8)
}
