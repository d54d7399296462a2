import Dispatch
import Foundation
import Logging
import MnemoProtocol
import Synchronization

/// Writes summaries: an optional external command (e.g. one that asks an LLM), with the
/// built-in extractive summarizer as the default and the fallback.
///
/// The command gets one JSON object on stdin, `{"ns", "records": [{id, kind, content, at,
/// agent, tags}], "builtin"}` (`builtin` is the built-in summary, as a hint), and prints the
/// summary text on stdout. A non-zero exit, no output, or no answer within the timeout
/// falls back to the built-in summary and logs a warning.
public struct Summarizer: Sendable {
    /// argv of the external command; nil for the built-in summarizer only.
    public var command: [String]?
    /// How long the command may take, per summary.
    public var timeoutMs: Int

    /// A summarizer.
    public init(command: [String]? = nil, timeoutMs: Int = 10_000) {
        self.command = command
        self.timeoutMs = timeoutMs
    }

    /// A summary of `records`; `externalFailed` when the command was configured but failed.
    public func summarize(ns: String, records: [EpisodeRecord], maxBytes: Int, logger: Logger)
        -> (draft: SummaryDraft, externalFailed: Bool)
    {
        let builtin = BuiltinSummarizer.summarize(ns: ns, records: records)
        guard let command, !command.isEmpty else { return (builtin, false) }
        let input: JSON = .object([
            JSONMember("ns", .string(ns)),
            JSONMember("records", .array(records.map { r in
                .object([JSONMember("id", .string(r.id)), JSONMember("kind", .string(r.kind)),
                         JSONMember("content", .string(r.content)), JSONMember("at", .string(Timestamp.format(r.at))),
                         JSONMember("agent", .string(r.provenance.agent)),
                         JSONMember("tags", .array(r.tags.map(JSON.string)))])
            })),
            JSONMember("builtin", .string(builtin.content)),
        ])
        switch ExternalCommand.run(command, stdin: input.bytes, timeoutMs: timeoutMs, maxOutput: maxBytes) {
        case .success(let text):
            var data = builtin.data.objectValue ?? []
            data.removeAll { $0.key == "summarizer" }
            data.append(JSONMember("summarizer", "external"))
            return (SummaryDraft(content: text, data: .object(data)), false)
        case .failure(let why):
            logger.warning("external summarizer failed; used the built-in one",
                           metadata: ["command": "\(command[0])", "error": "\(why.description)", "ns": "\(ns)"])
            return (builtin, true)
        }
    }
}

/// Runs a command with input on stdin and a deadline.
enum ExternalCommand {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// The trimmed stdout of `argv` (non-empty, at most `maxOutput` bytes), or why not.
    static func run(_ argv: [String], stdin input: [UInt8], timeoutMs: Int, maxOutput: Int) -> Result<String, Failure> {
        // A child that exits without reading its input must not kill us with SIGPIPE on
        // the write (mnemod ignores SIGPIPE already; this covers other hosts of the library).
        signal(SIGPIPE, SIG_IGN)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: argv[0])
        process.arguments = Array(argv.dropFirst())
        let inPipe = Pipe()
        let outPipe = Pipe()
        process.standardInput = inPipe
        process.standardOutput = outPipe
        process.standardError = FileHandle.nullDevice
        let exited = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in exited.signal() }
        do {
            try process.run()
        } catch {
            return .failure(Failure(description: "cannot start: \(error.localizedDescription)"))
        }
        // Writer and reader run apart from the waiting thread, so a child that reads
        // slowly or writes a lot cannot deadlock on full pipes.
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) {
            let handle = inPipe.fileHandleForWriting
            try? handle.write(contentsOf: Data(input))
            try? handle.close()
        }
        let output = OutputBox()
        DispatchQueue.global().async(group: group) {
            let data = (try? outPipe.fileHandleForReading.readToEnd()) ?? nil
            output.set(data ?? Data())
        }
        if exited.wait(timeout: .now() + .milliseconds(timeoutMs)) == .timedOut {
            process.terminate()
            if exited.wait(timeout: .now() + .seconds(1)) == .timedOut {
                kill(process.processIdentifier, SIGKILL)
                exited.wait()
            }
            _ = group.wait(timeout: .now() + .seconds(1))
            return .failure(Failure(description: "timed out after \(timeoutMs) ms"))
        }
        _ = group.wait(timeout: .now() + .seconds(5))
        guard process.terminationReason == .exit, process.terminationStatus == 0 else {
            return .failure(Failure(description: "exited with status \(process.terminationStatus)"))
        }
        let text = String(decoding: output.get(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { return .failure(Failure(description: "printed nothing")) }
        guard text.utf8.count <= maxOutput else {
            return .failure(Failure(description: "printed more than \(maxOutput) bytes"))
        }
        return .success(text)
    }
}

/// The child's output, handed from the reading thread to the waiting one.
private final class OutputBox: Sendable {
    private let data = Mutex(Data())
    func set(_ d: Data) { data.withLock { $0 = d } }
    func get() -> Data { data.withLock { $0 } }
}
