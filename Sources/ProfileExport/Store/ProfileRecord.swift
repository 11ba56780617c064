// Hubcast — how a profile is written into the durable store: one compact binary record.

/// Encodes a profile (without its key and profile id, which have columns of their own) as a
/// binary record, and reads it back; records of the first, JSON, format still decode.
///
/// Format 2 (all integers LEB128 varints, signed ones zig-zag encoded; a string is its UTF-8
/// length then its bytes; a list is its count then its items):
///
///     record      = 0x02 identities attributes memberships ruleVersion:signed decisions
///     identities  = count (namespace:string ids:(count≥1 string…))…
///     attributes  = count (key:string value)…                       — the members of an object
///     value       = 0 null | 1 false | 2 true | 3 int:signed | 4 double:8 bytes little endian
///                 | 5 string | 6 count value… | 7 count (key:string value)…
///     memberships = count (audience:string status:byte seconds:signed)…   — realized 0, existing 1, exited 2
///     decisions   = count (dataflow:string exported:byte time:signed count trigger… stayed:strings)…
///     trigger     = 0 audience:string status:byte | 1 added:(count (namespace:string id:string)…) removed:(same)
///                 | 2 count (count≥1 component:string…)… | 3 audienceIds:strings
///
/// Format 1 is the JSON object `{"i": {namespace: [ids]}, "a": attributes, "m": {audience:
/// [status, seconds]}, "g": rule version, "d": {dataflow: decision}}`; it starts with `{`.
///
/// Decoding checks every length against the bytes left, so a damaged record throws
/// ``ProfileExportError/Code/store`` and never reads outside the record.
enum ProfileRecord {
    /// The first byte of a format 2 record.
    static let version: UInt8 = 2
    /// How deep attribute values may nest in a record (the JSON parser allows 128).
    static let maximumDepth = 1024

    static func encode(_ profile: Profile) -> [UInt8] {
        withEncoded(profile) { Array($0) }
    }

    /// Encodes `profile` and calls `body` with the record's bytes, valid only inside `body` (no copy
    /// into an array).
    static func withEncoded<T, Failure: Error>(_ profile: Profile, _ body: (UnsafeBufferPointer<UInt8>) throws(Failure) -> T) throws(Failure) -> T {
        var writer = RecordWriter(capacity: 1024)
        writer.profile(profile)
        return try writer.withBytes(body)
    }

    /// Reads a record; with `decisions` false, the profile's `lastDecisions` are left empty (format 2
    /// records are not read past them).
    static func decode(
        _ bytes: UnsafeBufferPointer<UInt8>, key: Int64, profileId: String?, decisions: Bool = true
    ) throws(ProfileExportError) -> Profile {
        guard let first = bytes.first else { throw damaged(key, "it is empty") }
        if first == 0x7B { return try decodeJSON(bytes, key: key, profileId: profileId) }
        guard first == version else { throw damaged(key, "its format \(first) is unknown") }
        var reader = RecordReader(bytes: bytes, index: 1)
        do {
            return try reader.profile(key: key, profileId: profileId, decisions: decisions)
        } catch {
            throw damaged(key, "\(error.reason) at byte \(reader.index)")
        }
    }

    private static func damaged(_ key: Int64, _ reason: String) -> ProfileExportError {
        ProfileExportError(.store, "the stored record of profile \(key) is damaged: \(reason)")
    }

    /// Reads a format 1 (JSON) record.
    static func decodeJSON(_ bytes: UnsafeBufferPointer<UInt8>, key: Int64, profileId: String?) throws(ProfileExportError) -> Profile {
        let damaged = ProfileExportError(.store, "the stored record of profile \(key) is damaged")
        let parsed: JSONValue
        do { parsed = try JSONParser.parse(bytes: bytes) } catch { throw damaged }
        guard case .object(let record) = parsed else { throw damaged }
        var profile = Profile(key: key, profileId: profileId)
        if case .object(let namespaces)? = record["i"] {
            for (namespace, ids) in namespaces {
                guard case .array(let list) = ids else { throw damaged }
                for case .string(let id) in list { profile.identities.add(Identity(namespace: namespace, id: id)) }
            }
        }
        if case .object(let attributes)? = record["a"] { profile.attributes = attributes }
        if case .object(let memberships)? = record["m"] {
            for (audience, entry) in memberships {
                guard case .array(let pair) = entry, pair.count == 2, case .string(let status) = pair[0],
                    let parsed = MembershipStatus(rawValue: status), case .int(let seconds) = pair[1]
                else { throw damaged }
                profile.memberships[audience] = Membership(parsed, at: Timestamp(seconds: seconds))
            }
        }
        if case .int(let version)? = record["g"] { profile.ruleVersion = version }
        if case .object(let decisions)? = record["d"] {
            for (dataflow, entry) in decisions {
                if let decision = ExportDecision(json: entry) { profile.lastDecisions[dataflow] = decision }
            }
        }
        return profile
    }
}

