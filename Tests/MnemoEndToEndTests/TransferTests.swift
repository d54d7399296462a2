import Foundation
import MnemoClient
import MnemoProtocol
import Testing

@Suite("export, import and snapshots over the socket")
struct TransferTests {
    static func vector(_ i: Int, dims: Int = 8) -> JSON {
        .array((0..<dims).map { j in .number(String(Float(sin(Double(i * 17 + j * 5))))) })
    }

    /// Fills every tier: several namespaces, TTLs, tags, data, supersession, vectors,
    /// a pinned record and a summary.
    static func fill(_ c: MnemoClient) throws {
        for i in 0..<6 {
            var p: JSON = ["ns": .string(i < 4 ? "wf/1" : "wf/2"), "key": .string("k\(i)"), "value": ["i": .int(i), "s": .string("v\(i)")],
                           "task": .string("t-\(i)")]
            if i == 2 { p = ["ns": "wf/1", "key": "k2", "value": [1, 2, 3], "ttl_ms": 600_000] }
            _ = try c.call("wm.set", p)
        }
        _ = try c.call("wm.set", ["ns": "wf/1", "key": "k0", "value": "overwritten"])
        _ = try c.call("wm.set", ["ns": "agents/x", "key": "note", "value": ["deep": ["a": [true, .null]]]])
        var ids: [String] = []
        for i in 0..<10 {
            var p: JSON = ["ns": .string(i % 3 == 0 ? "agents/x/log" : "wf/1/log"), "kind": i == 4 ? "error" : "step",
                           "content": .string("step \(i) of the migration"), "tags": i % 2 == 0 ? ["even", "m"] : []]
            if i == 5 { p = ["ns": "wf/1/log", "kind": "step", "content": "with data", "data": ["n": 5], "task": "t-5"] }
            ids.append(try #require(try c.call("ep.append", p)["id"]?.stringValue))
        }
        _ = try c.call("ep.pin", ["ids": [.string(ids[1])], "pinned": true])
        _ = try c.call("ep.summarize", ["ns": "wf/1/log", "max_records": 3])
        for i in 0..<20 {
            var p: JSON = ["ns": .string(i % 2 == 0 ? "kb/a" : "kb/b"), "id": .string("f\(i)"), "text": .string("fact \(i)"),
                           "vector": vector(i), "tags": i % 4 == 0 ? ["four"] : []]
            if i == 3 { p = ["ns": "kb/b", "id": "f3", "text": "fact 3", "vector": vector(3), "data": ["src": "x"], "confidence": .number("0.75")] }
            if i == 5 { p = ["ns": "kb/b", "id": "f5", "text": "fact 5", "vector": vector(5), "ttl_ms": 600_000] }
            _ = try c.call("sem.upsert", p)
        }
        _ = try c.call("sem.upsert", ["ns": "kb/a", "id": "f0new", "text": "fact 0 again", "vector": vector(100), "supersedes": "f0"])
    }

    static let keys: [(String, String)] = [("wf/1", "k0"), ("wf/1", "k1"), ("wf/1", "k2"), ("wf/1", "k3"), ("wf/2", "k4"),
                                           ("wf/2", "k5"), ("agents/x", "note")]
    static let factIDs: [(String, String)] = (0..<20).map { ($0 % 2 == 0 ? "kb/a" : "kb/b", "f\($0)") } + [("kb/a", "f0new")]

    /// `json` without the members named in `drop`, at any depth.
    static func without(_ json: JSON, _ drop: Set<String>) -> JSON {
        switch json {
        case .object(let members): return .object(members.filter { !drop.contains($0.key) }.map { JSONMember($0.key, without($0.value, drop)) })
        case .array(let items): return .array(items.map { without($0, drop) })
        default: return json
        }
    }

    /// Every item of every tier, as the contract's reads return them.
    static func state(_ c: MnemoClient, drop: Set<String>) throws -> [JSON] {
        var out: [JSON] = []
        for (ns, key) in keys { out.append(try c.call("wm.get", ["ns": .string(ns), "key": .string(key)])) }
        for ns in ["wf", "agents"] { out.append(try c.call("ep.query", ["ns": .string(ns), "limit": 1000])) }
        for (ns, id) in factIDs { out.append(try c.call("sem.get", ["ns": .string(ns), "id": .string(id)])) }
        for i in 0..<4 {
            out.append(try c.call("sem.search", ["ns": "kb", "vector": vector(1000 + i), "k": 10, "include_superseded": .bool(i == 0)]))
        }
        return out.map { without($0, drop.union(["age_ms"])) }
    }

    static func rev(_ c: MnemoClient) throws -> Int64 { try #require(try c.call("admin.health")["rev"]?.int64Value) }

    @Test func exportThenImportIntoAFreshDaemonReproducesEveryItem() throws {
        let a = try Daemon()
        let ca = try a.client("filler")
        try Self.fill(ca)
        let file = "all.jsonl"
        let r = try ca.call("admin.export", ["path": .string(file)])
        #expect(r["counts"] == ["wm": 7, "ep": 11, "sem": 21])
        #expect(r["lines"]?.int64Value == 40 && r["path"]?.stringValue == file)
        let before = try Self.state(ca, drop: ["rev", "version"])
        #expect(before[7]["records"]?.arrayValue?.count == 7)  // wf: 6 records + 1 summary

        let b = try Daemon()
        let cb = try b.client("importer")
        try Self.carry(file, from: a, to: b)
        let imp = try cb.call("admin.import", ["path": .string(file)])
        #expect(imp["imported"]?.int64Value == 39 && imp["skipped"]?.int64Value == 0)
        #expect(imp["counts"] == ["wm": 7, "ep": 11, "sem": 21])
        let after = try Self.state(cb, drop: ["rev", "version"])
        #expect(after.count == before.count)
        for (x, y) in zip(before, after) { #expect(x == y) }
        // Provenance is kept: the writer, not the importer.
        #expect(try cb.call("wm.get", ["ns": "wf/1", "key": "k1"])["provenance"]?["agent"] == "filler")

        // Importing again changes nothing.
        let revAfter = try Self.rev(cb)
        let exact = try Self.state(cb, drop: [])
        let again = try cb.call("admin.import", ["path": .string(file)])
        #expect(again == ["imported": 0, "skipped": 39, "counts": [:]])
        #expect(try Self.rev(cb) == revAfter)
        #expect(try Self.state(cb, drop: []) == exact)

        // New writes get ids that never meet imported ones.
        let appended = try cb.call("ep.append", ["ns": "wf/1/log", "kind": "step", "content": "after import"])
        #expect(appended["rev"]?.int64Value ?? 0 > revAfter)
        _ = try cb.call("sem.upsert", ["ns": "kb/a", "text": "new fact", "vector": Self.vector(7)])
    }

    @Test func streamedExportSendsTheSameLinesAsTheFile() throws {
        let a = try Daemon()
        let c = try a.client()
        try Self.fill(c)
        let r = try c.call("admin.export", ["ns": "wf", "tiers": ["wm", "ep"], "path": "wf.jsonl"])
        #expect(r["counts"] == ["wm": 6, "ep": 7])
        let streamed = try c.call("admin.export", ["ns": "wf", "tiers": ["ep", "wm"]])
        #expect(streamed["lines"] == r["lines"] && streamed["path"] == nil)
        var lines: [JSON] = []
        while let note = try c.nextNotification(timeoutMs: 0) {
            #expect(note["method"] == "event" && note["params"]?["seq"]?.int64Value == Int64(lines.count))
            lines.append(try #require(note["params"]?["line"]))
        }
        let text = try String(contentsOfFile: a.transferDir + "/wf.jsonl", encoding: .utf8)
        let fromFile = try text.split(separator: "\n").map { try JSONParser.parse(String($0)) }
        #expect(lines.count == fromFile.count && lines.count == 14)
        #expect(Self.without(lines[0], ["at"]) == Self.without(fromFile[0], ["at"]))
        #expect(Array(lines.dropFirst()) == Array(fromFile.dropFirst()))
        #expect(lines[0]["format"] == "mnemo-export" && lines[0]["version"] == 1 && lines[0]["ns"] == "wf")
        #expect(lines.dropFirst().allSatisfy { ($0["ns"]?.stringValue ?? "").hasPrefix("wf/") })
        // Bad requests: unknown or unsupported tiers, names that are not plain file names.
        for p: JSON in [["tiers": ["cache"]], ["tiers": []], ["tiers": ["claim"]], ["tiers": ["wm", "wm"]], ["path": "../rel.jsonl"],
                        ["path": "sub/x.jsonl"], ["path": ".hidden"], ["path": ""], ["path": "a\u{0}b"], ["ns": "bad//ns"], ["extra": 1]] {
            #expect(wireError { try c.call("admin.export", p) }?.code == -32602, "\(p)")
        }
        // Absolute paths are off by default; an existing name is never replaced.
        #expect(wireError { try c.call("admin.export", ["path": "/tmp/mnemo-never.jsonl"]) }?.appCode == .forbidden)
        #expect(!FileManager.default.fileExists(atPath: "/tmp/mnemo-never.jsonl"))
        #expect(wireError { try c.call("admin.export", ["path": "wf.jsonl"]) }?.appCode == .conflict)
        #expect(try String(contentsOfFile: a.transferDir + "/wf.jsonl", encoding: .utf8) == text)
    }

    @Test func prefixesMatchWholeSegmentsAndLargeStreamsAreRefused() throws {
        let a = try Daemon(config: "[limits]\nmax_pending_output_bytes = 65536\n")
        let c = try a.client()
        _ = try c.call("wm.set", ["ns": "wf/1", "key": "k", "value": 1])
        _ = try c.call("wm.set", ["ns": "wf/10", "key": "k", "value": 10])
        _ = try c.call("ep.append", ["ns": "wf/10", "kind": "note", "content": "not under wf/1"])
        let one = try c.call("admin.export", ["ns": "wf/1"])
        #expect(one["counts"] == ["wm": 1, "ep": 0, "sem": 0] && one["lines"] == 2)
        var lines: [JSON] = []
        while let note = try c.nextNotification(timeoutMs: 0) { lines.append(note) }
        #expect(lines.count == 2 && lines[1]["params"]?["line"]?["value"] == 1)
        for i in 0..<80 { _ = try c.call("wm.set", ["ns": "big", "key": .string("k\(i)"), "value": .string(String(repeating: "x", count: 1000))]) }
        let e = wireError { try c.call("admin.export", ["ns": "big"]) }
        #expect(e?.appCode == .limitExceeded && e?.message.contains("give path") == true)
        #expect(try c.nextNotification(timeoutMs: 100) == nil)  // nothing of the refused stream was sent
        #expect(try c.call("admin.export", ["ns": "big", "path": "big.jsonl"])["counts"]?["wm"] == 80)
    }

    @Test func dryRunAppliesNothingAndRemapMovesNamespaces() throws {
        let a = try Daemon()
        let ca = try a.client()
        try Self.fill(ca)
        let file = "all.jsonl"
        _ = try ca.call("admin.export", ["path": .string(file)])

        let b = try Daemon()
        let cb = try b.client()
        try Self.carry(file, from: a, to: b)
        _ = try cb.call("wm.set", ["ns": "wf/1", "key": "k1", "value": "mine"])
        let rev = try Self.rev(cb)
        let dry = try cb.call("admin.import", ["path": .string(file), "dry_run": true])
        #expect(dry == ["imported": 38, "skipped": 1, "counts": ["wm": 6, "ep": 11, "sem": 21], "dry_run": true])
        #expect(try Self.rev(cb) == rev)
        #expect(try cb.call("wm.get", ["ns": "wf/1", "key": "k3"])["found"] == false)
        #expect(try cb.call("ep.query", ["ns": "wf"])["records"]?.arrayValue?.isEmpty == true)

        // Remap: wf/1 and below land under copy/1; "wf/10" would not be covered.
        let remap: JSON = ["path": .string(file), "remap": [["from": "wf/1", "to": "copy/1"], ["from": "kb", "to": "facts/kb"]]]
        let real = try cb.call("admin.import", remap)
        #expect(real["imported"]?.int64Value == 39)
        #expect(try cb.call("wm.get", ["ns": "wf/1", "key": "k1"])["value"] == "mine")
        #expect(try cb.call("wm.get", ["ns": "copy/1", "key": "k1"])["value"] == ["i": 1, "s": "v1"])
        #expect(try cb.call("wm.get", ["ns": "wf/2", "key": "k4"])["found"] == true)
        #expect(try cb.call("ep.query", ["ns": "copy/1/log"])["records"]?.arrayValue?.count == 7)
        #expect(try cb.call("sem.get", ["ns": "facts/kb/a", "id": "f0"])["superseded_by"] == "f0new")
        let hits = try cb.call("sem.search", ["ns": "facts", "vector": Self.vector(4), "k": 1])["hits"]?.arrayValue
        #expect(hits?.first?["id"] == "f4" && hits?.first?["ns"] == "facts/kb/a")
        // Same file, same remap: idempotent.
        #expect(try cb.call("admin.import", remap)["imported"] == 0)
        for p: JSON in [["path": .string(file), "remap": [["from": "wf"]]], ["path": .string(file), "remap": "wf=x"],
                        ["path": .string(file), "remap": [["from": "wf", "to": "bad//x"]]], ["path": .string(file), "dry_run": "yes"],
                        ["path": "../all.jsonl"], ["path": "missing.jsonl"], [:], ["path": .string(file), "lines": []]] {
            #expect(wireError { try cb.call("admin.import", p) }?.code == -32602)
        }
    }

    @Test func badFilesAreRefusedNamingTheLineAndChangeNothing() throws {
        let a = try Daemon()
        let c = try a.client()
        try Self.fill(c)
        _ = try c.call("admin.export", ["ns": "wf/2", "path": "good.jsonl"])
        let lines = try String(contentsOfFile: a.transferDir + "/good.jsonl", encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(lines.count == 3)
        let header = lines[0]
        let fact = #"{"tier":"sem","ns":"kb/a","id":"x1","text":"t","tags":[],"version":1,"provenance":{"agent":"a","principal":"p","uid":1,"pid":1,"at":"2026-11-22T00:00:00.000Z","rev":1},"dims":2,"metric":"cosine","model":"client","vector_b64":"AACAPwAAAAA="}"#
        let cases: [(String, String)] = [
            ("", "empty"),
            (#"{"format":"mnemo-export","rev":1}"# + "\n" + lines[1], "line 1"),
            (header.replacingOccurrences(of: #""version":1"#, with: #""version":2"#) + "\n" + lines[1], "line 1"),
            (#"{"hello":1}"# + "\n", "line 1"),
            (header + "\n" + lines[1] + "\n{not json\n", "line 3"),
            (header + "\n" + #"{"tier":"cache","ns":"wf/2"}"# + "\n" + lines[1], "line 2"),
            (header + "\n" + lines[1] + "\n" + #"{"ns":"wf/2","key":"x"}"#, "line 3"),
            (header + "\n" + #"{"tier":"wm","ns":"wf/2","key":"x","value":1}"#, "line 2"),
            (header + "\n" + #"{"tier":"claim","ns":"wf/2"}"#, "line 2"),
            (header + "\n" + lines[2] + "\n" + fact.replacingOccurrences(of: #""dims":2"#, with: #""dims":3"#), "line 3"),
            (header + "\n" + lines[2] + "\n" + "[1,2]", "line 3"),
        ]
        let observer = try a.client("observer")
        for (i, (text, expected)) in cases.enumerated() {
            let path = "bad\(i).jsonl"
            try text.write(toFile: a.transferDir + "/" + path, atomically: true, encoding: .utf8)
            let rev = try Self.rev(observer)
            let stats = try observer.call("admin.stats")
            let e = wireError { try c.call("admin.import", ["path": .string(path), "remap": [["from": "wf/2", "to": "fresh"]]]) }
            #expect(e?.code == -32602, "case \(i)")
            #expect(e?.message.contains(expected) == true, "case \(i): \(e?.message ?? "accepted")")
            #expect(try Self.rev(observer) == rev, "case \(i)")
            #expect(try observer.call("admin.stats")["working"] == stats["working"])
            #expect(try observer.call("wm.get", ["ns": "fresh", "key": "k4"])["found"] == false)
        }
        // A vector that does not fit an existing collection: refused, nothing applied.
        let path = "dims.jsonl"
        try (header + "\n" + lines[1] + "\n" + fact + "\n").write(toFile: a.transferDir + "/" + path, atomically: true, encoding: .utf8)
        let rev = try Self.rev(observer)
        let e = wireError { try c.call("admin.import", ["path": .string(path), "remap": [["from": "wf/2", "to": "fresh"]]]) }
        #expect(e?.appCode == .dimensionMismatch)
        #expect(try Self.rev(observer) == rev)
        #expect(try observer.call("wm.get", ["ns": "fresh", "key": "k4"])["found"] == false)
        #expect(wireError { try c.call("admin.import", ["path": "nonexistent.jsonl"]) }?.code == -32602)
        #expect(wireError { try c.call("admin.import", ["path": "/etc/passwd"]) }?.appCode == .forbidden)
        try FileManager.default.createDirectory(atPath: a.transferDir + "/adir", withIntermediateDirectories: false)
        #expect(wireError { try c.call("admin.import", ["path": "adir"]) }?.code == -32602)
    }

    @Test func aSnapshotStartsAsADaemonWithTheSameState() throws {
        let a = try Daemon()
        let c = try a.client()
        try Self.fill(c)
        let r = try c.call("admin.snapshot", ["path": "snap"])
        let rev = try Self.rev(c)
        #expect(r["rev"]?.int64Value == rev && r["path"]?.stringValue == "snap" && (r["bytes"]?.int64Value ?? 0) > 0)
        let snapDir = a.transferDir + "/snap"
        var st = stat()
        #expect(stat(snapDir, &st) == 0 && st.st_mode & 0o777 == 0o700)
        #expect(stat(snapDir + "/episodic.sqlite", &st) == 0 && st.st_mode & 0o777 == 0o600)
        let manifest = try JSONParser.parse(try String(contentsOfFile: snapDir + "/manifest.json", encoding: .utf8))
        #expect(manifest["rev"]?.int64Value == rev && manifest["counts"] == ["wm": 7, "ep": 11, "sem": 21])
        #expect(manifest["schema"]?["episodic"]?.arrayValue?.isEmpty == false)
        let before = try Self.state(c, drop: [])
        // Later writes are not in the snapshot.
        _ = try c.call("wm.set", ["ns": "wf/1", "key": "k1", "value": "later"])
        // A snapshot never replaces anything; absolute paths are off.
        #expect(wireError { try c.call("admin.snapshot", ["path": "snap"]) }?.appCode == .conflict)
        try "x".write(toFile: a.transferDir + "/plain", atomically: true, encoding: .utf8)
        #expect(wireError { try c.call("admin.snapshot", ["path": "plain"]) }?.appCode == .conflict)
        #expect(wireError { try c.call("admin.snapshot", ["path": "/tmp/mnemo-never-snap"]) }?.appCode == .forbidden)
        #expect(try FileManager.default.contentsOfDirectory(atPath: a.transferDir).sorted() == ["plain", "snap"])

        // Restore: a daemon on the snapshot's directory.
        let target = try Self.moveSnapshot(snapDir)
        let restored = try Daemon(dir: target)
        let d = try restored.client()
        #expect(try Self.state(d, drop: []) == before)
        #expect(try Self.rev(d) >= rev)
        let next = try d.call("wm.set", ["ns": "wf/1", "key": "k9", "value": 1])
        #expect((next["version"]?.int64Value ?? 0) > rev)
    }

    @Test func theCLIExportsImportsAndSnapshots() throws {
        let a = try Daemon()
        let c = try a.client()
        try Self.fill(c)
        let file = a.dir.appendingPathComponent("cli.jsonl").path
        let out = try a.cli(["export", file, "--ns", "wf"])
        #expect(out.status == 0 && out.stderr.contains("exported 14 lines"))
        #expect(try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").count == 14)
        let server = try a.cli(["export", "--ns", "wf", "--server", "cli.jsonl", "-o", "json"])
        #expect(server.status == 0)
        let exported = try JSONParser.parse(Self.trimmed(server.stdout))
        #expect(exported["counts"] == ["wm": 6, "ep": 7, "sem": 0])
        // The same records whichever side writes the file (the headers differ in their time).
        let serverLines = try String(contentsOfFile: a.transferDir + "/cli.jsonl", encoding: .utf8).split(separator: "\n").dropFirst()
        let clientLines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").dropFirst()
        #expect(Array(serverLines) == Array(clientLines) && serverLines.count == 13)
        let streamed = try a.cli(["export", "--ns", "wf", "--tiers", "wm"])
        #expect(streamed.status == 0 && streamed.stdout.split(separator: "\n").count == 7)
        #expect(streamed.stderr.contains("exported 7 lines"))
        let b = try Daemon()
        let dry = try b.cli(["import", file, "--dry-run", "--remap", "wf=old/wf", "-o", "json"])
        #expect(dry.status == 0)
        let planned = try JSONParser.parse(Self.trimmed(dry.stdout))
        #expect(planned["imported"] == 13)
        let real = try b.cli(["import", file, "--remap", "wf=old/wf"])
        #expect(real.status == 0 && real.stdout.contains("imported 13 records"))
        #expect(try b.client().call("wm.get", ["ns": "old/wf/1", "key": "k1"])["found"] == true)
        let bad = try b.cli(["import", "/nonexistent-mnemo.jsonl"])
        #expect(bad.status != 0)
        let snap = try b.cli(["snapshot", "snap"])
        #expect(snap.status == 0 && snap.stdout.contains("snapshot at rev"))
        #expect(FileManager.default.fileExists(atPath: b.transferDir + "/snap/manifest.json"))
    }

    @Test func aNamespaceAdminExportsAndReimportsItsOwnSubtreeThroughTheCLI() throws {
        let a = try Daemon(config: """
            [[principals]]
            name = "ops"
            token_sha256 = "\(try AuditTests.sha256Hex("ops-secret"))"
            grants = [{ ns = "**", perms = "rwa" }]
            [[principals]]
            name = "team"
            token_sha256 = "\(try AuditTests.sha256Hex("team-secret"))"
            grants = [{ ns = "wf/**", perms = "rwa" }, { ns = "kb/**", perms = "r" }]
            """)
        let ops = try MnemoClient(socketPath: a.socket, agent: "ops", token: "ops-secret")
        try Self.fill(ops)
        let team = try MnemoClient(socketPath: a.socket, agent: "team", token: "team-secret")
        // The probe of the issue: an absolute path, and an existing file, are refused.
        let victim = a.dir.appendingPathComponent("victim.txt").path
        try "precious".write(toFile: victim, atomically: true, encoding: .utf8)
        #expect(wireError { try team.call("admin.export", ["ns": "wf", "path": .string(victim)]) }?.appCode == .forbidden)
        #expect(wireError { try team.call("admin.export", ["ns": "wf", "path": "/tmp/mnemo-team-probe"]) }?.appCode == .forbidden)
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "precious")
        #expect(!FileManager.default.fileExists(atPath: "/tmp/mnemo-team-probe"))
        // Exporting what it does not administer is refused.
        #expect(wireError { try team.call("admin.export", ["ns": "kb"]) }?.appCode == .forbidden)

        let file = a.dir.appendingPathComponent("team.jsonl").path
        let out = try a.cli(["export", file, "--ns", "wf", "--token", "team-secret"])
        #expect(out.status == 0, "\(out.stderr)")
        let exported = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n")
        #expect(exported.count == 14)
        _ = try ops.call("wm.clear", ["ns": "wf/1"])
        #expect(try team.call("wm.get", ["ns": "wf/1", "key": "k1"])["found"] == false)
        let back = try a.cli(["import", file, "--token", "team-secret", "-o", "json"])
        #expect(back.status == 0, "\(back.stderr)")
        #expect(try JSONParser.parse(Self.trimmed(back.stdout))["counts"] == ["wm": 4])
        #expect(try team.call("wm.get", ["ns": "wf/1", "key": "k1"])["value"] == ["i": 1, "s": "v1"])

        // Remapped outside its grants: refused whole; a dry run names the records.
        let before = try Self.rev(ops)
        let outside = try a.cli(["import", file, "--remap", "wf/2=kb/x", "--token", "team-secret"])
        #expect(outside.status != 0 && outside.stderr.contains("FORBIDDEN"), "\(outside.stderr)")
        #expect(try Self.rev(ops) == before)
        let dry = try a.cli(["import", file, "--remap", "wf/2=kb/x", "--dry-run", "--token", "team-secret", "-o", "json"])
        let plan = try JSONParser.parse(Self.trimmed(dry.stdout))
        #expect(plan["forbidden"]?["count"] == 2 && plan["forbidden"]?["records"]?.arrayValue?.first?["ns"] == "kb/x")
        // A principal without 'a' anywhere may not even stage lines.
        let reader = try a.cli(["import", file, "--token", "nobody"])
        #expect(reader.status != 0)
    }

    @Test func absolutePathsOnlyBehindTheSwitchAndNeverOverAFile() throws {
        let a = try Daemon(config: "allow_absolute_transfer_paths = true\n")
        let c = try a.client()
        _ = try c.call("wm.set", ["ns": "wf", "key": "k", "value": 1])
        let file = a.dir.appendingPathComponent("abs.jsonl").path
        #expect(try c.call("admin.export", ["ns": "wf", "path": .string(file)])["path"]?.stringValue == file)
        #expect(FileManager.default.fileExists(atPath: file))
        // Still never over an existing file, never through a symbolic link at the end.
        #expect(wireError { try c.call("admin.export", ["ns": "wf", "path": .string(file)]) }?.appCode == .conflict)
        let link = a.dir.appendingPathComponent("link.jsonl").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: file)
        #expect(wireError { try c.call("admin.import", ["path": .string(link)]) }?.code == -32602)
        #expect(try c.call("admin.import", ["path": .string(file)])["skipped"] == 1)
        // Names in the transfer directory work as ever.
        #expect(try c.call("admin.export", ["ns": "wf", "path": "name.jsonl"])["lines"] == 2)
    }

    @Test func anUnsafeTransferDirectoryStopsTheDaemonAtStart() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("mnemo-xfer-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: base + "/open", withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o755])
        try FileManager.default.createDirectory(atPath: base + "/real", withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        try FileManager.default.createSymbolicLink(atPath: base + "/link", withDestinationPath: base + "/real")
        defer { try? FileManager.default.removeItem(atPath: base) }
        for (dir, expected) in [("open", "open to its group or others"), ("link", "not a symbolic link")] {
            try "transfer_dir = \"\(base)/\(dir)\"\n".write(toFile: base + "/m.toml", atomically: true, encoding: .utf8)
            let r = try Daemon.runToExit(["--socket", base + "/s.sock", "--data-dir", base + "/data", "--config", base + "/m.toml"])
            #expect(r.status == 78 && r.stderr.contains(expected), "\(dir): \(r.status) \(r.stderr)")
        }
    }

    static func trimmed(_ s: String) -> String { s.trimmingCharacters(in: .whitespacesAndNewlines) }

    /// Copies an export from one daemon's transfer directory to another's (an operator's move).
    static func carry(_ name: String, from a: Daemon, to b: Daemon) throws {
        try FileManager.default.copyItem(atPath: a.transferDir + "/" + name, toPath: b.transferDir + "/" + name)
    }

    /// Moves a snapshot out of a transfer directory into a fresh directory's `data`, where
    /// ``Daemon/init(config:extraArgs:dir:launcher:environment:)`` starts on it.
    static func moveSnapshot(_ snapDir: String) throws -> URL {
        let target = FileManager.default.temporaryDirectory.appendingPathComponent("mnemo-snap-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        try FileManager.default.moveItem(atPath: snapDir, toPath: target.appendingPathComponent("data").path)
        return target
    }

    @Test func episodeVectorsTravelWithTheRecordsAndASnapshot() throws {
        let a = try Daemon()
        let c = try a.client()
        for (i, text) in ["the cache was cold after the deploy", "disk full on the build host", "cold starts after deploys"].enumerated() {
            _ = try c.call("ep.append", ["ns": "mem/x", "kind": "note", "content": .string(text), "embed": .bool(i != 1)])
        }
        let file = "ep.jsonl"
        _ = try c.call("admin.export", ["ns": "mem", "path": .string(file)])
        let lines = try String(contentsOfFile: a.transferDir + "/" + file, encoding: .utf8).split(separator: "\n").dropFirst().map { try JSONParser.parse(String($0)) }
        #expect(lines.map { $0["vector_b64"] != nil } == [true, false, true])
        #expect(lines[0]["model"] == "all-MiniLM-L6-v2" && lines[0]["dims"] == 384 && lines[0]["truncated"] == false)
        let search: JSON = ["ns": "mem", "text": "cold cache deploy", "mode": "vector"]
        let before = try c.call("ep.search", search)["hits"]?.arrayValue ?? []
        func summary(_ hits: [JSON]) -> [String] { hits.map { "\($0["id"]?.text ?? "") \($0["score"]?.text ?? "")" } }

        let b = try Daemon()
        let cb = try b.client()
        try Self.carry(file, from: a, to: b)
        #expect(try cb.call("admin.import", ["path": .string(file)])["imported"] == 3)
        let after = try cb.call("ep.search", search)["hits"]?.arrayValue ?? []
        #expect(summary(after) == summary(before) && before.count == 2, "the same vectors, bit for bit")
        #expect(try cb.call("admin.stats")["episodic"]?["vectors"] == 2)

        _ = try c.call("admin.snapshot", ["path": "snap"])
        let target = try Self.moveSnapshot(a.transferDir + "/snap")
        let restored = try Daemon(dir: target)  // removes the directory when released
        #expect(summary(try restored.client().call("ep.search", search)["hits"]?.arrayValue ?? []) == summary(before))
    }
}
