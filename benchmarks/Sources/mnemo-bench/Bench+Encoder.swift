import Foundation
import Histogram
import MnemoCore

/// What `encoder_peer.py` measured (ns per call).
struct EncoderPeer: Decodable {
    var single_ns: [UInt64]?
    var batch64_ns: [UInt64]?
    var version: String?
    var threads: Int?
    var missing: String?
}

/// The built-in sentence encoder next to sentence-transformers on PyTorch (CPU), both
/// in-process on the same model directory and the same texts: latency of one 20-word
/// text, and texts per second in batches of 64.
extension Bench {
    /// Deterministic 20-word texts in agent-memory style (an LCG over a fixed word list).
    static func encoderTexts(_ n: Int) -> [String] {
        let words = """
            the agent deploy failed because database migration timed out retry later user prefers dark mode \
            staging server reset nightly cache warmed test flaky integration release channel approval required \
            customer asked refund invoice overdue project alpha deadline moved friday team decided postgres \
            replica lag alert paged oncall engineer rolled back version config flag enabled metrics dashboard \
            slow query index added memory leak worker restarted queue backlog cleared api rate limit exceeded
            """.split(separator: " ").map(String.init)
        var state: UInt64 = 42
        func next() -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(words.count))
        }
        return (0..<n).map { _ in (0..<20).map { _ in words[next()] }.joined(separator: " ") }
    }

    func encoder() throws {
        let dir = ServerProcess.tempDir("embed")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let modelDir = LocalEmbedder.defaultModelsDirectory() + "/" + LocalEmbedder.defaultModel
        let texts = Self.encoderTexts(640)
        try JSONEncoder().encode(texts).write(to: URL(fileURLWithPath: dir + "/texts.json"))
        let samples = full ? 400 : 200, batches = full ? 20 : 10
        let embedder = try LocalEmbedder(directory: modelDir)
        extraMeta["encoder"] = "\(embedder.model), \(embedder.dims) dims, max \(embedder.maxTokens) tokens, BLAS \(BLAS.loaded)"
        for round in 0..<rounds {
            // mnemo's encoder, in-process (what a worker thread of mnemod runs).
            for t in texts.prefix(8) { _ = try embedder.embed([t], field: "text") }
            var single: [UInt64] = []
            for i in 0..<samples {
                let t0 = DispatchTime.now().uptimeNanoseconds
                _ = try embedder.embed([texts[i % texts.count]], field: "text")
                single.append(DispatchTime.now().uptimeNanoseconds - t0)
            }
            var batch: [UInt64] = []
            for i in 0..<batches {
                let chunk = (0..<64).map { texts[(i * 64 + $0) % texts.count] }
                let t0 = DispatchTime.now().uptimeNanoseconds
                _ = try embedder.embed(chunk, field: "text")
                batch.append(DispatchTime.now().uptimeNanoseconds - t0)
            }
            let note = "in-process, packed batch, cblas_sgemm"
            results.append(RunResult(workload: "embed one 20-word text", system: "mnemo", role: "mnemo", clients: 1, n: nil,
                                     note: note, samplesNs: single))
            results.append(RunResult(workload: "embed 64-text batch", system: "mnemo", role: "mnemo", clients: 1, n: nil,
                                     note: note, samplesNs: batch, opsPerSample: 64))
            // Through mnemod: text upserts in batch lines of 64 (one packed batch each).
            let m = try startMnemod("normal")
            defer { m.stop() }
            let perLine = try socketTextIngest(texts: texts, perLine: 64, socket: m.socket)
            results.append(RunResult(workload: "embed 64-text batch", system: "mnemo sem.upsert", role: "mnemo", clients: 1, n: nil,
                                     note: "text upserts over the socket, a batch line of 64 (embedded together, one commit)",
                                     samplesNs: perLine, opsPerSample: 64))
            // The peer, same texts, same model files.
            try pythonHelper("encoder_peer.py", ["--model-dir", modelDir, "--texts", dir + "/texts.json",
                                                 "--samples", String(samples), "--batches", String(batches),
                                                 "--out", dir + "/peer.json"], log: dir + "/peer-\(round).log")
            let peer = try JSONDecoder().decode(EncoderPeer.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/peer.json")))
            if let missing = peer.missing {
                extraMeta["encoder_peer"] = missing
                continue
            }
            let peerNote = "\(peer.version ?? "?"), \(peer.threads ?? 0) threads, in-process"
            if let ns = peer.single_ns {
                results.append(RunResult(workload: "embed one 20-word text", system: "sentence-transformers", role: "peer",
                                         clients: 1, n: nil, note: peerNote, samplesNs: ns))
            }
            if let ns = peer.batch64_ns {
                results.append(RunResult(workload: "embed 64-text batch", system: "sentence-transformers", role: "peer",
                                         clients: 1, n: nil, note: peerNote, samplesNs: ns, opsPerSample: 64))
            }
        }
    }

    /// Sends `texts` as `sem.upsert` batch lines of `perLine` (no vectors: mnemod embeds
    /// them), one line at a time; the nanoseconds of each line, from send to reply.
    func socketTextIngest(texts: [String], perLine: Int, socket: String) throws -> [UInt64] {
        let s = try Connect.helloSocket(socket, agent: "embed")
        var lines: [[UInt8]] = []
        for start in stride(from: 0, to: texts.count, by: perLine) {
            let items = texts[start..<min(texts.count, start + perLine)].enumerated().map { i, t in
                "{\"jsonrpc\":\"2.0\",\"id\":\(start + i),\"method\":\"sem.upsert\",\"params\":{\"ns\":\"bench/text\",\"text\":\(Connect.json(t))}}"
            }
            lines.append(Array(("[" + items.joined(separator: ",") + "]\n").utf8))
        }
        // Warm-up line, not timed (the model's first pages, the collection's creation).
        try s.send(lines[0])
        _ = try s.readLine()
        var samples: [UInt64] = []
        for line in lines {
            let t0 = DispatchTime.now().uptimeNanoseconds
            try s.send(line)
            let reply = try s.readLine()
            guard reply.first == UInt8(ascii: "["), !reply.contains(subsequence: Array("\"error\"".utf8)) else {
                throw BenchError("text upserts failed: \(String(decoding: reply.prefix(400), as: UTF8.self))")
            }
            samples.append(DispatchTime.now().uptimeNanoseconds - t0)
        }
        return samples
    }
}
