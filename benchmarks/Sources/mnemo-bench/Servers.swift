import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A server process started and stopped by the harness.
/// @unchecked Sendable: client threads read only the immutable `socket`; start and stop
/// happen on the main thread.
final class ServerProcess: @unchecked Sendable {
    let process = Process()
    let socket: String
    let dir: String

    init(executable: String, arguments: [String], socket: String, dir: String) throws {
        self.socket = socket
        self.dir = dir
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        for _ in 0..<500 {
            if (try? BenchSocket(path: socket)) != nil { return }
            usleep(20_000)
        }
        throw BenchError("\(executable) did not listen on \(socket)")
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: dir)
    }

    static func tempDir(_ name: String) -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("mnemo-bench-\(name)-\(getpid())").path
        try? FileManager.default.removeItem(atPath: d)
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    /// mnemod with a durability mode, on a fresh data directory.
    static func mnemod(_ binary: String, durability: String, cpus: String?, threads: Int?) throws -> ServerProcess {
        let dir = tempDir("mnemod-\(durability)")
        let socket = dir + "/m.sock"
        var args = ["--socket", socket, "--data-dir", dir + "/data", "--durability", durability, "--log-level", "error"]
        if let threads { args += ["--threads", String(threads)] }
        var exe = binary
        if let cpus {
            args = ["-c", cpus, binary] + args
            exe = "/usr/bin/taskset"
        }
        return try ServerProcess(executable: exe, arguments: args, socket: socket, dir: dir)
    }

    /// redis-server on a Unix socket, with AOF `appendfsync always` when `fsyncAlways`.
    static func redis(fsyncAlways: Bool, cpus: String?) throws -> ServerProcess {
        let dir = tempDir(fsyncAlways ? "redis-aof" : "redis")
        let socket = dir + "/r.sock"
        var args = ["--port", "0", "--unixsocket", socket, "--unixsocketperm", "700", "--save", "", "--dir", dir,
                    "--appendonly", fsyncAlways ? "yes" : "no", "--appendfsync", "always"]
        var exe = "/usr/bin/redis-server"
        if let cpus {
            args = ["-c", cpus, exe] + args
            exe = "/usr/bin/taskset"
        }
        return try ServerProcess(executable: exe, arguments: args, socket: socket, dir: dir)
    }
}