private enum ValueTag {
    static let null: UInt8 = 0
    static let `false`: UInt8 = 1
    static let `true`: UInt8 = 2
    static let int: UInt8 = 3
    static let double: UInt8 = 4
    static let string: UInt8 = 5
    static let array: UInt8 = 6
    static let object: UInt8 = 7
}

private enum TriggerTag {
    static let membership: UInt8 = 0
    static let identity: UInt8 = 1
    static let attribute: UInt8 = 2
    static let backfill: UInt8 = 3
}

extension MembershipStatus {
    /// The status's byte in a record.
    fileprivate var code: UInt8 {
        switch self {
        case .realized: 0
        case .existing: 1
        case .exited: 2
        }
    }

    fileprivate init?(code: UInt8) {
        switch code {
        case 0: self = .realized
        case 1: self = .existing
        case 2: self = .exited
        default: return nil
        }
    }
}

// MARK: - Writing

/// Appends to a growing buffer of raw memory; ``bytes`` copies the result out once.
///
/// Collections are walked by index over their element arrays so that writing borrows every key
/// and value instead of copying (and retaining) it.
private struct RecordWriter: ~Copyable {
    private var base: UnsafeMutablePointer<UInt8>
    private var count = 0
    private var capacity: Int

    init(capacity: Int) {
        base = .allocate(capacity: capacity)
        self.capacity = capacity
    }

    deinit { base.deallocate() }

    func withBytes<T, Failure: Error>(_ body: (UnsafeBufferPointer<UInt8>) throws(Failure) -> T) throws(Failure) -> T {
        try body(UnsafeBufferPointer(start: base, count: count))
    }

    @inline(__always)
    private mutating func reserve(_ extra: Int) {
        if count + extra > capacity { grow(extra) }
    }

    @inline(never)
    private mutating func grow(_ extra: Int) {
        let newCapacity = max(capacity * 2, count + extra)
        let grown = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        grown.initialize(from: base, count: count)
        base.deallocate()
        base = grown
        capacity = newCapacity
    }

    @inline(__always)
    mutating func byte(_ value: UInt8) {
        reserve(1)
        base[count] = value
        count += 1
    }

    @inline(__always)
    mutating func varint(_ value: UInt64) {
        reserve(10)
        var value = value
        while value >= 0x80 {
            base[count] = UInt8(truncatingIfNeeded: value) | 0x80
            count += 1
            value >>= 7
        }
        base[count] = UInt8(truncatingIfNeeded: value)
        count += 1
    }

    @inline(__always)
    mutating func count(_ value: Int) { varint(UInt64(value)) }

    /// Zig-zag: 0, -1, 1, -2, … become 0, 1, 2, 3, …
    @inline(__always)
    mutating func signed(_ value: Int64) { varint(UInt64(bitPattern: (value &<< 1) ^ (value >> 63))) }

    mutating func string(_ text: String) {
        let utf8 = text.utf8
        let length = utf8.count
        count(length)
        reserve(length)
        let copied: Void? = utf8.withContiguousStorageIfAvailable { source in
            guard let address = source.baseAddress else { return }
            if length <= 16 {
                // Most keys and ids are short: a loop beats calling memcpy.
                for offset in 0..<length { base[count + offset] = address[offset] }
            } else {
                (base + count).initialize(from: address, count: length)
            }
        }
        if copied == nil {
            for unit in utf8 {
                base[count] = unit
                count += 1
            }
        } else {
            count += length
        }
    }

