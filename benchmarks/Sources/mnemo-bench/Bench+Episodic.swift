import Foundation

/// What `episodic_bench.py load` writes for the harness to replay.
struct EpisodicWorkload: Decodable {
    var records: Int
    var namespaces: Int
    var appends: [[String]]
    var queries: [String]
    var searches: [[String]]
}

/// Episodic memory next to SQLite used directly, on copies of the same database.
extension Bench {
    /// For each size: mnemod creates an empty database, the Python helper bulk-loads it,
    /// the harness copies it for the SQLite peer, then `ep.query` (latest 20, desc),
    /// `ep.search` (two words) and `ep.append` run against both. mnemod runs with
    /// durability `normal` (WAL, `synchronous = NORMAL`, group commit of up to 512
    /// concurrent appends); the peer uses the same settings and commits each append in
    /// its own transaction (one writer connection per client, as separate agent
    /// processes sharing a file would). Every client count runs at the first size; the
    /// others at one client (latency against N).
    func episodic() throws {
        for (index, size) in epSizes.enumerated() {
            let dir = ServerProcess.tempDir("ep-\(size)")
            defer { try? FileManager.default.removeItem(atPath: dir) }
            // Loaded through the socket, as clients write; then stopped, so that the peer
            // gets a copy of the database mnemod wrote.
            let loading = try startMnemod("normal", dir: dir)
            let baseline = loading.rssBytes
            let db = dir + "/data/episodic.sqlite"
            let t0 = Date()
            try pythonHelper("episodic/episodic_bench.py",
                             ["load", "--socket", loading.socket, "--records", String(size), "--workload-out", dir + "/workload.json"],
                             log: dir + "/load.log")
            log("   loaded \(size) records over the socket in \(Int(Date().timeIntervalSince(t0))) s")
            loading.stop()
            let peerDB = dir + "/peer.sqlite"
            try SQLiteDB.copy(db, to: peerDB)
            let w = try JSONDecoder().decode(EpisodicWorkload.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/workload.json")))
            let m = try startMnemod("normal", dir: dir)
            defer { m.stop() }
            try checkEpisodic(m.socket, peerDB: peerDB, w)

            let queryLines = w.queries.map { Connect.rpc("ep.query", "{\"ns\":\(Connect.json($0)),\"order\":\"desc\",\"limit\":20}") }
            let searchLines = w.searches.map {
                Connect.rpc("ep.search", "{\"ns\":\(Connect.json($0[0])),\"text\":\(Connect.json($0[1])),\"limit\":10}")
            }
            let appendLines = w.appends.map {
                Connect.rpc("ep.append", "{\"ns\":\(Connect.json($0[0])),\"kind\":\"observation\",\"content\":\(Connect.json($0[1]))}")
            }
            let readsPer = { (n: Int) in n == 1 ? (self.full ? 2000 : 1000) : (self.full ? 200 : 100) }
            let appendsPer = { (n: Int) in n == 1 ? (self.full ? 3000 : 1000) : (self.full ? 200 : 100) }
            for n in index == 0 ? counts : [1] {
                try rounds {
                    [
                        try measureMultiplexed(workload: "ep.query latest 20", system: "mnemo", clients: n, n: size,
                                               perClient: readsPer(n), warmup: 50, threads: clientThreads) { c in
                            try Connect.mnemo(m.socket, agent: "bench\(c)", stepLength: 1) { i, _ in
                                queryLines[(i * 7 + c * 131) % queryLines.count]
                            }
                        },
                        try measureThreads(workload: "ep.query latest 20", system: "sqlite direct", clients: n, n: size,
                                           perClient: readsPer(n), warmup: 50) { c in
                            let sql = try EpisodicSQL(path: peerDB)
                            return { i in _ = try sql.latest(ns: w.queries[(i * 7 + c * 131) % w.queries.count], limit: 20) }
                        },
                        try measureMultiplexed(workload: "ep.search", system: "mnemo", clients: n, n: size,
                                               perClient: readsPer(n), warmup: 50, threads: clientThreads) { c in
                            try Connect.mnemo(m.socket, agent: "bench\(c)", stepLength: 1) { i, _ in
                                searchLines[(i * 7 + c * 131) % searchLines.count]
                            }
                        },
                        try measureThreads(workload: "ep.search", system: "sqlite direct", clients: n, n: size,
                                           perClient: readsPer(n), warmup: 50) { c in
                            let sql = try EpisodicSQL(path: peerDB)
                            return { i in
                                let s = w.searches[(i * 7 + c * 131) % w.searches.count]
                                _ = try sql.search(ns: s[0], text: s[1], limit: 10)
                            }
                        },
                    ]
                }
            }
            let dbBytes = ((try? FileManager.default.attributesOfItem(atPath: db))?[.size] as? Int) ?? 0
            memoryResults.append(MemoryResult(what: "episodic records", system: "mnemo normal", n: size, rssBeforeBytes: baseline,
                                              rssAfterBytes: m.rssBytes, reportedBytes: dbBytes, reportedWhat: "database file",
                                              floorBytes: nil))
            var round = 0
            for n in index == 0 ? counts : [1] {
                try rounds {
                    round += 1
                    let tag = round
                    return [
                        try measureMultiplexed(workload: "ep.append", system: "mnemo normal", clients: n, n: size,
                                               perClient: appendsPer(n), warmup: 20, threads: clientThreads) { c in
                            try Connect.mnemo(m.socket, agent: "bench\(c)", stepLength: 1) { i, _ in
                                appendLines[(i + c * 61) % appendLines.count]
                            }
                        },
                        try measureThreads(workload: "ep.append", system: "sqlite direct", clients: n, n: size,
                                           note: "one transaction per append", perClient: appendsPer(n), warmup: 20) { c in
                            let sql = try EpisodicSQL(path: peerDB)
                            return { i in
                                let a = w.appends[(i + c * 61) % w.appends.count]
                                try sql.append(id: "p\(tag)-\(n)-\(c)-\(i)", ns: a[0], content: a[1], agent: "bench\(c)")
                            }
                        },
                    ]
                }
            }
        }
    }

    /// Both sides answer the same: the first queries and searches return as many records.
    private func checkEpisodic(_ socket: String, peerDB: String, _ w: EpisodicWorkload) throws {
        let s = try Connect.helloSocket(socket, agent: "check")
        let sql = try EpisodicSQL(path: peerDB)
        for i in 0..<20 {
            let q = try call(s, Connect.rpc("ep.query", "{\"ns\":\(Connect.json(w.queries[i])),\"order\":\"desc\",\"limit\":20}"))
            let mine = (q["records"] as? [Any])?.count ?? -1
            let theirs = try sql.latest(ns: w.queries[i], limit: 20)
            guard mine == theirs else { throw BenchError("ep.query \(w.queries[i]): mnemod \(mine) records, sqlite \(theirs)") }
            let t = w.searches[i]
            let r = try call(s, Connect.rpc("ep.search", "{\"ns\":\(Connect.json(t[0])),\"text\":\(Connect.json(t[1])),\"limit\":10}"))
            let hits = (r["hits"] as? [Any])?.count ?? (r["records"] as? [Any])?.count ?? -1
            let peer = try sql.search(ns: t[0], text: t[1], limit: 10)
            guard hits == peer else { throw BenchError("ep.search \(t): mnemod \(hits) hits, sqlite \(peer)") }
        }
    }

    /// One JSON-RPC call on a blocking socket; returns the result object.
    func call(_ s: BenchSocket, _ line: [UInt8]) throws -> [String: Any] {
        try s.send(line)
        let reply = try s.readLine()
        guard let obj = try JSONSerialization.jsonObject(with: Data(reply)) as? [String: Any],
            let result = obj["result"] as? [String: Any]
        else { throw BenchError("unexpected reply: \(String(decoding: reply.prefix(300), as: UTF8.self))") }
        return result
    }
}
