import Foundation
import MnemoClient
import MnemoProtocol
import Testing

@Suite("damaged data: refused or degraded, never silent")
struct CorruptionTests {
    /// Runs mnemod on `daemon`'s directory until it exits (it is expected to refuse).
    static func refusal(_ daemon: Daemon) throws -> (status: Int32, stderr: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Daemon.binary("mnemod"))
        p.arguments = ["--socket", daemon.socket, "--data-dir", daemon.dataDir, "--log-level", "warning"]
        let err = Pipe()
        p.standardError = err
        try p.run()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, text)
    }

    static func contents(_ dir: String) throws -> [String: Data] {
        var out: [String: Data] = [:]
        for f in try FileManager.default.contentsOfDirectory(atPath: dir) { out[f] = FileManager.default.contents(atPath: dir + "/" + f) }
        return out
    }

    @Test func aFlippedByteInTheJournalRefusesToStartAndChangesNothing() throws {
        let daemon = try Daemon()
        let c = try daemon.client()
        for i in 0..<400 { _ = try c.call("wm.set", ["ns": "p", "key": .string("k\(i)"), "value": ["i": .int(i), "pad": .string(String(repeating: "x", count: 200))]]) }
        daemon.kill()
        let working = daemon.dataDir + "/working"
        let log = try #require(try FileManager.default.contentsOfDirectory(atPath: working).filter { $0.hasPrefix("journal-") }.max())
        var bytes = [UInt8](try #require(FileManager.default.contents(atPath: working + "/" + log)))
        let end = try #require(bytes.lastIndex { $0 != 0 })
        bytes[end / 2] ^= 0x40
        try Data(bytes).write(to: URL(fileURLWithPath: working + "/" + log))
        let before = try Self.contents(working)
        let r = try Self.refusal(daemon)
        #expect(r.status == 65, "\(r.stderr)")
        #expect(r.stderr.contains(log) && r.stderr.contains("fails its checksum") && r.stderr.contains("valid records after it")
                && r.stderr.contains("last good revision"), "\(r.stderr)")
        #expect(try Self.contents(working) == before)
    }

    @Test func aDamagedEpisodicDatabaseDegradesThatTierOnly() throws {
        let daemon = try Daemon()
        let c = try daemon.client()
        for i in 0..<2000 { _ = try c.call("ep.append", ["ns": "p", "kind": "note", "content": .string("record \(i) about the cold cache after a deploy")]) }
        _ = try c.call("sem.upsert", ["ns": "kb", "id": "f1", "text": "fact", "vector": [1, 0]])
        #expect(daemon.stop() == 0)
        let path = daemon.dataDir + "/episodic.sqlite"
        var bytes = [UInt8](try #require(FileManager.default.contents(atPath: path)))
        // 64 bytes at the start of a page in the middle: its header and cell pointers, which
        // a structural check sees (a flip inside a row's content is invisible to SQLite, which
        // keeps no page checksums: see the README's guarantees).
        let mid = bytes.count / 4096 / 2 * 4096
        for i in mid..<(mid + 64) { bytes[i] ^= 0xA5 }
        try Data(bytes).write(to: URL(fileURLWithPath: path))

        let again = try Daemon(dir: daemon.dir)
        let d = try again.client()
        let health = try d.call("admin.health")
        #expect(health["status"] == "degraded" && health["degraded"]?.arrayValue?.first?["tier"] == "ep", "\(health)")
        for (method, params) in [("ep.search", ["ns": "p", "text": "cache", "mode": "keyword"] as JSON),
                                 ("ep.append", ["ns": "p", "kind": "note", "content": "more"]), ("ep.query", ["ns": "p"])] {
            let e = wireError { try d.call(method, params) }
            #expect(e?.appCode == .corrupt && e?.detail("tier") == "ep", "\(method): \(String(describing: e))")
        }
        // The other tiers serve.
        #expect(try d.call("wm.set", ["ns": "p", "key": "k", "value": 1])["version"] != nil)
        #expect(try d.call("sem.get", ["ns": "kb", "id": "f1"])["found"] == true)
    }
}
