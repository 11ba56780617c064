// Hubcast — SASL mechanisms supplied to Proton through `proton/sasl_plugin.h`.
//
// Debian's Proton has no Cyrus SASL: its built-in server knows only ANONYMOUS and EXTERNAL, and its
// client cannot send ANONYMOUS under another name (Event Hubs' `MSSBCBS`). This plug-in does both
// sides: clients send ANONYMOUS, PLAIN or ANONYMOUS under a given name; servers offer a configured
// list and check PLAIN credentials with Swift code.

internal import CQpidProton
#if canImport(Glibc)
import Glibc
#endif

/// Per-transport state of the plug-in, retained by the transport until Proton calls `free`.
final class ProtonSASLContext {
    /// Client: the mechanism to send and its initial response.
    let clientMechanism: String?
    let initialResponse: UnsafeMutableBufferPointer<CChar>
    /// Server: the mechanisms offered, space separated, and the PLAIN check.
    let offered: UnsafeMutablePointer<CChar>?
    let offeredNames: Set<String>
    let checkPlain: (@Sendable (String, String) -> Bool)?
    /// Server: the user name that authenticated, for the application.
    var authenticatedUser: String?
    /// Server: the mechanism the client authenticated with.
    var authenticatedMechanism: String?
    /// The same name as a C string that lives as long as the transport: Proton keeps the pointer
    /// given to `pnx_sasl_set_succeeded` without copying it.
    private var authenticatedUserC: UnsafeMutablePointer<CChar>?

    func setAuthenticated(_ user: String) -> UnsafePointer<CChar>? {
        free(self.authenticatedUserC)
        self.authenticatedUser = user
        self.authenticatedUserC = strdup(user)
        return UnsafePointer(self.authenticatedUserC)
    }

    init(client mechanism: String, response: [UInt8]) {
        self.clientMechanism = mechanism
        self.initialResponse = .allocate(capacity: max(1, response.count))
        for (index, byte) in response.enumerated() { self.initialResponse[index] = CChar(bitPattern: byte) }
        self.responseCount = response.count
        self.offered = nil
        self.offeredNames = []
        self.checkPlain = nil
    }

    init(server mechanisms: [String], checkPlain: (@Sendable (String, String) -> Bool)?) {
        self.clientMechanism = nil
        self.initialResponse = .allocate(capacity: 1)
        self.responseCount = 0
        self.offered = strdup(mechanisms.joined(separator: " "))
        self.offeredNames = Set(mechanisms)
        self.checkPlain = checkPlain
    }

    let responseCount: Int

    deinit {
        // Overwrite the response: it may hold a password.
        for index in 0..<self.initialResponse.count { self.initialResponse[index] = 0 }
        self.initialResponse.deallocate()
        free(self.offered)
        free(self.authenticatedUserC)
    }

    /// Installs the plug-in on `transport` with this context.
    func install(on transport: OpaquePointer) {
        _ = pn_sasl(transport)
        pnx_sasl_set_implementation(transport, ProtonSASL.implementation, Unmanaged.passRetained(self).toOpaque())
    }

    static func from(_ transport: OpaquePointer?) -> ProtonSASLContext? {
        guard let transport, let raw = pnx_sasl_get_context(transport) else { return nil }
        return Unmanaged<ProtonSASLContext>.fromOpaque(raw).takeUnretainedValue()
    }
}

enum ProtonSASL {
    /// The plug-in's entry points, allocated once for the process and never freed.
    nonisolated(unsafe) static let implementation: UnsafeMutablePointer<pnx_sasl_implementation> = {
        let pointer = UnsafeMutablePointer<pnx_sasl_implementation>.allocate(capacity: 1)
        pointer.initialize(
            to: pnx_sasl_implementation(
                free: { transport in
                    guard let transport, let raw = pnx_sasl_get_context(transport) else { return }
                    pnx_sasl_set_context(transport, nil)
                    Unmanaged<ProtonSASLContext>.fromOpaque(raw).release()
                },
                list_mechanisms: { transport in
                    UnsafePointer(ProtonSASLContext.from(transport)?.offered)
                },
                init_server: { transport in
                    pnx_sasl_set_desired_state(transport, SASL_POSTED_MECHANISMS)
                    return true
                },
                init_client: { _ in true },
                prepare_write: { _ in },
                process_init: { transport, mechanism, response in
                    ProtonSASL.serverInit(transport, mechanism: mechanism.map { String(cString: $0) } ?? "", response)
                },
                process_response: { _, _ in },
                process_mechanisms: { transport, offered in
                    ProtonSASL.clientChoose(transport, offered: offered.map { String(cString: $0) } ?? "")
                },
                process_challenge: { _, _ in },
                process_outcome: { _, _ in },
                can_encrypt: { _ in false },
                max_encrypt_size: { _ in 0 },
                encode: { _, _, _ in 0 },
                decode: { _, _, _ in 0 }
            ))
        return pointer
    }()

    /// Client: picks our mechanism if the server offers it and posts `sasl-init`.
    static func clientChoose(_ transport: OpaquePointer?, offered: String) -> Bool {
        guard let transport, let context = ProtonSASLContext.from(transport),
            let mechanism = context.clientMechanism
        else { return false }
        let names = offered.split(separator: " ").map(String.init)
        guard names.contains(mechanism) else { return false }
        pnx_sasl_set_selected_mechanism(transport, mechanism)
        pnx_sasl_set_bytes_out(transport, pn_bytes(context.responseCount, context.initialResponse.baseAddress))
        pnx_sasl_set_desired_state(transport, SASL_POSTED_INIT)
        return true
    }

    /// Server: accepts ANONYMOUS-like mechanisms, checks PLAIN, and posts the outcome.
    static func serverInit(_ transport: OpaquePointer?, mechanism: String, _ response: UnsafePointer<pn_bytes_t>?) {
        guard let transport, let context = ProtonSASLContext.from(transport) else { return }
        var user: String?
        if context.offeredNames.contains(mechanism) {
            if mechanism == "PLAIN" {
                let bytes =
                    response.map { pointer -> [UInt8] in
                        guard let start = pointer.pointee.start else { return [] }
                        return start.withMemoryRebound(to: UInt8.self, capacity: pointer.pointee.size) {
                            Array(UnsafeBufferPointer(start: $0, count: pointer.pointee.size))
                        }
                    } ?? []
                // authzid NUL authcid NUL password
                let parts = bytes.split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
                if parts.count == 3 {
                    let name = String(decoding: parts[1], as: UTF8.self)
                    let password = String(decoding: parts[2], as: UTF8.self)
                    if context.checkPlain?(name, password) ?? false { user = name }
                }
            } else {
                user = "anonymous"
            }
        }
        if let user {
            context.authenticatedMechanism = mechanism
            pnx_sasl_set_succeeded(transport, context.setAuthenticated(user), nil)
        } else {
            pnx_sasl_set_failed(transport)
        }
        pnx_sasl_set_desired_state(transport, SASL_POSTED_OUTCOME)
    }
}
