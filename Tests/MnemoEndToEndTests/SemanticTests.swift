import Foundation
import MnemoClient
import MnemoProtocol
import Testing

@Suite("semantic memory over the socket")
struct SemanticTests {
    /// A deterministic vector.
    static func vector(_ i: Int, dims: Int = 16) -> JSON {
        .array((0..<dims).map { j in .number(String(Float(sin(Double(i * 31 + j * 7))))) })
    }

    @Test(arguments: ["normal", "strict"])
    func killNineKeepsFactsAndSearchResultsIdentical(mode: String) throws {
        let daemon = try Daemon(config: "durability = \"\(mode)\"\n")
        let c = try daemon.client("writer")
        for i in 0..<300 {
            _ = try c.call("sem.upsert", ["ns": .string("kb/\(i % 4)"), "id": .string("f\(i)"), "text": .string("fact \(i)"),
                                          "vector": Self.vector(i), "tags": i % 2 == 0 ? ["even"] : []])
        }
        _ = try c.call("sem.upsert", ["ns": "kb/1", "id": "new", "text": "replacement", "vector": Self.vector(1000),
                                      "supersedes": "f1"])
        _ = try c.call("sem.delete", ["ns": "kb/2", "id": "f2"])
        _ = try c.call("sem.upsert", ["ns": "notes", "text": "the build cache lives in /var/cache/ci"])
        let queries: [JSON] = (0..<5).map { i in
            ["ns": "kb", "vector": Self.vector(5000 + i), "k": 12, "filter": i == 0 ? ["tags": ["even"]] : [:]]
        }
        let before = try queries.map { try c.call("sem.search", $0) }
        let textBefore = try c.call("sem.search", ["ns": "notes", "text": "where is the ci build cache?"])
        let rev = try #require(try c.call("admin.health")["rev"]?.int64Value)
        daemon.kill()

        let again = try daemon.restarted(config: "durability = \"\(mode)\"\n")
        let d = try again.client("reader")
        for (q, b) in zip(queries, before) {
            let a = try d.call("sem.search", q)
            #expect(a["hits"]?.arrayValue?.count == 12)
            // Same ids, same scores bit for bit, same records; only age_ms moves on.
            #expect(Self.withoutAge(a) == Self.withoutAge(b))
        }
        #expect(Self.withoutAge(try d.call("sem.search", ["ns": "notes", "text": "where is the ci build cache?"])) == Self.withoutAge(textBefore))
        #expect(try d.call("sem.get", ["ns": "kb/1", "id": "f1"])["superseded_by"] == "new")
        #expect(try d.call("sem.get", ["ns": "kb/2", "id": "f2"])["found"] == false)
        let next = try d.call("sem.upsert", ["ns": "kb/0", "text": "after", "vector": Self.vector(7)])
        #expect((next["version"]?.int64Value ?? 0) > rev)
    }

    static func withoutAge(_ result: JSON) -> JSON {
        guard case .object(var members) = result, let i = members.firstIndex(where: { $0.key == "hits" }),
              case .array(let hits) = members[i].value else { return result }
        members[i].value = .array(hits.map { hit in
            guard case .object(let fields) = hit else { return hit }
            return .object(fields.filter { $0.key != "age_ms" })
        })
        return .object(members)
    }

    @Test func pipelinedCallsOnOneConnectionTakeEffectInOrder() throws {
        let daemon = try Daemon()
        let c = try daemon.client()
        // An upsert then a search, sent back to back: the search must see the upsert, and
        // the replies (with a working-memory call between them) come back in order.
        var calls: [(String, JSON)] = []
        for i in 0..<50 {
            calls.append(("sem.upsert", ["ns": "p", "id": .string("x\(i)"), "text": "x", "vector": Self.vector(i)]))
            calls.append(("wm.set", ["ns": "p", "key": .string("k\(i)"), "value": .number(String(i))]))
            calls.append(("sem.search", ["ns": "p", "vector": Self.vector(i), "k": 1]))
        }
        let replies = try c.pipeline(calls)
        for i in 0..<50 {
            let hit = try replies[3 * i + 2].get()["hits"]?.arrayValue?.first
            #expect(hit?["id"] == .string("x\(i)"))
            #expect(try replies[3 * i + 1].get()["version"] != nil)
        }
    }