    mutating func strings(_ texts: [String]) {
        count(texts.count)
        texts.withUnsafeBufferPointer { texts in
            for index in texts.indices { string(texts[index]) }
        }
    }

    mutating func members(_ object: JSONObject) {
        keyed(object) { $0.value($1) }
    }

    /// A keyed list: its count, then each key followed by what `write` writes of its value (read
    /// back by the one keyed-list reader).
    mutating func keyed<Value>(_ dictionary: FlatDictionary<String, Value>, _ write: (inout Self, Value) -> Void) {
        count(dictionary.count)
        dictionary.elements.withUnsafeBufferPointer { members in
            for index in members.indices {
                string(members[index].key)
                write(&self, members[index].value)
            }
        }
    }

    mutating func value(_ value: JSONValue) {
        switch value {
        case .null: byte(ValueTag.null)
        case .bool(let flag): byte(flag ? ValueTag.true : ValueTag.false)
        case .int(let number):
            byte(ValueTag.int)
            signed(number)
        case .double(let number):
            reserve(9)
            base[count] = ValueTag.double
            UnsafeMutableRawPointer(base + count + 1).storeBytes(of: number.bitPattern.littleEndian, as: UInt64.self)
            count += 9
        case .string(let text):
            byte(ValueTag.string)
            string(text)
        case .array(let items):
            byte(ValueTag.array)
            count(items.count)
            items.withUnsafeBufferPointer { items in
                for index in items.indices { self.value(items[index]) }
            }
        case .object(let object):
            byte(ValueTag.object)
            members(object)
        }
    }

    mutating func identities(_ identities: [Identity]) {
        count(identities.count)
        for index in identities.indices {
            string(identities[index].namespace)
            string(identities[index].id)
        }
    }

    mutating func trigger(_ trigger: ExportTrigger) {
        switch trigger {
        case .membership(let audienceId, let status):
            byte(TriggerTag.membership)
            string(audienceId)
            byte(status.code)
        case .identity(let added, let removed):
            byte(TriggerTag.identity)
            identities(added)
            identities(removed)
        case .attribute(let paths):
            byte(TriggerTag.attribute)
            count(paths.count)
            for index in paths.indices { strings(paths[index].components) }
        case .backfill(let audienceIds):
            byte(TriggerTag.backfill)
            strings(audienceIds)
        }
    }

    mutating func profile(_ profile: Profile) {
        byte(ProfileRecord.version)
        keyed(profile.identities.namespaces) { $0.strings($1) }
        members(profile.attributes)
        keyed(profile.memberships) { writer, membership in
            writer.byte(membership.status.code)
            writer.signed(membership.lastQualificationTime.seconds)
        }
        signed(profile.ruleVersion)
        keyed(profile.lastDecisions) { $0.decision($1) }
    }

    mutating func decision(_ decision: ExportDecision) {
        byte(decision.exported ? 1 : 0)
        signed(decision.time.seconds)
        count(decision.triggers.count)
        decision.triggers.withUnsafeBufferPointer { triggers in
            for index in triggers.indices { trigger(triggers[index]) }
        }
        strings(decision.stayed)
    }
}

// MARK: - Reading

/// Why a record could not be read; ``ProfileRecord/decode(_:key:profileId:)`` adds the profile.
private struct RecordDamage: Error {
    let reason: StaticString
}

private struct RecordReader {
    let bytes: UnsafeBufferPointer<UInt8>
    var index: Int

    var remaining: Int { bytes.count - index }

