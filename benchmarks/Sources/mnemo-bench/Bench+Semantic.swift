import Foundation

/// What `semantic_bench.py peers` measured (latency samples in ns).
struct VectorPeers: Decodable {
    struct Peer: Decodable {
        var single_ns: [UInt64]?
        var batch64_ns: [UInt64]?
        var ids: [[Int]]?
        /// Time to add all N vectors (FAISS `add`; sqlite-vec: inserts in one transaction).
        var ingest_ns: UInt64?
        var missing: String?
        var version: String?
        var same_top10_as_numpy: Double?
    }
    var numpy_version: String
    var numpy_blas: String?
    var numpy: Peer
    var faiss: Peer
    var sqlite_vec: Peer
}

/// Exact top-10 vector search next to numpy, FAISS and sqlite-vec in-process.
extension Bench {
    /// Queries per size: single queries, 64-query batches, sqlite-vec queries.
    func semanticSamples(_ size: Int) -> (single: Int, batches: Int, sqliteVec: Int) {
        // sqlite-vec takes long to load (one INSERT per vector into vec0): the short
        // profile measures it at the smallest size only.
        if !full { return size <= 10_000 ? (200, 10, 20) : size <= 100_000 ? (100, 5, 0) : (20, 2, 0) }
        return size <= 10_000 ? (400, 20, 20) : size <= 100_000 ? (200, 20, 10) : (40, 3, 3)
    }

