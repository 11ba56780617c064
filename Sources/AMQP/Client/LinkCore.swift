// Hubcast — loop-side state of client sessions and links.

internal import CQpidProton

/// A session on the loop thread.
final class SessionCore {
    unowned let engine: ClientEngine
    let session: OpaquePointer
    private var openCallbacks: [(AMQPError?) -> Void] = []
    private(set) var failure: AMQPError?

    init(engine: ClientEngine, session: OpaquePointer) {
        self.engine = engine
        self.session = session
    }

    /// Calls `done` once the peer's `begin` arrived (nil) or the session failed.
    func waitForOpen(_ done: @escaping (AMQPError?) -> Void) {
        if let failure = self.failure {
            done(failure)
        } else if pn_session_state(self.session) & Int32(PN_REMOTE_ACTIVE) != 0 {
            done(nil)
        } else {
            self.openCallbacks.append(done)
        }
    }

    /// Ends the session (its links end with it).
    func end() {
        guard self.failure == nil else { return }
        pn_session_close(self.session)
    }

    func remoteOpened() {
        let callbacks = self.openCallbacks
        self.openCallbacks = []
        for callback in callbacks { callback(nil) }
    }

    func remoteClosed(_ condition: AMQPCondition?) {
        let error = AMQPError(.sessionClosed, "the peer ended the session", remoteCondition: condition)
        self.connectionFailed(error)
        for link in self.engine.links.values where link.session === self {
            link.connectionFailed(error)
            link.forget()
        }
        self.engine.sessions[self.session] = nil
        pn_session_close(self.session)
        // Frees the session and its links once the transport is done with them.
        pn_session_free(self.session)
    }

    func connectionFailed(_ error: AMQPError) {
        if self.failure == nil { self.failure = error }
        let callbacks = self.openCallbacks
        self.openCallbacks = []
        for callback in callbacks { callback(self.failure) }
    }
}

/// What sender and receiver links share: attach, detach and failure.
class LinkCore {
    unowned let engine: ClientEngine
    unowned let session: SessionCore
    let link: OpaquePointer
    let name: String
    private var openCallback: ((AMQPError?) -> Void)?
    private var closeWaiters: [Waiter<Void>] = []
    /// Set once the link can no longer be used.
    private(set) var failure: AMQPError?
    private(set) var closingLocally = false

    init(engine: ClientEngine, session: SessionCore, link: OpaquePointer, name: String) {
        self.engine = engine
        self.session = session
        self.link = link
        self.name = name
        engine.links[link] = self
        pn_link_set_context(link, Unmanaged.passUnretained(self).toOpaque())
    }

    /// The live link core of a Proton link, found through the link's context (no hashing on the
    /// delivery path); nil once the link was forgotten. The engine's `links` table keeps it alive.
    static func of(_ link: OpaquePointer?) -> LinkCore? {
        guard let link, let context = pn_link_get_context(link) else { return nil }
        return Unmanaged<LinkCore>.fromOpaque(context).takeUnretainedValue()
    }

    /// Opens the link; the waiter resumes on the peer's attach or with the reason it refused.
    func open(done: @escaping (AMQPError?) -> Void) {
        self.openCallback = done
        pn_link_open(self.link)
    }

    /// True when the peer's attach carries no terminus: the peer refused and will detach.
    var remoteRefused: Bool { false }

    func remoteOpened() {
        guard !self.remoteRefused else { return }
        let callback = self.openCallback
        self.openCallback = nil
        callback?(nil)
        self.flow()
    }

    func remoteClosed(_ condition: AMQPCondition?) {
        let message = self.closingLocally ? "the link was closed" : "the peer detached link \(self.name)"
        self.setFailure(AMQPError(.linkClosed, message, remoteCondition: condition))
        pn_link_close(self.link)
        let waiters = self.closeWaiters
        self.closeWaiters = []
        for waiter in waiters { waiter.resume(.success(())) }
        self.forget()
        // Both sides detached: let Proton free the link (a long-lived connection that opens and
        // closes links must not grow). It stays valid until the transport is done with it.
        pn_link_free(self.link)
    }

    /// Stops routing events to this core. The core stays usable as a failed link: every method
    /// checks `failure` before it touches the Proton link.
    func forget() {
        pn_link_set_context(self.link, nil)
        self.engine.links[self.link] = nil
    }

    func connectionFailed(_ error: AMQPError) {
        self.setFailure(error)
        let waiters = self.closeWaiters
        self.closeWaiters = []
        for waiter in waiters { waiter.resume(.success(())) }
    }

    /// Closes the link; the waiter resumes once the peer detached (or the connection is gone).
    func close(_ waiter: Waiter<Void>) {
        guard self.failure == nil else {
            waiter.resume(.success(()))
            return
        }
        self.closeWaiters.append(waiter)
        if !self.closingLocally {
            self.closingLocally = true
            self.setFailure(AMQPError(.linkClosed, "link \(self.name) was closed locally"))
            pn_link_close(self.link)
        }
    }

    /// Records the first terminal error; subclasses fail their pending work with it.
    func setFailure(_ error: AMQPError) {
        if self.failure == nil { self.failure = error }
        let callback = self.openCallback
        self.openCallback = nil
        callback?(self.failure)
        self.failed(self.failure!)
    }

    /// Overridden: fail pending work.
    func failed(_ error: AMQPError) {}
    /// Overridden: credit or state changed.
    func flow() {}
    /// Overridden: a delivery changed.
    func delivery(_ delivery: OpaquePointer) {}
}
