import MnemoProtocol

/// Parses `text` with the default depth, failing the test on error.
func parsed(_ text: String, maxDepth: Int = 64) throws -> JSON {
    try JSONParser.parse(text, maxDepth: maxDepth)
}

/// Parses raw bytes; returns the error, or nil when the bytes were accepted.
func parseError(_ bytes: [UInt8], maxDepth: Int = 64) -> JSONParseError? {
    do {
        _ = try JSONParser.parse(bytes, maxDepth: maxDepth)
        return nil
    } catch {
        return error
    }
}

/// Parses a string; returns the error, or nil when it was accepted.
func parseError(_ text: String, maxDepth: Int = 64) -> JSONParseError? {
    parseError(Array(text.utf8), maxDepth: maxDepth)
}

/// Decodes one request line as the server would.
func decode(_ line: String, maxDepth: Int = 64, maxBatch: Int = 1000) -> RPCLine {
    Array(line.utf8).withUnsafeBufferPointer { RPC.decode(line: $0, maxDepth: maxDepth, maxBatch: maxBatch) }
}

/// A small deterministic generator (SplitMix64) for property-style loops.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