    /// For each size: the N vectors are loaded into mnemod through its socket (`sem.upsert`
    /// batch lines of 400 `vector_b64` upserts, timed as the ingest workload), then mnemod
    /// restarts and loads them from its database; then `sem.search` (one query per
    /// request, `vector_b64`, one client) and 64-query batch lines over the socket,
    /// mnemod's RSS, a check that its top-10 ids equal numpy's, and the Python peers on the
    /// same vectors.
    func semantic() throws {
        for size in semSizes {
            let dir = ServerProcess.tempDir("sem-\(size)")
            defer { try? FileManager.default.removeItem(atPath: dir) }
            try pythonHelper("semantic_bench.py", ["vectors", "--n", String(size), "--vectors-out", dir + "/vectors.f32",
                                                   "--queries-out", dir + "/queries.json"], log: dir + "/vectors.log")
            let empty = try startMnemod("normal", dir: dir)
            let baseline = empty.rssBytes
            let ingestNs = try ingest(vectors: dir + "/vectors.f32", n: size, into: empty.socket)
            results.append(RunResult(workload: "sem.upsert ingest, 400 per line", system: "mnemo", role: "mnemo", clients: 1,
                                     n: size, note: "vector_b64 over the socket, one transaction per line", samplesNs: [ingestNs],
                                     opsPerSample: size))
            log("   ingested \(size) vectors through the socket in \(String(format: "%.2f", Double(ingestNs) / 1e9)) s")
            // What `mnemo import --server` does: admin.export of the facts into the transfer
            // directory, the file carried to a fresh mnemod's, admin.import there.
            let export = dir + "/data/transfer/export.jsonl"
            _ = try call(try Connect.helloSocket(empty.socket, agent: "export"),
                         Connect.rpc("admin.export", "{\"ns\":\"bench\",\"tiers\":[\"sem\"],\"path\":\"export.jsonl\"}"))
            empty.stop()
            let fresh = try startMnemod("normal")
            try FileManager.default.moveItem(atPath: export, toPath: fresh.dir + "/data/transfer/export.jsonl")
            let importer = try Connect.helloSocket(fresh.socket, agent: "import")
            let i0 = DispatchTime.now().uptimeNanoseconds
            _ = try call(importer, Connect.rpc("admin.import", "{\"path\":\"export.jsonl\"}"))
            results.append(RunResult(workload: "admin.import of the exported facts", system: "mnemo", role: "mnemo", clients: 1,
                                     n: size, note: "what mnemo import runs: JSONL with vector_b64, checked, then batched",
                                     samplesNs: [DispatchTime.now().uptimeNanoseconds - i0], opsPerSample: size))
            fresh.stop()
            var t0 = Date()
            let m = try startMnemod("normal", dir: dir)
            defer { m.stop() }
            extraMeta["mnemod_load_\(size)_vectors_s"] = String(format: "%.1f", Date().timeIntervalSince(t0))
            usleep(300_000)
            memoryResults.append(MemoryResult(what: "384-d vectors", system: "mnemo", n: size, rssBeforeBytes: baseline,
                                              rssAfterBytes: m.rssBytes, reportedBytes: nil, reportedWhat: nil,
                                              floorBytes: size * 384 * 4))
            let queries = try JSONDecoder().decode([String: AnyCodableB64].self,
                                                   from: Data(contentsOf: URL(fileURLWithPath: dir + "/queries.json")))["b64"]?.list ?? []
            guard queries.count == 64 else { throw BenchError("no queries written") }
            let lines = queries.map { Connect.rpc("sem.search", "{\"ns\":\"bench/vectors\",\"vector_b64\":\"\($0)\",\"k\":10}") }
            var batch: [UInt8] = [UInt8(ascii: "[")]
            for (i, l) in lines.enumerated() {
                if i > 0 { batch.append(UInt8(ascii: ",")) }
                batch += l.dropLast()  // without the newline
            }
            batch += Array("]\n".utf8)
            // mnemod's top-10 ids, for the exactness check against numpy.
            let s = try Connect.helloSocket(m.socket, agent: "check")
            let mine: [[Int]] = try lines.map { line in
                ((try call(s, line)["hits"] as? [[String: Any]]) ?? []).map { Int(($0["id"] as? String ?? "v-1").dropFirst()) ?? -1 }
            }
            let (single, batches, vecSamples) = semanticSamples(size)
            results.append(try measureMultiplexed(workload: "sem.search top-10", system: "mnemo", clients: 1, n: size,
                                                  perClient: single, warmup: 5) {
                try Connect.mnemo(m.socket, agent: "bench\($0)", lines: lines)
            })
            var perBatch = try measureMultiplexed(workload: "sem.search 64-query batch", system: "mnemo", clients: 1, n: size,
                                                  perClient: batches, warmup: 1) { _ in
                MuxConnection(socket: try Connect.helloSocket(m.socket, agent: "batch"), requests: [batch], framing: .line) { reply in
                    reply.first == UInt8(ascii: "[") && reply.count > 100 ? nil
                        : "unexpected batch reply: \(String(decoding: reply.prefix(300), as: UTF8.self))"
                }
            }
            perBatch.opsPerSecond *= 64  // queries per second
            results.append(perBatch)
            m.stop()

            t0 = Date()
            try pythonHelper("semantic_bench.py", ["peers", "--n", String(size), "--samples", String(single),
                                                   "--batches", String(batches), "--sqlite-vec-samples", String(vecSamples),
                                                   "--out", dir + "/peers.json"], log: dir + "/peers.log")
            log("   peers at \(size) vectors: \(Int(Date().timeIntervalSince(t0))) s")
            let peers = try JSONDecoder().decode(VectorPeers.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/peers.json")))
            extraMeta["numpy"] = "\(peers.numpy_version) (BLAS: \(peers.numpy_blas ?? "?"))"
            if let ids = peers.numpy.ids {
                let same = zip(mine, ids).filter { $0 == $1 }.count
                extraMeta["sem_\(size)_same_top10_as_numpy"] = "\(same)/\(ids.count)"
                if same < ids.count * 9 / 10 { log("   warning: mnemod's top-10 equals numpy's for only \(same) of \(ids.count) queries") }
            }
            let systems: [(String, VectorPeers.Peer, String?)] = [
                ("numpy", peers.numpy, "X @ q + argpartition, in-process"),
                ("faiss IndexFlatIP", peers.faiss, peers.faiss.version.map { "faiss \($0), in-process" }),
                ("sqlite-vec", peers.sqlite_vec, peers.sqlite_vec.same_top10_as_numpy.map {
                    "vec0 brute force via apsw; top-10 equal to numpy's: \(Int($0 * 100))%"
                }),
            ]
            for (name, p, note) in systems {
                if let missing = p.missing {
                    extraMeta["sem_\(size)_\(name)"] = missing
                    continue
                }
                if let ns = p.single_ns {
                    results.append(RunResult(workload: "sem.search top-10", system: name, role: "peer", clients: 1, n: size,
                                             note: note, samplesNs: ns))
                }
                if let ns = p.batch64_ns {
                    results.append(RunResult(workload: "sem.search 64-query batch", system: name, role: "peer", clients: 1, n: size,
                                             note: note, samplesNs: ns, opsPerSample: 64))
                }
                if let ns = p.ingest_ns {
                    results.append(RunResult(workload: "sem.upsert ingest, 400 per line", system: name, role: "peer", clients: 1,
                                             n: size, note: name == "sqlite-vec" ? "vec0 inserts in one transaction, in-process"
                                                 : "index.add of all vectors, in-process",
                                             samplesNs: [ns], opsPerSample: size))
                }
            }
        }
    }
}

extension Bench {
    /// Sends the raw float32 vectors of `path` as `sem.upsert` batch lines of 400 records
    /// (`vector_b64`, ids `v0`...), two lines in flight, checking every reply; the
    /// nanoseconds from the first send to the last reply.
    func ingest(vectors path: String, n: Int, into socket: String, perLine: Int = 400) throws -> UInt64 {
        let raw = try Data(contentsOf: URL(fileURLWithPath: path))
        guard raw.count == n * 384 * 4 else { throw BenchError("\(path): \(raw.count) bytes for \(n) vectors") }
        var lines: [[UInt8]] = []
        var start = 0
        while start < n {
            let end = min(n, start + perLine)
            var line = "["
            for i in start..<end {
                if i > start { line += "," }
                let b64 = raw[(i * 1536)..<((i + 1) * 1536)].base64EncodedString()
                line += "{\"jsonrpc\":\"2.0\",\"id\":\(i),\"method\":\"sem.upsert\",\"params\":{\"ns\":\"bench/vectors\","
                    + "\"id\":\"v\(i)\",\"text\":\"fact \(i)\",\"vector_b64\":\"\(b64)\"}}"
            }
            lines.append(Array((line + "]\n").utf8))
            start = end
        }
        let s = try Connect.helloSocket(socket, agent: "ingest")
        let t0 = DispatchTime.now().uptimeNanoseconds
        var sent = 0, received = 0
        while received < lines.count {
            while sent < lines.count, sent - received < 2 {
                try s.send(lines[sent])
                sent += 1
            }
            let reply = try s.readLine()
            guard reply.first == UInt8(ascii: "["), !reply.contains(subsequence: Array("\"error\"".utf8)) else {
                throw BenchError("ingest line \(received) failed: \(String(decoding: reply.prefix(400), as: UTF8.self))")
            }
            received += 1
        }
        return DispatchTime.now().uptimeNanoseconds - t0
    }
}

extension ArraySlice<UInt8> {
    /// Whether `needle` occurs in the bytes.
    func contains(subsequence needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, count >= needle.count else { return false }
        var i = startIndex
        while i <= endIndex - needle.count {
            if self[i] == needle[0], self[i..<(i + needle.count)].elementsEqual(needle) { return true }
            i += 1
        }
        return false
    }
}

/// `{"b64": [...], "d": 384}`: decodes the list and ignores the rest.
struct AnyCodableB64: Decodable {
    var list: [String]?
    init(from decoder: any Decoder) throws {
        list = try? decoder.singleValueContainer().decode([String].self)
    }
}
