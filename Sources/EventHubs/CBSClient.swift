// Hubcast — claims-based authorization on `$cbs` (docs/eventhubs-wire.md#authorization-on-cbs).

import AMQP

/// The `$cbs` request/response link pair of one connection (one pair per connection, as the
/// service requires).
final class CBSClient: Sendable {
    private let link: RequestResponseLink

    private init(link: RequestResponseLink) { self.link = link }

    /// Attaches the pair on `connection`.
    static func attach(on connection: AMQPConnection) async throws -> CBSClient {
        CBSClient(link: try await RequestResponseLink.attach(to: "$cbs", on: connection))
    }

    /// Puts `token` for `audience` and waits for a 2xx answer. Throws ``EventHubsError`` with
    /// `.unauthorized` (401, 403), `.notFound` (404) or `.authorizationFailed`, carrying the service's
    /// status description (which never contains the token).
    func putToken(_ token: EventHubsSASToken, audience: String) async throws {
        var request = AMQPMessage(body: .value(.string(token.token)))
        request.applicationProperties = [
            ("operation", .string("put-token")), ("type", .string("servicebus.windows.net:sastoken")),
            ("name", .string(audience)), ("expiration", .timestamp(token.expiresAt * 1000)),
        ]
        let (status, description) = RequestResponseLink.status(of: try await self.link.request(request))
        switch status {
        case 200, 202: return
        case 401, 403: throw EventHubsError(.unauthorized, "put-token for \(audience) refused (\(status)): \(description)")
        case 404: throw EventHubsError(.notFound, "put-token for \(audience) refused (\(status)): \(description)")
        default: throw EventHubsError(.authorizationFailed, "put-token for \(audience) failed (\(status)): \(description)")
        }
    }
}
