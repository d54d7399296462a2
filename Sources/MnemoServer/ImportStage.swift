import MnemoProtocol
import Synchronization

/// Lines of a streamed `admin.import` collected across calls on one connection
/// (`{lines, more: true}`), imported whole by the call without `more`. They belong to the
/// connection: closing it discards them.
final class ImportStage: Sendable {
    private let state = Mutex<(bytes: [UInt8], lines: Int)>(([], 0))

    /// Appends `lines` (export lines, each a JSON object) as JSONL.
    /// - Throws: -32602 naming the item that is not an object; `LIMIT_EXCEEDED` past `max`
    ///   bytes, after which everything staged is discarded.
    /// - Returns: lines and bytes staged so far.
    func append(_ lines: [JSON], field: String, max: Int) throws(WireError) -> (lines: Int, bytes: Int) {
        var chunk: [UInt8] = []
        for (i, line) in lines.enumerated() {
            guard line.objectValue != nil else { throw .invalidParams("\(field)[\(i)]", "must be an export line (a JSON object)") }
            chunk += line.bytes
            chunk.append(0x0A)
        }
        return try state.withLock { s throws(WireError) in
            guard s.bytes.count + chunk.count <= max else {
                s = ([], 0)
                throw .limit("max_import_bytes", max: max, "a streamed import holds at most \(max) bytes; the lines staged so far were discarded")
            }
            s.bytes += chunk
            s.lines += lines.count
            return (s.lines, s.bytes.count)
        }
    }

    /// Everything staged, emptying the stage.
    func take() -> [UInt8] {
        state.withLock { s in
            defer { s = ([], 0) }
            return s.bytes
        }
    }
}
