// Hubcast — the thread that owns Proton objects and their sockets.

internal import CQpidProton
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Something the loop polls: a listening socket or a connection driver over a socket.
protocol ProtonChannel: AnyObject {
    /// The socket.
    var fd: Int32 { get }
    /// Called on the loop thread when the socket is ready or in error.
    func handleIO(readable: Bool, writable: Bool, hangup: Bool)
    /// Called on the loop thread after commands ran and on timer deadlines: process events, write,
    /// tick timers. Returns the next deadline in loop milliseconds, or nil.
    func service(now: Int64) -> Int64?
}

/// One OS thread with an epoll set. Every Proton object and socket it hosts is used on this thread only;
/// other threads hand it work with ``execute(_:)``.
///
/// Like NIO's event loop, only the caller that finds no wake pending pays for the eventfd write.
final class ProtonLoop: @unchecked Sendable {
    // @unchecked: `channels`, `timers` and `deadlines` are touched on the loop thread only; `inbox`
    // is behind its mutex; the file descriptors are immutable.
    private struct Inbox {
        var tasks: [@Sendable () -> Void] = []
        var wakePending = false
        var stopping = false
    }

    private let epollFD: Int32
    private let wakeFD: Int32
    private let inbox = Mutex(Inbox())
    private var channels: [Int32: any ProtonChannel] = [:]
    private var deadlines: [Int32: Int64] = [:]
    private var timers: [(deadline: Int64, task: () -> Void)] = []
    /// Channels changed by work done for another channel (a broker forwarding a message from one
    /// connection to another): serviced before the loop waits again.
    private var dirty: [any ProtonChannel] = []
    private let threadID = Mutex<pthread_t?>(nil)
    private let finished = Mutex<[CheckedContinuation<Void, Never>]?>([])
    let name: String

    /// Starts a loop thread named `name`.
    init(name: String) throws {
        self.name = name
        self.epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        self.wakeFD = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard self.epollFD >= 0, self.wakeFD >= 0 else {
            throw AMQPError(.connectionFailed, "cannot create the event loop: \(Self.errnoText())")
        }
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.fd = self.wakeFD
        epoll_ctl(self.epollFD, EPOLL_CTL_ADD, self.wakeFD, &event)

        let box = Unmanaged.passRetained(self)
        var thread = pthread_t()
        let result = pthread_create(
            &thread, nil,
            { context in
                let loop = Unmanaged<ProtonLoop>.fromOpaque(context!).takeRetainedValue()
                loop.run()
                return nil
            }, box.toOpaque())
        guard result == 0 else {
            box.release()
            throw AMQPError(.connectionFailed, "cannot start the event loop thread")
        }
        pthread_detach(thread)
        self.threadID.withLock { $0 = thread }
    }

    static func errnoText(_ code: Int32 = errno) -> String {
        String(cString: strerror(code))
    }

    /// Whether the caller runs on this loop's thread.
    var inLoop: Bool {
        let current = pthread_self()
        return self.threadID.withLock { id in id.map { pthread_equal($0, current) != 0 } ?? false }
    }

    /// Traps, in debug builds only, unless the caller runs on this loop's thread: Proton's objects
    /// and the engines' fields belong to the loop, and touching them from elsewhere is a data race.
    func assertInLoop(_ what: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line) {
        assert(self.inLoop, "\(what()) must run on the loop thread", file: file, line: line)
    }

    /// Runs `task` on the loop thread, soon. Safe from any thread. Tasks run in the order given.
    /// Returns false, dropping the task, once the loop is stopping.
    @discardableResult
    func execute(_ task: @escaping @Sendable () -> Void) -> Bool {
        let (accepted, mustWake) = self.inbox.withLock { inbox -> (Bool, Bool) in
            guard !inbox.stopping else { return (false, false) }
            inbox.tasks.append(task)
            if inbox.wakePending { return (true, false) }
            inbox.wakePending = true
            return (true, true)
        }
        if mustWake {
            var one: UInt64 = 1
            _ = write(self.wakeFD, &one, 8)
        }
        return accepted
    }

    /// Runs `task` now when called on the loop thread, else hands it over with ``execute(_:)``.
    /// Returns false, dropping the task, once the loop is stopping.
    @discardableResult
    func run(_ task: @escaping @Sendable () -> Void) -> Bool {
        if self.inLoop {
            task()
            return true
        }
        return self.execute(task)
    }

    /// Runs `task` on the loop thread after `milliseconds`. Loop thread only.
    func schedule(afterMilliseconds milliseconds: Int64, _ task: @escaping () -> Void) {
        self.assertInLoop("ProtonLoop.schedule")
        self.timers.append((Self.now().addingReportingOverflow(milliseconds).overflow ? Int64.max : Self.now() + milliseconds, task))
    }

    /// Adds a channel. Loop thread only.
    func register(_ channel: any ProtonChannel, writable: Bool = false) {
        self.assertInLoop("ProtonLoop.register")
        self.channels[channel.fd] = channel
        var event = epoll_event()
        event.events = EPOLLIN.rawValue | (writable ? EPOLLOUT.rawValue : 0)
        event.data.fd = channel.fd
        epoll_ctl(self.epollFD, EPOLL_CTL_ADD, channel.fd, &event)
    }

    /// Asks for readiness to write (or stops asking). Loop thread only.
    func setWriteInterest(_ channel: any ProtonChannel, _ wanted: Bool) {
        self.assertInLoop("ProtonLoop.setWriteInterest")
        var event = epoll_event()
        event.events = EPOLLIN.rawValue | (wanted ? EPOLLOUT.rawValue : 0)
        event.data.fd = channel.fd
        epoll_ctl(self.epollFD, EPOLL_CTL_MOD, channel.fd, &event)
    }