    mutating func profile(key: Int64, profileId: String?, decisions: Bool) throws(RecordDamage) -> Profile {
        var profile = Profile(key: key, profileId: profileId)
        let namespaceCount = try count(minimumSize: 3)
        if namespaceCount > 0 {
            var namespaces = ContiguousArray<(key: String, value: [String])>()
            namespaces.reserveCapacity(namespaceCount)
            for _ in 0..<namespaceCount {
                let name = try string()
                let ids = try strings()
                guard !ids.isEmpty else { throw RecordDamage(reason: "a namespace without ids") }
                guard !Self.hasDuplicates(ids) else { throw RecordDamage(reason: "an identity twice") }
                namespaces.append((key: name, value: ids))
            }
            guard !Self.hasDuplicates(namespaces.lazy.map { $0.key }) else { throw RecordDamage(reason: "a namespace twice") }
            profile.identities = IdentityMap(uncheckedNamespaces: FlatDictionary(uncheckedUniqueElements: namespaces))
        }
        profile.attributes = try members(depth: 0)
        profile.memberships = try keyed(minimumSize: 3, duplicate: "an audience twice") { (reader) throws(RecordDamage) in
            guard let status = MembershipStatus(code: try reader.byte()) else { throw RecordDamage(reason: "an unknown membership status") }
            return Membership(status, at: Timestamp(seconds: try reader.signed()))
        }
        profile.ruleVersion = try signed()
        guard decisions else { return profile }
        // A decision is at least: dataflow (1), exported (1), time (1), trigger count (1), stayed count (1).
        profile.lastDecisions = try keyed(minimumSize: 5, duplicate: "a dataflow twice") { (reader) throws(RecordDamage) in try reader.decision() }
        guard index == bytes.count else { throw RecordDamage(reason: "bytes after the record") }
        return profile
    }

    /// A count, then that many (name, value) pairs with unique names (`duplicate` is the error otherwise).
    mutating func keyed<Value>(
        minimumSize: Int, duplicate: StaticString, _ value: (inout Self) throws(RecordDamage) -> Value
    )
        throws(RecordDamage) -> FlatDictionary<String, Value>
    {
        let total = try count(minimumSize: minimumSize)
        guard total > 0 else { return [:] }
        var members = ContiguousArray<(key: String, value: Value)>()
        members.reserveCapacity(total)
        for _ in 0..<total {
            let name = try string()
            members.append((key: name, value: try value(&self)))
        }
        guard !Self.hasDuplicates(members.lazy.map { $0.key }) else { throw RecordDamage(reason: duplicate) }
        return FlatDictionary(uncheckedUniqueElements: members)
    }

    mutating func decision() throws(RecordDamage) -> ExportDecision {
        let exported: Bool
        switch try byte() {
        case 0: exported = false
        case 1: exported = true
        default: throw RecordDamage(reason: "a decision neither exported nor not")
        }
        let time = Timestamp(seconds: try signed())
        let triggerCount = try count(minimumSize: 2)
        var triggers: [ExportTrigger] = []
        triggers.reserveCapacity(triggerCount)
        for _ in 0..<triggerCount { triggers.append(try trigger()) }
        return ExportDecision(exported: exported, time: time, triggers: triggers, stayed: try strings())
    }

    @inline(__always)
    mutating func byte() throws(RecordDamage) -> UInt8 {
        guard index < bytes.count else { throw RecordDamage(reason: "the record ends early") }
        defer { index += 1 }
        return bytes[index]
    }

