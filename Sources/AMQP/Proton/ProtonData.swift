// Hubcast — moving values and conditions between Swift and Proton.

internal import CQpidProton

enum ProtonData {
    /// Replaces the content of `data` with `value`, through AMQP's binary encoding.
    static func write(_ value: AMQPValue, to data: OpaquePointer) {
        pn_data_clear(data)
        let bytes = value.encoded()
        bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { chars in
                _ = pn_data_decode(data, chars.baseAddress, chars.count)
            }
        }
    }

    /// Writes a symbol-keyed map, or leaves `data` empty when `pairs` is empty.
    static func write(_ pairs: [(AMQPSymbol, AMQPValue)], to data: OpaquePointer) {
        guard !pairs.isEmpty else { return }
        self.write(.map(pairs.map { (.symbol($0.0), $0.1) }), to: data)
    }

    /// The value held by `data`, or nil when it is empty or cannot be read.
    static func read(_ data: OpaquePointer?) -> AMQPValue? {
        guard let data, pn_data_size(data) > 0 else { return nil }
        pn_data_rewind(data)
        let size = pn_data_encoded_size(data)
        guard size > 0 else { return nil }
        var bytes = [UInt8](repeating: 0, count: size)
        let written = bytes.withUnsafeMutableBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { pn_data_encode(data, $0.baseAddress, $0.count) }
        }
        guard written > 0 else { return nil }
        var decoder = AMQPDecoder(Array(bytes.prefix(written)))
        return try? decoder.readValue()
    }

    /// A symbol-keyed map from `data`, or empty.
    static func readSymbolMap(_ data: OpaquePointer?) -> [(AMQPSymbol, AMQPValue)] {
        guard case .map(let pairs)? = self.read(data) else { return [] }
        return pairs.compactMap { key, value in key.text.map { (AMQPSymbol($0), value) } }
    }

    /// Copies a Proton condition, or nil when it is not set.
    static func condition(_ condition: OpaquePointer?) -> AMQPCondition? {
        guard let condition, pn_condition_is_set(condition) else { return nil }
        let name = pn_condition_get_name(condition).map { String(cString: $0) } ?? AMQPCondition.internalError
        let description = pn_condition_get_description(condition).map { String(cString: $0) }
        return AMQPCondition(name: name, description: description, info: self.read(pn_condition_info(condition)))
    }

    /// Fills a Proton condition.
    static func set(_ condition: AMQPCondition, on target: OpaquePointer) {
        pn_condition_set_name(target, condition.name)
        if let description = condition.description { pn_condition_set_description(target, description) }
        if let info = condition.info { self.write(info, to: pn_condition_info(target)) }
    }

    /// The text of a `pn_bytes_t`.
    static func string(_ bytes: pn_bytes_t) -> String? {
        guard let start = bytes.start, bytes.size > 0 else { return nil }
        return start.withMemoryRebound(to: UInt8.self, capacity: bytes.size) {
            String(decoding: UnsafeBufferPointer(start: $0, count: bytes.size), as: UTF8.self)
        }
    }

    /// The address of a terminus.
    static func address(_ terminus: OpaquePointer?) -> String? {
        guard let terminus, let text = pn_terminus_get_address(terminus) else { return nil }
        return String(cString: text)
    }
}
