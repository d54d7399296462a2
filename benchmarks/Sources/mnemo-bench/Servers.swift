import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A server process started and stopped by the harness, listening on a Unix socket only.
/// @unchecked Sendable: client threads read only the immutable `socket`; start and stop
/// happen on the main thread.
final class ServerProcess: @unchecked Sendable {
    let process = Process()
    let socket: String
    let dir: String
    /// Whether `stop()` removes `dir` (false when the caller keeps the data for a restart).
    let ownsDir: Bool

    init(executable: String, arguments: [String], socket: String, dir: String, ownsDir: Bool = true) throws {
        self.socket = socket
        self.dir = dir
        self.ownsDir = ownsDir
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        _ = FileManager.default.createFile(atPath: dir + "/server.log", contents: nil)
        process.standardError = FileHandle(forWritingAtPath: dir + "/server.log") ?? FileHandle.nullDevice
        try process.run()
        // A large data set takes a while to load (1M vectors: tens of seconds).
        for _ in 0..<30_000 {
            if (try? BenchSocket(path: socket)) != nil { return }
            guard process.isRunning else { break }
            usleep(20_000)
        }
        let log = (try? String(contentsOfFile: dir + "/server.log", encoding: .utf8)) ?? ""
        stop()
        throw BenchError("\(executable) did not listen on \(socket): \(log.suffix(500))")
    }

    var pid: Int32 { process.processIdentifier }

    /// Resident set size from /proc (`taskset` execs the server: same pid).
    var rssBytes: Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return (Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0) * 1024
        }
        return 0
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        if ownsDir { try? FileManager.default.removeItem(atPath: dir) }
    }

    static func tempDir(_ name: String) -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("mnemo-bench-\(name)-\(getpid())").path
        try? FileManager.default.removeItem(atPath: d)
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    /// mnemod with a durability mode, on a fresh data directory, or on `dir` (kept at stop).
    static func mnemod(_ binary: String, durability: String, cpus: String?, threads: Int?, dir keep: String? = nil,
                       config: String? = nil) throws -> ServerProcess
    {
        let dir = keep ?? tempDir("mnemod-\(durability)")
        let socket = dir + "/m.sock"
        var args = ["--socket", socket, "--data-dir", dir + "/data", "--durability", durability, "--log-level", "error"]
        if let config {
            try config.write(toFile: dir + "/mnemod.toml", atomically: true, encoding: .utf8)
            args += ["--config", dir + "/mnemod.toml"]
        }
        if let threads { args += ["--threads", String(threads)] }
        var exe = binary
        if let cpus {
            args = ["-c", cpus, binary] + args
            exe = "/usr/bin/taskset"
        }
        return try ServerProcess(executable: exe, arguments: args, socket: socket, dir: dir, ownsDir: keep == nil)
    }

    /// redis-server on a Unix socket (no TCP port) with the given persistence.
    static func redis(_ persistence: RedisPersistence, cpus: String?) throws -> ServerProcess {
        let dir = tempDir("redis-\(persistence)")
        let socket = dir + "/r.sock"
        var args = ["--port", "0", "--unixsocket", socket, "--unixsocketperm", "700", "--save", "", "--dir", dir]
        switch persistence {
        case .none: args += ["--appendonly", "no"]
        case .everysec: args += ["--appendonly", "yes", "--appendfsync", "everysec"]
        case .always: args += ["--appendonly", "yes", "--appendfsync", "always"]
        }
        var exe = "/usr/bin/redis-server"
        if let cpus {
            args = ["-c", cpus, exe] + args
            exe = "/usr/bin/taskset"
        }
        return try ServerProcess(executable: exe, arguments: args, socket: socket, dir: dir)
    }

    /// One field of Redis `INFO memory` (e.g. `used_memory`).
    static func redisInfo(_ socketPath: String, field: String) throws -> Int {
        let s = try BenchSocket(path: socketPath)
        try s.send(Connect.resp(["INFO", "memory"]))
        let body = String(decoding: try s.readRESPBulk(), as: UTF8.self)
        for line in body.split(whereSeparator: \.isNewline) where line.hasPrefix(field + ":") {
            return Int(line.dropFirst(field.count + 1)) ?? 0
        }
        throw BenchError("redis INFO has no \(field)")
    }
}

/// Runs a command to completion, its output to a file; throws when it fails.
func runCommand(_ executable: String, _ arguments: [String], log: String) throws {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    // Opened, not replaced: createFile renames a new file over the path, which for a log of
    // /dev/null would replace the device with a regular file.
    if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
    let out = FileHandle(forWritingAtPath: log)
    try? out?.truncate(atOffset: 0)
    p.standardOutput = out ?? FileHandle.nullDevice
    p.standardError = out ?? FileHandle.nullDevice
    try p.run()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else {
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        throw BenchError("\(URL(fileURLWithPath: executable).lastPathComponent) \(arguments.prefix(2).joined(separator: " ")) failed: \(text.suffix(1500))")
    }
}

/// The first line a command prints (a version), or "unknown".
func commandOutput(_ executable: String, _ arguments: [String]) -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = FileHandle.nullDevice
    guard (try? p.run()) != nil else { return "unknown" }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return String(decoding: data, as: UTF8.self).split(separator: "\n").first.map(String.init) ?? "unknown"
}

/// Redis persistence settings, matched to mnemod's durability modes.
enum RedisPersistence: CustomStringConvertible {
    /// No AOF, no snapshots (like `volatile`).
    case none
    /// AOF written every event-loop turn, fsync once a second (like `normal`).
    case everysec
    /// AOF fsync before replying (like `strict`).
    case always

    var description: String { self == .none ? "none" : self == .everysec ? "everysec" : "always" }
    var label: String { self == .none ? "redis SET" : "redis SET appendfsync \(self)" }
}