    @inline(__always)
    mutating func varint() throws(RecordDamage) -> UInt64 {
        // One byte is the common case: small counts, tags, lengths.
        if index < bytes.count, bytes[index] < 0x80 {
            defer { index += 1 }
            return UInt64(bytes[index])
        }
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let next = try byte()
            guard shift < 63 || (shift == 63 && next <= 1) else { throw RecordDamage(reason: "a number too large") }
            value |= UInt64(next & 0x7F) << shift
            if next < 0x80 { return value }
            shift += 7
        }
    }

    @inline(__always)
    mutating func signed() throws(RecordDamage) -> Int64 {
        let zigzag = try varint()
        return Int64(bitPattern: (zigzag >> 1) ^ (0 &- (zigzag & 1)))
    }

    /// A count of items that take at least `minimumSize` bytes each, so it cannot exceed the rest.
    @inline(__always)
    mutating func count(minimumSize: Int) throws(RecordDamage) -> Int {
        let value = try varint()
        guard value <= UInt64(remaining / minimumSize) else { throw RecordDamage(reason: "a count beyond the end of the record") }
        return Int(value)
    }

    mutating func string() throws(RecordDamage) -> String {
        let length = try count(minimumSize: 1)
        if length == 0 { return "" }
        defer { index += length }
        // Copied in and checked as UTF-8 (invalid bytes replaced) without the generic decoding path.
        let source = UnsafeBufferPointer(rebasing: bytes[index..<(index + length)])
        return String(unsafeUninitializedCapacity: length) { target in
            _ = target.initialize(from: source)
            return length
        }
    }

    mutating func strings() throws(RecordDamage) -> [String] {
        let count = try count(minimumSize: 1)
        if count == 0 { return [] }
        var texts: [String] = []
        texts.reserveCapacity(count)
        for _ in 0..<count { texts.append(try string()) }
        return texts
    }

    mutating func members(depth: Int) throws(RecordDamage) -> JSONObject {
        let count = try count(minimumSize: 2)
        if count == 0 { return [:] }
        var members = ContiguousArray<(key: String, value: JSONValue)>()
        members.reserveCapacity(count)
        for _ in 0..<count {
            let name = try string()
            members.append((key: name, value: try value(depth: depth + 1)))
        }
        guard !Self.hasDuplicates(members.lazy.map { $0.key }) else { throw RecordDamage(reason: "an object member twice") }
        return JSONObject(uncheckedUniqueElements: members)
    }

    /// Whether `texts` has an element twice: pairwise for the few members objects usually have.
    static func hasDuplicates(_ texts: some RandomAccessCollection<String>) -> Bool {
        if texts.count < 2 { return false }
        if texts.count <= 16 {
            var index = texts.startIndex
            while index != texts.endIndex {
                let text = texts[index]
                var other = texts.index(after: index)
                while other != texts.endIndex {
                    if texts[other] == text { return true }
                    other = texts.index(after: other)
                }
                index = texts.index(after: index)
            }
            return false
        }
        return Set(texts).count != texts.count
    }

    mutating func value(depth: Int) throws(RecordDamage) -> JSONValue {
        guard depth <= ProfileRecord.maximumDepth else { throw RecordDamage(reason: "values nested too deep") }
        switch try byte() {
        case ValueTag.null: return .null
        case ValueTag.false: return .bool(false)
        case ValueTag.true: return .bool(true)
        case ValueTag.int: return .int(try signed())
        case ValueTag.double:
            guard remaining >= 8 else { throw RecordDamage(reason: "the record ends early") }
            defer { index += 8 }
            let bits = UnsafeRawPointer(bytes.baseAddress! + index).loadUnaligned(as: UInt64.self)
            return .double(Double(bitPattern: UInt64(littleEndian: bits)))
        case ValueTag.string: return .string(try string())
        case ValueTag.array:
            let count = try count(minimumSize: 1)
            var items: [JSONValue] = []
            items.reserveCapacity(count)
            for _ in 0..<count { items.append(try value(depth: depth + 1)) }
            return .array(items)
        case ValueTag.object: return .object(try members(depth: depth))
        default: throw RecordDamage(reason: "an unknown value tag")
        }
    }

    mutating func identities() throws(RecordDamage) -> [Identity] {
        let count = try count(minimumSize: 2)
        var identities: [Identity] = []
        identities.reserveCapacity(count)
        for _ in 0..<count { identities.append(Identity(namespace: try string(), id: try string())) }
        return identities
    }

    mutating func trigger() throws(RecordDamage) -> ExportTrigger {
        switch try byte() {
        case TriggerTag.membership:
            let audience = try string()
            guard let status = MembershipStatus(code: try byte()) else { throw RecordDamage(reason: "an unknown membership status") }
            return .membership(audienceId: audience, status: status)
        case TriggerTag.identity:
            return .identity(added: try identities(), removed: try identities())
        case TriggerTag.attribute:
            let count = try count(minimumSize: 2)
            var paths: [AttributePath] = []
            paths.reserveCapacity(count)
            for _ in 0..<count {
                let components = try strings()
                guard !components.isEmpty else { throw RecordDamage(reason: "an attribute path without steps") }
                paths.append(AttributePath(components: components))
            }
            return .attribute(paths: paths)
        case TriggerTag.backfill:
            return .backfill(audienceIds: try strings())
        default:
            throw RecordDamage(reason: "an unknown trigger")
        }
    }
}
