import Foundation
import MnemoProtocol
import Testing

/// Socket activation and readiness, driven by Debian's `systemd-socket-activate`, which
/// passes a listening socket the way systemd does (LISTEN_FDS) and starts mnemod on the
/// first connection. `NOTIFY_SOCKET` points at a datagram socket the test reads, as
/// systemd's notification socket would be.
@Suite("systemd")
struct SystemdTests {
    static let activator = "/usr/bin/systemd-socket-activate"

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: activator), "needs systemd-socket-activate"))
    func socketActivationAndReadyAfterTheStoresLoad() throws {
        // Data written by a plain daemon...
        let plain = try Daemon()
        _ = try plain.client().call("wm.set", ["ns": "sd", "key": "k", "value": "kept"])
        _ = try plain.client().call("ep.append", ["ns": "sd", "kind": "observation", "content": "an episode"])
        plain.stop()

        // ...is there on the very first request once READY=1 arrives from an activated one.
        let notify = try NotifySocket(plain.dir.appendingPathComponent("notify").path)
        let activated = try Daemon(dir: plain.dir, launcher: [Self.activator, "-l", plain.socket, "-E", "NOTIFY_SOCKET"],
                                   environment: ["NOTIFY_SOCKET": notify.path])
        let ready = notify.receive(timeoutMs: 10_000)
        #expect(ready?.hasPrefix("READY=1") == true, "got \(ready ?? "nothing")")
        #expect(ready?.contains("MAINPID=") == true)
        let c = try activated.client()
        #expect(try c.call("wm.get", ["ns": "sd", "key": "k"])["value"] == "kept")
        #expect(try c.call("ep.query", ["ns": "sd"])["records"]?.arrayValue?.count == 1)
        // mnemod served the inherited socket (binding the path itself would have failed: it
        // is live), and leaves it in place on stop: the socket belongs to systemd.
        #expect(activated.stop() == 0)
        #expect(notify.receive(timeoutMs: 5000) == "STOPPING=1")
        #expect(FileManager.default.fileExists(atPath: plain.socket))
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: activator), "needs systemd-socket-activate"))
    func activationWithTwoSocketsIsRefused() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mnemo-sd-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let first = dir.appendingPathComponent("a.sock").path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.activator)
        p.arguments = ["-l", first, "-l", dir.appendingPathComponent("b.sock").path, Daemon.binary("mnemod"),
                       "--data-dir", dir.appendingPathComponent("data").path]
        let err = Pipe()
        p.standardError = err
        try p.run()
        // The activator starts mnemod on the first connection.
        var connected = false
        for _ in 0..<250 where !connected {
            if case .success(let fd) = UnixSocket.connect(first) { close(fd); connected = true } else { usleep(20_000) }
        }
        #expect(connected)
        p.waitUntilExit()
        #expect(p.terminationStatus == 69)  // EX_UNAVAILABLE
        let log = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(log.contains("LISTEN_FDS=2"))
    }
}

/// A datagram socket standing in for systemd's notification socket.
final class NotifySocket {
    let fd: Int32
    let path: String

    init(_ path: String) throws {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard var addr = UnixSocket.address(path) else { throw DaemonError("bad notify path \(path)") }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else { throw DaemonError("bind \(path): errno \(errno)") }
    }

    deinit {
        close(fd)
        unlink(path)
    }

    /// The next datagram as text, or nil on timeout.
    func receive(timeoutMs: Int32) -> String? {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, timeoutMs) > 0 else { return nil }
        var buf = [UInt8](repeating: 0, count: 4096)
        let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return n > 0 ? String(decoding: buf[0..<n], as: UTF8.self) : nil
    }
}

@Suite("systemd units")
struct SystemdUnitTests {
    static let analyze = "/usr/bin/systemd-analyze"

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: analyze), "needs systemd-analyze"))
    func shippedUnitsVerify() throws {
        // The units in dist/systemd, pointed at this build's mnemod, pass systemd's checks.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mnemo-units-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        // The cluster node's template is verified as an instance of it.
        let units = [("mnemod.socket", "mnemod.socket"), ("mnemod.service", "mnemod.service"),
                     ("mnemod-node@.service", "mnemod-node@test.service")]
        for (unit, instance) in units {
            let text = try String(contentsOf: root.appendingPathComponent("dist/systemd/\(unit)"), encoding: .utf8)
            #expect(unit == "mnemod.socket" || text.contains("Type=notify"))
            try text.replacingOccurrences(of: "/usr/local/bin/mnemod", with: Daemon.binary("mnemod"))
                .write(to: dir.appendingPathComponent(instance), atomically: true, encoding: .utf8)
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.analyze)
        p.arguments = ["verify", "--man=no"] + units.map { dir.appendingPathComponent($0.1).path }
        let err = Pipe()
        p.standardError = err
        p.standardOutput = err
        try p.run()
        let out = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "systemd-analyze verify: \(out)")
        #expect(out.isEmpty, "systemd-analyze verify: \(out)")
    }
}
