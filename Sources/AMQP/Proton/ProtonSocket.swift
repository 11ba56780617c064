// Hubcast — plain non-blocking TCP sockets for the loop.

#if canImport(Glibc)
import Glibc
#endif

enum ProtonSocket {
    /// A resolved socket address.
    struct Address {
        var family: Int32
        var bytes: [UInt8]
    }

    /// Resolves `host` to its addresses, in the resolver's order.
    static func resolve(host: String, port: Int) throws -> [Address] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else {
            throw AMQPError(.connectionFailed, "cannot resolve host \(host): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        var addresses: [Address] = []
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let info = entry {
            entry = info.pointee.ai_next
            guard let address = info.pointee.ai_addr else { continue }
            let bytes = UnsafeRawBufferPointer(start: address, count: Int(info.pointee.ai_addrlen))
            addresses.append(Address(family: info.pointee.ai_family, bytes: Array(bytes)))
        }
        return addresses
    }

    /// Starts a non-blocking connect to `address`. Returns the socket; the connect finishes when the
    /// socket turns writable (see ``connectError(_:)``). Throws when it fails at once.
    static func connect(to address: Address, host: String, port: Int) throws -> Int32 {
        let fd = socket(
            address.family,
            Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
                | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw AMQPError(.connectionFailed, "cannot create a socket: \(ProtonLoop.errnoText())") }
        Self.setNoDelay(fd)
        let result = address.bytes.withUnsafeBytes { raw in
            Glibc.connect(fd, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(raw.count))
        }
        if result == 0 || errno == EINPROGRESS { return fd }
        let error = Self.connectFailure(errno, host: host, port: port)
        close(fd)
        throw error
    }

    /// Connects to the first of `addresses` that does not fail at once; returns the socket and the
    /// addresses left to try if this one fails later.
    static func connect(_ addresses: [Address], host: String, port: Int) throws -> (fd: Int32, rest: [Address]) {
        var lastError = AMQPError(.connectionFailed, "no address for \(host)")
        for (index, address) in addresses.enumerated() {
            do {
                return (try Self.connect(to: address, host: host, port: port), Array(addresses[(index + 1)...]))
            } catch let error as AMQPError {
                lastError = error
            }
        }
        throw lastError
    }

    static func connectFailure(_ code: Int32, host: String, port: Int) -> AMQPError {
        if code == ECONNREFUSED {
            return AMQPError(.connectionRefused, "connection to \(host):\(port) refused (nothing listens there)")
        }
        return AMQPError(.connectionFailed, "cannot connect to \(host):\(port): \(ProtonLoop.errnoText(code))")
    }

    /// The pending error of a non-blocking connect (0 when connected).
    static func connectError(_ fd: Int32) -> Int32 {
        var code: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &length)
        return code
    }

    static func setNoDelay(_ fd: Int32) {
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Binds and listens; port 0 picks a free port. Returns the socket and the bound port.
    static func listen(host: String, port: Int) throws -> (fd: Int32, port: Int) {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host.isEmpty ? nil : host, String(port), &hints, &list)
        guard status == 0, let info = list else {
            throw AMQPError(.invalidConfiguration, "cannot resolve listen address \(host): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        let fd = socket(
            info.pointee.ai_family,
            Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
                | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw AMQPError(.connectionFailed, "cannot create a socket: \(ProtonLoop.errnoText())") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0, Glibc.listen(fd, 1024) == 0 else {
            let text = ProtonLoop.errnoText()
            close(fd)
            throw AMQPError(.connectionFailed, "cannot listen on \(host):\(port): \(text)")
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let bound = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address -> Int in
                getsockname(fd, address, &length)
                if address.pointee.sa_family == sa_family_t(AF_INET6) {
                    return address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                        Int(UInt16(bigEndian: $0.pointee.sin6_port))
                    }
                }
                return address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                    Int(UInt16(bigEndian: $0.pointee.sin_port))
                }
            }
        }
        return (fd, bound)
    }
}