    /// Asks for `channel` to be serviced (its output written) before the loop waits again.
    /// Loop thread only.
    func markDirty(_ channel: any ProtonChannel) {
        self.assertInLoop("ProtonLoop.markDirty")
        self.dirty.append(channel)
    }

    /// Stops polling a channel for `milliseconds`, then polls it for input again (for a listener
    /// out of file descriptors, which epoll would otherwise report ready in a tight loop).
    func pause(_ channel: any ProtonChannel, milliseconds: Int64) {
        var event = epoll_event()
        event.events = 0
        event.data.fd = channel.fd
        epoll_ctl(self.epollFD, EPOLL_CTL_MOD, channel.fd, &event)
        self.schedule(afterMilliseconds: milliseconds) { [self] in
            guard self.channels[channel.fd] === channel else { return }
            self.setWriteInterest(channel, false)
        }
    }

    /// Moves a channel to a new socket (a connect retried on another address): the old socket is
    /// closed, `update` sets the channel's descriptor, and the new one is polled for writability.
    func replaceSocket(of channel: any ProtonChannel, with fd: Int32, update: (Int32) -> Void) {
        let old = channel.fd
        epoll_ctl(self.epollFD, EPOLL_CTL_DEL, old, nil)
        self.channels[old] = nil
        self.deadlines[old] = nil
        close(old)
        update(fd)
        self.register(channel, writable: true)
    }

    /// Removes a channel and closes its socket. Loop thread only.
    func deregister(_ channel: any ProtonChannel) {
        self.assertInLoop("ProtonLoop.deregister")
        epoll_ctl(self.epollFD, EPOLL_CTL_DEL, channel.fd, nil)
        self.channels[channel.fd] = nil
        self.deadlines[channel.fd] = nil
        close(channel.fd)
    }

    /// Stops the thread once the tasks queued so far ran; channels still registered are dropped.
    /// Later tasks are refused.
    func stop() {
        let mustWake = self.inbox.withLock { inbox -> Bool in
            guard !inbox.stopping else { return false }
            inbox.stopping = true
            return true
        }
        if mustWake {
            var one: UInt64 = 1
            _ = write(self.wakeFD, &one, 8)
        }
    }

    /// Waits until the loop thread has exited.
    func waitUntilStopped() async {
        await withCheckedContinuation { continuation in
            let done = self.finished.withLock { waiters -> Bool in
                guard waiters != nil else { return true }
                waiters!.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    /// Milliseconds of the monotonic clock: the time base of Proton's ticks here.
    static func now() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
    }

    // MARK: - The loop

    private func run() {
        hubcast_set_thread_name(String(self.name.prefix(15)))
        var events = [epoll_event](repeating: epoll_event(), count: 64)
        while true {
            let timeout = self.nextTimeout()
            let count = epoll_wait(self.epollFD, &events, Int32(events.count), timeout)
            if count < 0 && errno != EINTR { break }
            var serviceAll = false
            for index in 0..<max(0, Int(count)) {
                let fd = events[index].data.fd
                let flags = events[index].events
                if fd == self.wakeFD {
                    var value: UInt64 = 0
                    _ = read(self.wakeFD, &value, 8)
                    serviceAll = true
                    continue
                }
                guard let channel = self.channels[fd] else { continue }
                channel.handleIO(
                    readable: flags & EPOLLIN.rawValue != 0,
                    writable: flags & EPOLLOUT.rawValue != 0,
                    hangup: flags & (EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0
                )
                if let channel = self.channels[fd] { self.deadlines[fd] = channel.service(now: Self.now()) }
            }
            if self.runTasks() { break }
            if self.runTimers() { serviceAll = true }
            let now = Self.now()
            for (fd, channel) in self.channels {
                if serviceAll || (self.deadlines[fd].map { $0 <= now } ?? false) {
                    self.deadlines[fd] = channel.service(now: now)
                }
            }
            while !self.dirty.isEmpty {
                let touched = self.dirty
                self.dirty = []
                for channel in touched where self.channels[channel.fd] === channel {
                    self.deadlines[channel.fd] = channel.service(now: now)
                }
            }
        }
        for channel in self.channels.values { close(channel.fd) }
        self.channels = [:]
        // A later thread may reuse this thread's id: nothing may run "inline" as if on this loop.
        self.threadID.withLock { $0 = nil }
        close(self.epollFD)
        close(self.wakeFD)
        let waiters = self.finished.withLock { waiters -> [CheckedContinuation<Void, Never>] in
            defer { waiters = nil }
            return waiters ?? []
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Runs the queued tasks; returns true when the loop must stop.
    private func runTasks() -> Bool {
        while true {
            let (tasks, stopping) = self.inbox.withLock { inbox -> ([@Sendable () -> Void], Bool) in
                defer {
                    inbox.tasks = []
                    inbox.wakePending = false
                }
                return (inbox.tasks, inbox.stopping)
            }
            if tasks.isEmpty { return stopping }
            for task in tasks { task() }
        }
    }

    /// Runs the timers that are due; returns whether any ran (they may have changed channels).
    private func runTimers() -> Bool {
        guard !self.timers.isEmpty else { return false }
        let now = Self.now()
        let due = self.timers.filter { $0.deadline <= now }
        guard !due.isEmpty else { return false }
        self.timers.removeAll { $0.deadline <= now }
        for timer in due { timer.task() }
        return true
    }

    private func nextTimeout() -> Int32 {
        var next: Int64? = self.deadlines.values.min()
        if let timer = self.timers.map(\.deadline).min() { next = min(next ?? timer, timer) }
        guard let next else { return -1 }
        return Int32(clamping: max(0, next - Self.now()))
    }
}
