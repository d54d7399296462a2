import Foundation
import MnemoClient
import MnemoProtocol
import Testing

/// A real `mnemod` process on a temporary socket, stopped when the test ends.
final class Daemon: @unchecked Sendable {
    // @unchecked: `process` is set once in init and only read afterwards.
    let dir: URL
    let socket: String
    let dataDir: String
    let process: Process
    /// The daemon's transfer directory (the default, `DATA_DIR/transfer`).
    var transferDir: String { dataDir + "/transfer" }
    let stderrPipe = Pipe()
    /// Whether this instance removes the directory when released (a restarted daemon
    /// takes the directory over).
    private var ownsDirectory = true

    /// Starts mnemod with `config` (TOML text) and waits until it answers.
    /// `environment` is added to the test's own.
    init(config: String = "", extraArgs: [String] = [], dir: URL? = nil, launcher: [String] = [],
         environment: [String: String] = [:]) throws {
        let dir = dir ?? FileManager.default.temporaryDirectory.appendingPathComponent("mnemo-e2e-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        self.dir = dir
        socket = dir.appendingPathComponent("mnemo.sock").path
        dataDir = dir.appendingPathComponent("data").path
        let configPath = dir.appendingPathComponent("mnemod.toml").path
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
        process = Process()
        let args = ["--socket", socket, "--data-dir", dataDir, "--config", configPath, "--log-level", "warning"] + extraArgs
        if let tool = launcher.first {
            // e.g. prlimit: run mnemod under another program.
            process.executableURL = URL(fileURLWithPath: tool)
            process.arguments = Array(launcher.dropFirst()) + [Daemon.binary("mnemod")] + args
        } else {
            process.executableURL = URL(fileURLWithPath: Daemon.binary("mnemod"))
            process.arguments = args
        }
        process.standardError = stderrPipe
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        try process.run()
        try waitUntilReady()
    }

    /// Restarts on the same socket and data directory.
    func restarted(config: String = "") throws -> Daemon {
        kill()
        let next = try Daemon(config: config, dir: dir)
        ownsDirectory = false
        return next
    }

    private func waitUntilReady() throws {
        for _ in 0..<500 {
            if let c = try? MnemoClient(socketPath: socket), (try? c.call("admin.health")) != nil { return }
            guard process.isRunning else { throw DaemonError("mnemod exited with status \(process.terminationStatus)") }
            usleep(20_000)
        }
        throw DaemonError("mnemod did not answer on \(socket) within 10 s")
    }

    /// A client that has said hello as `agent`.
    func client(_ agent: String = "tester") throws -> MnemoClient {
        try MnemoClient(socketPath: socket, agent: agent)
    }

    /// Runs the `mnemo` CLI against this daemon: exit status, stdout, stderr.
    func cli(_ args: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Daemon.binary("mnemo"))
        p.arguments = args + ["--socket", socket]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    /// SIGTERM, then waits for exit; returns the exit status.
    @discardableResult
    func stop() -> Int32 {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        return process.terminationStatus
    }

    /// SIGKILL: a crash, no cleanup.
    func kill() {
        if process.isRunning {
            Foundation.kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    deinit {
        kill()
        if ownsDirectory { try? FileManager.default.removeItem(at: dir) }
    }

    /// Runs mnemod with `arguments` until it exits (a start it is expected to refuse):
    /// its exit status and stderr. `environment` is added to the test's own.
    static func runToExit(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, stderr: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary("mnemod"))
        p.arguments = arguments
        if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let err = Pipe()
        p.standardError = err
        try p.run()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, text)
    }

    /// Path of a built executable of this package.
    static func binary(_ name: String) -> String {
        if let env = ProcessInfo.processInfo.environment["MNEMO_BIN_DIR"] { return env + "/" + name }
        // The test bundle sits beside the package's executables.
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(name).path
        if FileManager.default.isExecutableFile(atPath: beside) { return beside }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/\(name)").path
    }
}

struct DaemonError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// A raw socket connection for framing tests: bytes in, lines out.
final class RawConnection {
    let fd: Int32
    private var buffer: [UInt8] = []

    init(_ path: String) throws {
        switch UnixSocket.connect(path) {
        case .success(let connected): fd = connected
        case .failure(let e): throw DaemonError(e.description)
        }
    }

    deinit { close(fd) }

    func send(_ text: String) { send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + off, $0.count - off, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            off += n
        }
    }

    /// The next line as JSON, or nil on timeout or EOF.
    func readJSON(timeoutMs: Int32 = 5000) -> JSON? {
        guard let line = readLine(timeoutMs: timeoutMs) else { return nil }
        return try? JSONParser.parse(line)
    }

    /// The next raw line, or nil on timeout or EOF.
    func readLine(timeoutMs: Int32 = 5000) -> [UInt8]? {
        nextLine(fd: fd, buffer: &buffer, timeoutMs: timeoutMs)
    }

    /// Whether the server closed the connection (EOF, or a reset when it closed with our
    /// request unread, within the timeout).
    func isClosedByPeer(timeoutMs: Int32 = 5000) -> Bool {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, timeoutMs) > 0 else { return false }
        var byte: UInt8 = 0
        return read(fd, &byte, 1) <= 0
    }
}

/// The next `\n`-terminated line read from `fd` (bytes after it stay in `buffer`), or nil
/// on timeout or EOF.
func nextLine(fd: Int32, buffer: inout [UInt8], timeoutMs: Int32) -> [UInt8]? {
    while true {
        if let nl = buffer.firstIndex(of: 0x0A) {
            let line = Array(buffer[..<nl])
            buffer.removeSubrange(...nl)
            return line
        }
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, timeoutMs) > 0 else { return nil }
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return nil }
        buffer.append(contentsOf: chunk[0..<n])
    }
}

/// The wire error of a failed call, if it failed with one.
func wireError(_ body: () throws -> Any) -> WireError? {
    do {
        _ = try body()
        return nil
    } catch let ClientError.server(e) {
        return e
    } catch {
        return nil
    }
}
