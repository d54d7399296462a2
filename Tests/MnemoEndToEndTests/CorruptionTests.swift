import Foundation
import MnemoClient
import MnemoProtocol
import Testing

@Suite("damaged data: refused or degraded, never silent")
struct CorruptionTests {
    /// Runs mnemod on `daemon`'s directory until it exits (it is expected to refuse).
    static func refusal(_ daemon: Daemon) throws -> (status: Int32, stderr: String) {
        try Daemon.runToExit(["--socket", daemon.socket, "--data-dir", daemon.dataDir, "--log-level", "warning"])
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

        // mnemo check finds it; mnemo repair keeps every valid record and names the one lost.
        let check = try daemon.cli(["check", "--data-dir", daemon.dataDir])
        #expect(check.status == 5 && check.stdout.contains("corrupt at byte"), "\(check)")
        let repair = try daemon.cli(["repair", "--data-dir", daemon.dataDir, "-o", "json"])
        #expect(repair.status == 0, "\(repair)")
        let outcome = try JSONParser.parse(repair.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        let damage = try #require(outcome["repaired"]?.arrayValue?.first?["damage"]?.arrayValue?.first)
        let lost = try #require(damage["lost_revs"]?.arrayValue)
        #expect(lost.count == 2 && lost[0] == lost[1], "one revision lost: \(damage)")
        let backup = try #require(outcome["backup"]?.stringValue)
        #expect(FileManager.default.contents(atPath: backup + "/" + log) == before[log])
        #expect(try daemon.cli(["check", "--data-dir", daemon.dataDir]).status == 0)
        let restarted = try Daemon(dir: daemon.dir)
        let r2 = try restarted.client()
        var missing: [Int] = []
        for i in 0..<400 where try r2.call("wm.get", ["ns": "p", "key": .string("k\(i)")])["found"] == false { missing.append(i) }
        #expect(missing.count == 1, "\(missing)")
        // The lost revision is the missing key's (keys were written one revision each from 1).
        #expect(missing.first.map { Int64($0 + 1) } == lost[0].int64Value)
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
        // keeps no page checksums: see docs/guarantees.md).
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

        // The daemon's own check says so; offline repair salvages the rows; it serves again.
        let online = try again.cli(["check"])
        #expect(online.status == 5 && online.stdout.contains("episodic.sqlite"), "\(online)")
        #expect(again.stop() == 0)
        let repair = try again.cli(["repair", "--data-dir", again.dataDir])
        #expect(repair.status == 0 && repair.stdout.contains("salvaged"), "\(repair)")
        let healed = try Daemon(dir: again.dir)
        let h = try healed.client()
        #expect(try h.call("admin.health")["status"] == "ok")
        let hits = try h.call("ep.search", ["ns": "p", "text": "cache", "mode": "keyword", "limit": 5])["hits"]?.arrayValue ?? []
        #expect(hits.count == 5)
        #expect(try h.call("ep.append", ["ns": "p", "kind": "note", "content": "after the repair"])["id"] != nil)
    }
}
