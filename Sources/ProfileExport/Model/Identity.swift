// Hubcast — identities and a profile's identity map (docs/exports.md#profiles-and-identities).

/// One identity: an id within a namespace, such as `("ecid", "1457…")`.
public struct Identity: Sendable, Hashable, CustomStringConvertible {
    public var namespace: String
    public var id: String

    public init(namespace: String, id: String) {
        self.namespace = namespace
        self.id = id
    }

    public var description: String { "\(namespace):\(id)" }
}

/// A profile's identities: namespaces in the order first added, ids in each in the order added.
public struct IdentityMap: Sendable, Hashable {
    /// Namespace → ids. A namespace with no ids left is removed (docs/payload.md#identity-map).
    public private(set) var namespaces: FlatDictionary<String, [String]> = [:]

    public init() {}

    /// A map of namespaces the caller has checked: none without ids, no id twice in one.
    init(uncheckedNamespaces namespaces: FlatDictionary<String, [String]>) {
        self.namespaces = namespaces
    }

    /// Every identity, namespaces in order, ids in order.
    public var all: [Identity] {
        namespaces.flatMap { namespace, ids in ids.map { Identity(namespace: namespace, id: $0) } }
    }

    public var isEmpty: Bool { namespaces.isEmpty }

    /// The first identity added, across namespaces.
    public var first: Identity? {
        guard let (namespace, ids) = namespaces.elements.first, let id = ids.first else { return nil }
        return Identity(namespace: namespace, id: id)
    }

    /// The first id added in `namespace`.
    public func first(in namespace: String) -> String? { namespaces[namespace]?.first }

    public func contains(_ identity: Identity) -> Bool {
        namespaces[identity.namespace]?.contains(identity.id) ?? false
    }

    /// Adds an identity; returns whether it was new.
    @discardableResult
    public mutating func add(_ identity: Identity) -> Bool {
        if namespaces[identity.namespace]?.contains(identity.id) == true { return false }
        namespaces[identity.namespace, default: []].append(identity.id)
        return true
    }

    /// Removes an identity; returns whether the map had it.
    @discardableResult
    public mutating func remove(_ identity: Identity) -> Bool {
        guard var ids = namespaces[identity.namespace], let index = ids.firstIndex(of: identity.id) else { return false }
        ids.remove(at: index)
        namespaces[identity.namespace] = ids.isEmpty ? nil : ids
        return true
    }
}
