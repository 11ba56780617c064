// Hubcast — Event Hubs connection strings.

import AMQP
import Foundation

/// Where an Event Hub is and how to authenticate to it, read from a connection string or from the
/// separate fields (namespace, SAS key name, SAS key, event hub name).
///
/// ``description`` never shows the key or the signature.
public struct EventHubsConnectionString: Sendable, Hashable, CustomStringConvertible {
    /// How the client proves its rights.
    public enum Credential: Sendable, Hashable {
        /// A shared access rule and its key: tokens are signed and renewed by the client.
        case sharedAccessKey(name: String, key: String)
        /// A pre-made token: it cannot be renewed and stops working at its expiry.
        case sharedAccessSignature(EventHubsSASToken)
    }

    /// The namespace's host name (FQDN), such as `ns.servicebus.windows.net`. It is the TLS SNI,
    /// the AMQP `open` hostname and the host of every token audience.
    public var fullyQualifiedNamespace: String
    /// The TCP port given in the endpoint, if any.
    public var port: Int?
    /// The event hub (`EntityPath`), if the string names one.
    public var eventHub: String?
    /// The credential.
    public var credential: Credential
    /// `UseDevelopmentEmulator=true`: plain AMQP (no TLS) to the endpoint, port 5672 by default.
    public var useDevelopmentEmulator: Bool

    /// The fields a connection string may have: the service's fixed set. Any other name is an
    /// error, so that a misspelled `SharedAcessKey=` is named as such instead of surfacing as a
    /// missing key.
    public static let fieldNames = [
        "Endpoint", "SharedAccessKeyName", "SharedAccessKey", "SharedAccessSignature", "EntityPath", "UseDevelopmentEmulator",
        "TransportType",
    ]

