// Hubcast — shared access signature tokens (docs/eventhubs-wire.md#sas-tokens).

import Crypto
import Foundation

/// A shared access signature: `SharedAccessSignature sr=…&sig=…&se=…&skn=…`.
///
/// Its text is a secret: ``description`` shows only the resource, the rule and the expiry, so a
/// token can be logged by mistake without leaking.
public struct EventHubsSASToken: Sendable, Hashable, CustomStringConvertible {
    /// The full token text, as sent in a `$cbs` put-token. Secret: never log it.
    public let token: String
    /// The resource URI the token covers (decoded), such as `amqps://ns.servicebus.windows.net/hub`.
    public let resource: String
    /// The shared access rule that signed it, if the token names one.
    public let keyName: String?
    /// When the token expires, in Unix seconds.
    public let expiresAt: Int64
    /// The `sr` field exactly as written, and the signature's base64 text: what a verifier recomputes.
    private let signedResource: String
    private let signature: String

    /// Signs a token for `resource` with a rule's key.
    ///
    /// Follows docs/eventhubs-wire.md#sas-tokens: the resource is lower-cased and percent-encoded (everything but
    /// `A-Za-z0-9-_.~`, lower-case hex), the string to sign is `ENC(resource) + "\n" + se`, the HMAC
    /// key is the key text's UTF-8 bytes as written (not base64-decoded), and the signature is
    /// base64, then percent-encoded. One token for `amqps://<fqdn>/<hub>` also covers the hub's
    /// partitions.
    public init(resource: String, keyName: String, key: String, expiresAt: Int64) {
        let encodedResource = Self.percentEncode(resource.lowercased()).lowercased()
        let toSign = "\(encodedResource)\n\(expiresAt)"
        let mac = HMAC<SHA256>.authenticationCode(for: Array(toSign.utf8), using: SymmetricKey(data: Array(key.utf8)))
        let signature = Data(mac).base64EncodedString()
        self.token =
            "SharedAccessSignature sr=\(encodedResource)&sig=\(Self.percentEncode(signature))"
            + "&se=\(expiresAt)&skn=\(Self.percentEncode(keyName))"
        self.resource = resource.lowercased()
        self.keyName = keyName
        self.expiresAt = expiresAt
        self.signedResource = encodedResource
        self.signature = signature
    }

    /// Reads a pre-made token (with or without the `SharedAccessSignature ` prefix), to learn its
    /// resource and expiry. Throws ``EventHubsError/Code/invalidToken`` naming what is missing.
    public init(parsing text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let body =
            trimmed.hasPrefix("SharedAccessSignature ")
            ? String(trimmed.dropFirst("SharedAccessSignature ".count)) : trimmed
        var fields: [String: String] = [:]
        for pair in body.split(separator: "&") {
            guard let equals = pair.firstIndex(of: "=") else { continue }
            fields[String(pair[..<equals]).lowercased()] = String(pair[pair.index(after: equals)...])
        }
        guard let sr = fields["sr"], let resource = sr.removingPercentEncoding, !resource.isEmpty else {
            throw EventHubsError(.invalidToken, "the SharedAccessSignature has no sr (resource) field")
        }
        guard fields["sig"].map({ !$0.isEmpty }) == true else {
            throw EventHubsError(.invalidToken, "the SharedAccessSignature has no sig (signature) field")
        }
        guard let se = fields["se"], let expiry = Int64(se) else {
            throw EventHubsError(.invalidToken, "the SharedAccessSignature has no numeric se (expiry) field")
        }
        self.token = trimmed.hasPrefix("SharedAccessSignature ") ? trimmed : "SharedAccessSignature " + trimmed
        self.resource = resource
        self.keyName = fields["skn"].flatMap { $0.removingPercentEncoding }
        self.expiresAt = expiry
        self.signedResource = sr
        self.signature = fields["sig"]?.removingPercentEncoding ?? ""
    }

    /// Whether the token was signed with `key` (the verifier's side of the signature: the HMAC of
    /// the `sr` text as written, a line feed and `se`). Compares in constant time.
    public func isSigned(byKey key: String) -> Bool {
        let toSign = "\(self.signedResource)\n\(self.expiresAt)"
        let mac = HMAC<SHA256>.authenticationCode(for: Array(toSign.utf8), using: SymmetricKey(data: Array(key.utf8)))
        guard let given = Data(base64Encoded: self.signature) else { return false }
        return Self.constantTimeEqual(Array(mac), Array(given))
    }

    private static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in 0..<a.count { difference |= a[index] ^ b[index] }
        return difference == 0
    }

    /// Whether the token's resource covers `audience`: the audience is the resource or lies below
    /// it. The scheme (`sb`, `amqps`) does not take part, as in the service.
    public func covers(_ audience: String) -> Bool {
        func strip(_ text: String) -> String {
            let lower = text.lowercased()
            guard let range = lower.range(of: "://") else { return lower }
            return String(lower[range.upperBound...])
        }
        let resource = strip(self.resource).trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        let target = strip(audience).trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        return target == resource || target.hasPrefix(resource + "/")
    }

    /// Whether the token is still valid at `now` (Unix seconds) with `margin` seconds to spare.
    public func isValid(at now: Int64, margin: Int64 = 0) -> Bool { self.expiresAt > now + margin }

    /// Never shows the token itself.
    public var description: String {
        "SAS token for \(self.resource) (rule \(self.keyName ?? "?"), expires at \(self.expiresAt), signature hidden)"
    }

    /// Percent-encodes everything but RFC 3986 unreserved characters, with upper-case hex.
    static func percentEncode(_ text: String) -> String {
        var result = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
                UInt8(ascii: "~"):
                result.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                result += String(format: "%%%02X", byte)
            }
        }
        return result
    }
}
