import Foundation
import MnemoClient
import MnemoProtocol
import Testing

@Suite("audit log")
struct AuditTests {
    static func config() throws -> String {
        """
        [[principals]]
        name = "ops"
        token_sha256 = "\(try sha256Hex("ops-secret"))"
        grants = [{ ns = "**", perms = "rwa" }]

        [[principals]]
        name = "worker"
        token_sha256 = "\(try sha256Hex("worker-secret"))"
        grants = [{ ns = "scratch/{agent}", perms = "rw" }]
        """
    }

    @Test func mutationsAndDenialsReachTheLogAndTheCLI() throws {
        let daemon = try Daemon(config: try Self.config())
        let worker = try MnemoClient(socketPath: daemon.socket, agent: "w1", token: "worker-secret")
        let put = try worker.call("wm.set", ["ns": "scratch/w1", "key": "k", "value": 1])
        let denied = wireError { try worker.call("wm.get", ["ns": "scratch/w2", "key": "k"]) }
        #expect(denied?.appCode == .forbidden)
        var lines: [Substring] = []
        for _ in 0..<100 {
            let r = try daemon.cli(["audit", "--token", "ops-secret", "--agent", "ops-cli"])
            #expect(r.status == 0)
            lines = r.stdout.split(separator: "\n")
            if lines.count >= 2 { break }
            usleep(20_000)
        }
        #expect(lines.count == 2)
        #expect(lines.first?.contains("worker/w1") == true && lines.first?.contains("wm.get scratch/w2 k  DENIED FORBIDDEN") == true)
        #expect(lines.last?.contains("wm.set scratch/w1 k  ok rev=\(put["rev"]?.int64Value ?? -1)") == true)
        // The worker administers nothing: refused, exit 2.
        let r = try daemon.cli(["audit", "--token", "worker-secret"])
        #expect(r.status == 2 && r.stderr.contains("FORBIDDEN"))
    }

    static func sha256Hex(_ s: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        let input = Pipe(), out = Pipe()
        p.standardInput = input
        p.standardOutput = out
        try p.run()
        input.fileHandleForWriting.write(Data(s.utf8))
        try input.fileHandleForWriting.close()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return String(text.prefix(64))
    }
}