    @Test func badInputIsRefusedAndNothingIsStored() throws {
        let daemon = try Daemon()
        let c = try daemon.client()
        _ = try c.call("sem.upsert", ["ns": "kb", "id": "a", "text": "a", "vector": [1, 0, 0]])
        let cases: [(JSON, String?)] = [
            (["ns": "kb", "text": "x", "vector": [1, 0]], "DIMENSION_MISMATCH"),
            (["ns": "kb", "text": "x"], "DIMENSION_MISMATCH"),  // the embedder's 384-dim model does not fit
            (["ns": "kb", "text": "x", "vector": [0, 0, 0]], nil),
            (["ns": "kb", "text": "x", "vector_b64": "AADAfwAAAAAAAAAA"], nil),  // NaN
            (["ns": "kb", "text": "", "vector": [1, 0, 0]], nil),
            (["ns": "other", "text": " \t\n "], nil),  // whitespace only: nothing to embed
            (["ns": "kb", "text": "x", "vector": [1, 0, 0], "metric": "l1"], nil),
        ]
        for (params, name) in cases {
            let e = wireError { try c.call("sem.upsert", params) }
            #expect(e != nil, "accepted \(params)")
            if let name { #expect(e?.appCode?.rawValue == name) } else { #expect(e?.code == -32602) }
        }
        let k = wireError { try c.call("sem.search", ["ns": "kb", "vector": [1, 0, 0], "k": 1001]) }
        #expect(k?.code == -32602)
        let both = wireError { try c.call("sem.search", ["ns": "kb", "vector": [1, 0, 0], "text": "a"]) }
        #expect(both?.code == -32602)
        let stats = try c.call("admin.stats")
        #expect(stats["semantic"]?["records"] == 1)
        #expect(stats["semantic"]?["collections"] == 1)
        #expect(stats["blas"]?["library"]?.stringValue?.isEmpty == false)
    }

    /// Debian 12's OpenBLAS 0.3.21 takes CPUs newer than itself for a Prescott and runs its
    /// pre-AVX kernels (a fifth of the speed); mnemod restarts itself with kernels that fit.
    @Test func openBLASRunsKernelsThatFitTheCPU() throws {
        let cpuinfo = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let flags = Set(cpuinfo.split(separator: "\n").first { $0.hasPrefix("flags") }?.split(separator: " ").map(String.init) ?? [])
        let daemon = try Daemon()
        let library = try #require(try daemon.client().call("admin.stats")["blas"]?["library"]?.stringValue)
        guard library.hasPrefix("OpenBLAS"), flags.contains("avx2"), flags.contains("fma") else { return }
        // "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY SkylakeX MAX_THREADS=64 (threads: 2)"
        let preAVX2: Set<String> = ["prescott", "core2", "penryn", "dunnington", "nehalem", "sandybridge", "atom"]
        #expect(!library.split(separator: " ").contains { preAVX2.contains($0.lowercased()) }, "\(library)")
    }

    /// A stand-in for an OpenAI-compatible `/v1/embeddings` endpoint on loopback: the
    /// embedding counts the letters a-h of the input; "fail" answers HTTP 500.
    static let stubEmbedder = """
        import http.server, json, sys
        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if body["input"] == "fail" or body["model"] != "stub-model":
                    self.send_response(500); self.end_headers(); return
                v = [float(body["input"].count(c)) + 0.01 for c in "abcdefgh"]
                out = json.dumps({"data": [{"embedding": v, "index": 0}], "model": body["model"]}).encode()
                self.send_response(200); self.send_header("Content-Length", str(len(out))); self.end_headers()
                self.wfile.write(out)
            def log_message(self, *a): pass
        s = http.server.HTTPServer(("127.0.0.1", 0), H)
        print(s.server_address[1], flush=True)
        s.serve_forever()
        """

    @Test func aConfiguredEmbeddingsEndpointEmbedsTextAndItsFailureIsUnavailable() throws {
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        server.arguments = ["python3", "-c", Self.stubEmbedder]
        let out = Pipe()
        server.standardOutput = out
        server.standardError = FileHandle.nullDevice
        server.standardInput = FileHandle.nullDevice
        try server.run()
        defer {
            // SIGKILL: the stub must not outlive the test (it would hold the runner's pipes).
            kill(server.processIdentifier, SIGKILL)
            server.waitUntilExit()
        }
        let portLine = String(decoding: out.fileHandleForReading.availableData, as: UTF8.self)
        let port = try #require(Int(portLine.trimmingCharacters(in: .whitespacesAndNewlines)))
        let daemon = try Daemon(config: """
            [semantic.embedder]
            kind = "openai"
            url = "http://127.0.0.1:\(port)/v1/embeddings"
            model = "stub-model"
            dims = 8
            timeout_ms = 5000
            """)
        let c = try daemon.client()
        _ = try c.call("sem.upsert", ["ns": "kb", "id": "a", "text": "aaaa"])
        _ = try c.call("sem.upsert", ["ns": "kb", "id": "h", "text": "hhhh"])
        let r = try c.call("sem.search", ["ns": "kb", "text": "aaa h", "k": 2])
        #expect(r["hits"]?.arrayValue?.map { $0["id"] } == ["a", "h"])
        #expect(try c.call("admin.stats")["semantic"]?["embedder"] == "stub-model")
        let e = wireError { try c.call("sem.upsert", ["ns": "kb", "text": "fail"]) }
        #expect(e?.appCode == .unavailable)
        #expect(try c.call("admin.stats")["semantic"]?["records"] == 2)
    }

    @Test func anUnreachableEmbedderIsAClearErrorNotAnotherModel() throws {
        let config = """
            [semantic.embedder]
            kind = "openai"
            url = "http://127.0.0.1:9/v1/embeddings"
            model = "nomic-embed-text"
            dims = 8
            timeout_ms = 500
            """
        let daemon = try Daemon(config: config)
        let c = try daemon.client()
        let e = wireError { try c.call("sem.upsert", ["ns": "kb", "text": "hello"]) }
        #expect(e?.appCode == .unavailable)
        #expect(try c.call("admin.stats")["semantic"]?["records"] == 0)
        // Client vectors still work.
        _ = try c.call("sem.upsert", ["ns": "kb", "text": "hello", "vector": [1, 2]])
    }
    /// A batch line of `calls` (ids from 1), as one JSON array.
    static func batchLine(_ calls: [(String, JSON)]) -> String {
        var w = JSONWriter(capacity: 4096)
        w.value(.array(calls.enumerated().map { i, c in
            ["jsonrpc": "2.0", "id": .int(Int64(i + 1)), "method": .string(c.0), "params": c.1]
        }))
        return String(decoding: w.bytes, as: UTF8.self) + "\n"
    }

    @Test func hybridSearchFusesBothArmsAndExplainsEveryHit() throws {
        let daemon = try Daemon()
        let c = try daemon.client()
        let facts = [
            ("reset", "The staging database is reset every night"),
            ("backup", "Database backups are kept for a week"),
            ("owner", "Alice owns the billing service"),
            ("pager", "The pager rotates every Monday"),
        ]
        for (i, (id, text)) in facts.enumerated() {
            let r = try c.call("sem.upsert", ["ns": .string("kb/\(i % 2)"), "id": .string(id), "text": .string(text)])
            #expect(r["similar"] == nil && r["truncated"] == nil)  // dedupe defaults to none: no scan
        }
        let question: JSON = "when is the staging database reset?"
        let hybrid = try c.call("sem.search", ["ns": "kb", "text": question, "k": 3])
        #expect(hybrid["hits"]?.arrayValue?.first?["id"] == "reset")
        #expect(hybrid["truncated"] == nil)
        // Default fusion (minmax): first in both arms is the top of both scales, 0.8 + 0.2.
        #expect(abs((hybrid["hits"]?.arrayValue?.first?["score"]?.doubleValue ?? 0) - 1) < 1e-9)
        let rrf = try c.call("sem.search", ["ns": "kb", "text": question, "k": 3, "fusion": "rrf"])
        let hits = try #require(rrf["hits"]?.arrayValue)
        #expect(hits.first?["id"] == "reset")
        for h in hits {
            let fused = try #require(h["match"]?["fused"]?.doubleValue)
            #expect(h["score"]?.doubleValue == fused)
            let ranks = [h["match"]?["vector"]?["rank"]?.int64Value, h["match"]?["keyword"]?["rank"]?.int64Value]
            let sum = ranks.compactMap { $0 }.reduce(0.0) { $0 + 1 / Double(60 + $1) }
            #expect(abs(sum - fused) < 1e-9)
        }
        #expect(hits.first?["match"]?["vector"]?["rank"] == 1 && hits.first?["match"]?["keyword"]?["rank"] == 1)
        let keyword = try c.call("sem.search", ["ns": "kb", "text": question, "mode": "keyword"])
        for (i, h) in (keyword["hits"]?.arrayValue ?? []).enumerated() {
            #expect(h["match"]?["keyword"]?["rank"]?.int64Value == Int64(i + 1))
            #expect(h["match"]?["keyword"]?["score"] == h["score"])
            #expect(h["match"]?["vector"] == nil && h["match"]?["fused"] == nil)
        }
        let vector = try c.call("sem.search", ["ns": "kb", "text": question, "mode": "vector", "k": 2])
        #expect(vector["hits"]?.arrayValue?.first?["match"]?["vector"]?["score"] == vector["hits"]?.arrayValue?.first?["score"])
        // Modes other than vector need text; a client vector searches by vector only.
        _ = try c.call("sem.upsert", ["ns": "vec", "id": "v", "text": "client vector", "vector": [1, 0]])
        for params: JSON in [["ns": "vec", "vector": [1, 0], "mode": "keyword"], ["ns": "vec", "vector": [1, 0], "mode": "hybrid"],
                             ["ns": "kb", "text": "x", "mode": "fuzzy"]] {
            let e = wireError { try c.call("sem.search", params) }
            #expect(e?.code == -32602 && e?.detail("field") == "mode", "\(params)")
        }
        #expect(try c.call("sem.search", ["ns": "vec", "vector": [1, 0], "mode": "vector"])["hits"]?.arrayValue?.count == 1)
        // A batch line of searches of several modes (answered together) matches the singles.
        let raw = try RawConnection(daemon.socket)
        raw.send(#"{"jsonrpc":"2.0","id":0,"method":"session.hello","params":{"agent":"batcher"}}"# + "\n")
        #expect(raw.readJSON()?["result"] != nil)
        let searches: [(String, JSON)] = ["vector", "keyword", "hybrid"].map { mode in
            ("sem.search", ["ns": "kb", "text": question, "mode": .string(mode), "k": 3])
        }
        raw.send(Self.batchLine(searches))
        let replies = try #require(raw.readJSON(timeoutMs: 10_000)?.arrayValue)
        #expect(replies.count == 3)
        for (reply, call) in zip(replies, searches) {
            // The same hits and ranks (vector scores agree to float rounding: sgemm against sgemv).
            let single = try c.call("sem.search", call.1)["hits"]?.arrayValue ?? []
            let batched = reply["result"]?["hits"]?.arrayValue ?? []
            #expect(batched.map { $0["id"] } == single.map { $0["id"] })
            #expect(batched.map { [$0["match"]?["vector"]?["rank"], $0["match"]?["keyword"]?["rank"]] }
                == single.map { [$0["match"]?["vector"]?["rank"], $0["match"]?["keyword"]?["rank"]] })
        }
    }

    @Test func aBatchLineOfUpsertsIsWrittenTogetherWithAnOutcomePerCall() throws {
        let daemon = try Daemon()
        let c = try daemon.client()
        _ = try c.call("sem.upsert", ["ns": "bulk", "id": "seed", "text": "seed", "vector": [1, 0, 0]])
        let raw = try RawConnection(daemon.socket)
        raw.send(#"{"jsonrpc":"2.0","id":0,"method":"session.hello","params":{"agent":"loader"}}"# + "\n")
        #expect(raw.readJSON()?["result"] != nil)
        var calls: [(String, JSON)] = (0..<20).map { i in
            ("sem.upsert", ["ns": "bulk", "id": .string("r\(i)"), "text": .string("record \(i)"), "vector": Self.vector(i, dims: 3)])
        }
        calls[5].1 = ["ns": "bulk", "id": "bad-dims", "text": "x", "vector": [1, 0]]
        calls[9].1 = ["ns": "bulk", "id": "bad-param", "text": "x", "vector": [1, 0, 0], "colour": "red"]
        calls[12].1 = ["ns": "bulk", "id": "dup", "text": "near seed", "vector": [1, .number("0.001"), 0], "dedupe": "report"]
        calls[14].1 = ["ns": "bulk/text", "id": "t1", "text": "embedded by the daemon"]
        calls[15].1 = ["ns": "bulk/text", "id": "t2", "text": "also embedded, in the same call"]
        calls.append(("wm.get", ["ns": "bulk", "key": "k"]))
        calls.append(("sem.upsert", ["ns": "bulk", "id": "after", "text": "after the break", "vector": [0, 0, 1]]))
        raw.send(Self.batchLine(calls))
        let replies = try #require(raw.readJSON(timeoutMs: 10_000)?.arrayValue)
        #expect(replies.map { $0["id"]?.int64Value } == (1...Int64(calls.count)).map { $0 })
        var versions: [Int64] = []
        for (i, reply) in replies.enumerated() {
            switch i {
            case 5: #expect(reply["error"]?["data"]?["code"] == "DIMENSION_MISMATCH")
            case 9: #expect(reply["error"]?["code"] == -32602)
            case 20: #expect(reply["result"]?["found"] == false)
            default:
                let v = try #require(reply["result"]?["version"]?.int64Value, "reply \(i): \(reply)")
                versions.append(v)
                #expect((reply["result"]?["similar"] != nil) == (i == 12), "reply \(i)")
            }
        }
        #expect(versions == versions.sorted() && Set(versions).count == versions.count)
        #expect(replies[12]["result"]?["similar"]?.arrayValue?.first?["id"] == "seed")
        #expect(try c.call("sem.get", ["ns": "bulk", "id": "bad-dims"])["found"] == false)
        #expect(try c.call("sem.get", ["ns": "bulk", "id": "bad-param"])["found"] == false)
        #expect(try c.call("sem.get", ["ns": "bulk", "id": "r19"])["provenance"]?["agent"] == "loader")
        #expect(try c.call("sem.get", ["ns": "bulk", "id": "after"])["found"] == true)
        let t = try c.call("sem.search", ["ns": "bulk/text", "text": "embedded in the same call", "k": 1])
        #expect(t["hits"]?.arrayValue?.first?["id"] == "t2")
        #expect(try c.call("admin.stats")["semantic"]?["records"] == 20)  // the seed, 18 of the batch's 20 upserts, and "after"
    }
}