    /// Parses a connection string.
    ///
    /// Rules: segments split on `;` (empty ones skipped), each on its first `=`; names are
    /// case-insensitive and trimmed, and must be one of ``fieldNames``; an empty value is an error;
    /// either `SharedAccessKeyName` and `SharedAccessKey`, or `SharedAccessSignature`, not both;
    /// `eventHub`, when given, must match any `EntityPath`; `UseDevelopmentEmulator` is `true` or
    /// `false` (any case); `TransportType` is `Amqp` (Hubcast has no WebSockets transport). Errors
    /// name the problem and the field, never a value that may hold a key or signature (what they
    /// quote goes through ``AMQPRedaction``).
    public init(parsing text: String, eventHub: String? = nil) throws {
        var fields: [String: String] = [:]
        let known = Dictionary(uniqueKeysWithValues: Self.fieldNames.map { ($0.lowercased(), $0) })
        var number = 0
        for segment in text.split(separator: ";", omittingEmptySubsequences: true) {
            let part = segment.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !part.isEmpty else { continue }
            number += 1
            // Never quoted: a segment without '=' may be a key pasted alone.
            guard let equals = part.firstIndex(of: "=") else {
                throw Self.invalid("segment \(number) has no '=' (a connection string is Name=value fields separated by ';')")
            }
            let name = part[..<equals].trimmingCharacters(in: .whitespaces)
            let key = name.lowercased()
            let value = part[part.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            guard let canonical = known[key] else {
                if key == "hostname" {
                    throw Self.invalid("this looks like an IoT Hub connection string (HostName=…); use the Event Hubs-compatible endpoint")
                }
                throw Self.invalid("unknown field \(Self.quotedName(name)) (the fields are \(Self.fieldNames.joined(separator: ", ")))")
            }
            guard !value.isEmpty else { throw Self.invalid("\(canonical) has an empty value") }
            guard fields[key] == nil else { throw Self.invalid("\(canonical) is given twice") }
            // A token's value has a space of its own (`SharedAccessSignature sr=…`).
            if canonical != "SharedAccessSignature", let swallowed = Self.swallowedField(in: value) {
                throw Self.invalid("the value of \(canonical) has '\(swallowed)=' after a space: separate the fields with ';'")
            }
            fields[key] = value
        }
        guard let endpoint = fields["endpoint"] else { throw Self.invalid("Endpoint is missing") }
        let (host, port) = try Self.parseEndpoint(endpoint)
        self.fullyQualifiedNamespace = host
        self.port = port

        let keyName = fields["sharedaccesskeyname"]
        let key = fields["sharedaccesskey"]
        let signature = fields["sharedaccesssignature"]
        switch (keyName, key, signature) {
        case (let name?, let key?, nil):
            self.credential = .sharedAccessKey(name: name, key: key)
        case (nil, nil, let signature?):
            self.credential = .sharedAccessSignature(try EventHubsSASToken(parsing: signature))
        case (_, _, .some):
            throw Self.invalid("give either SharedAccessKeyName and SharedAccessKey, or SharedAccessSignature, not both")
        case (nil, .some, nil):
            throw Self.invalid("SharedAccessKey is given without SharedAccessKeyName")
        case (.some, nil, nil):
            throw Self.invalid("SharedAccessKeyName is given without SharedAccessKey")
        case (nil, nil, nil):
            throw Self.invalid("no credential: give SharedAccessKeyName and SharedAccessKey, or SharedAccessSignature")
        }

        let entityPath = fields["entitypath"]
        if let entityPath, let eventHub, entityPath != eventHub {
            throw Self.invalid("EntityPath \"\(entityPath)\" differs from the event hub \"\(eventHub)\" given separately")
        }
        self.eventHub = eventHub ?? entityPath
        switch fields["usedevelopmentemulator"]?.lowercased() {
        case nil, "false": self.useDevelopmentEmulator = false
        case "true": self.useDevelopmentEmulator = true
        case let other?:
            throw Self.invalid("UseDevelopmentEmulator must be true or false, not \(Self.quotedValue(other))")
        }
        switch fields["transporttype"]?.lowercased() {
        case nil, "amqp": break
        case "amqpwebsockets":
            throw Self.invalid("TransportType AmqpWebSockets is not supported: Hubcast connects over AMQP on TCP (TransportType=Amqp)")
        case let other?:
            throw Self.invalid("TransportType must be Amqp or AmqpWebSockets, not \(Self.quotedValue(other))")
        }
    }

    /// Builds the connection from the separate fields of the product pages: namespace (a name such as
    /// `contoso` or a host name such as `contoso.servicebus.windows.net`), SAS key name, SAS key and
    /// event hub name.
    public init(namespace: String, eventHub: String, sasKeyName: String, sasKey: String) throws {
        let trimmed = namespace.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { throw Self.invalid("the namespace is empty") }
        guard !eventHub.isEmpty else { throw Self.invalid("the event hub name is empty") }
        guard !sasKeyName.isEmpty else { throw Self.invalid("the SAS key name is empty") }
        guard !sasKey.isEmpty else { throw Self.invalid("the SAS key is empty") }
        if trimmed.contains("://") || trimmed.contains(":") {
            let (host, port) = try Self.parseEndpoint(trimmed)
            self.fullyQualifiedNamespace = host
            self.port = port
        } else {
            self.fullyQualifiedNamespace = trimmed.contains(".") ? trimmed : "\(trimmed).servicebus.windows.net"
            self.port = nil
        }
        self.eventHub = eventHub
        self.credential = .sharedAccessKey(name: sasKeyName, key: sasKey)
        self.useDevelopmentEmulator = false
    }

    /// The TCP port to use: the endpoint's, else 5672 for the emulator and 5671 (TLS) for the cloud.
    public var effectivePort: Int { self.port ?? (self.useDevelopmentEmulator ? 5672 : 5671) }

    /// Whether to use TLS: always, except for the development emulator.
    public var usesTLS: Bool { !self.useDevelopmentEmulator }

    /// The token audience for `path` under the namespace, such as `amqps://<fqdn>/<hub>`.
    public func audience(_ path: String) -> String { "amqps://\(self.fullyQualifiedNamespace)/\(path)" }

    /// Shows everything but the key or signature.
    public var description: String {
        let credential: String
        switch self.credential {
        case .sharedAccessKey(let name, _): credential = "SharedAccessKeyName=\(name);SharedAccessKey=<hidden>"
        case .sharedAccessSignature: credential = "SharedAccessSignature=<hidden>"
        }
        var text = "Endpoint=sb://\(self.fullyQualifiedNamespace)\(self.port.map { ":\($0)" } ?? "")/;\(credential)"
        if let hub = self.eventHub { text += ";EntityPath=\(hub)" }
        if self.useDevelopmentEmulator { text += ";UseDevelopmentEmulator=true" }
        return text
    }

    private static func parseEndpoint(_ endpoint: String) throws -> (String, Int?) {
        let withScheme = endpoint.contains("://") ? endpoint : "sb://\(endpoint)"
        guard let url = URLComponents(string: withScheme), let host = url.host, !host.isEmpty else {
            throw Self.invalid("Endpoint \(Self.quotedValue(endpoint)) is not a URL with a host, such as sb://<namespace>.servicebus.windows.net/")
        }
        if let port = url.port, !(1...65535).contains(port) {
            throw Self.invalid("Endpoint port \(port) is not between 1 and 65535")
        }
        return (host.lowercased(), url.port)
    }

    private static func invalid(_ message: String) -> EventHubsError {
        EventHubsError(.invalidConnectionString, message)
    }

    /// The first field name written after a space inside a value (`Endpoint=sb://ns SharedAccessKey=…`
    /// is two fields run together), or nil.
    private static func swallowedField(in value: String) -> String? {
        let words = value.split(whereSeparator: \.isWhitespace).dropFirst()
        for word in words {
            guard let equals = word.firstIndex(of: "="), equals > word.startIndex else { continue }
            let name = String(word[..<equals])
            if let field = Self.fieldNames.first(where: { $0.caseInsensitiveCompare(name) == .orderedSame }) { return field }
            if name.count <= 40, name.allSatisfy({ $0.isASCII && $0.isLetter }) { return name }
        }
        return nil
    }

    /// A field name for an error: as written when it looks like a name (letters, at most 40),
    /// else not at all (it may be a piece of a key).
    private static func quotedName(_ name: String) -> String {
        let looksLikeName = !name.isEmpty && name.count <= 40 && name.allSatisfy { $0.isASCII && $0.isLetter }
        return looksLikeName ? name : "(a name that is not letters)"
    }

    /// A value for an error: redacted, and cut short.
    private static func quotedValue(_ value: String) -> String {
        let redacted = AMQPRedaction.redact(value)
        return "\"" + (redacted.count > 80 ? String(redacted.prefix(80)) + "…" : redacted) + "\""
    }
}
