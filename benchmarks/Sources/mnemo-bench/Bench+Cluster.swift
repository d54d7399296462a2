import Foundation
import Histogram

/// Cluster mode: three mnemod nodes on one PostgreSQL (scripts/pg-dev.sh), next to a single
/// node for the local reads and to PostgreSQL used directly for the writes.
///
/// - `cluster wm.get` (1 client): a node answers from its own memory, like a single node;
///   the single node is the peer.
/// - `cluster sem.search top-10` (1 client, 100k vectors ingested on another node and
///   applied from the feed): against a single node holding the same vectors.
/// - `cluster wm.set`, `cluster claim.acquire+release`: clients spread over the three nodes;
///   the peer is pgbench running the statements a node sends for one write (lock the
///   counter row, append the change, bump the counter, notify, commit), from as many
///   clients, straight to the same PostgreSQL.
extension Bench {
    func cluster() throws {
        let repo = URL(fileURLWithPath: scripts).deletingLastPathComponent().path
        let pgDir = ServerProcess.tempDir("pg")
        try? FileManager.default.removeItem(atPath: pgDir)
        // Through system(3), not Process: the server pg_ctl leaves running would inherit
        // Process's exit-watching descriptor, and waitUntilExit would wait for it.
        guard system("'\(repo)/scripts/pg-dev.sh' start '\(pgDir)' >/dev/null") == 0 else {
            throw BenchError("scripts/pg-dev.sh start failed (is postgresql-15 installed?)")
        }
        defer { _ = system("'\(repo)/scripts/pg-dev.sh' stop '\(pgDir)' >/dev/null 2>&1") }
        let sock = pgDir + "/sock"
        let logs = ServerProcess.tempDir("pg-logs")
        defer { try? FileManager.default.removeItem(atPath: logs) }
        let psql = { (sql: String, db: String) in
            try runCommand("/usr/bin/psql", ["-h", sock, "-U", "postgres", "-d", db, "-XAtqc", sql], log: logs + "/psql.log")
        }
        try psql("CREATE DATABASE bench", "mnemo")
        try psql("CREATE DATABASE peer", "mnemo")
        let config = { (node: Int) in "[cluster]\npostgres = \"host=\(sock) dbname=bench user=postgres\"\nnode = \"n\(node)\"\n" }
        let nodes = try (0..<3).map { try ServerProcess.mnemod(mnemod, durability: "normal", cpus: pin, threads: mnemodThreads,
                                                                dir: ServerProcess.tempDir("node\($0)"), config: config($0)) }
        let single = try startMnemod("normal")
        defer {
            for n in nodes {
                n.stop()
                try? FileManager.default.removeItem(atPath: n.dir)
            }
            single.stop()
        }
        // The peer's tables: the node's own schema, made by a node started on it once.
        let schemaNode = try ServerProcess.mnemod(mnemod, durability: "normal", cpus: nil, threads: 1,
                                                  dir: ServerProcess.tempDir("schema-node"), config: "[cluster]\npostgres = \"host=\(sock) dbname=peer user=postgres\"\nnode = \"schema\"\n")
        schemaNode.stop()
        try? FileManager.default.removeItem(atPath: schemaNode.dir)
        try preload(mnemo: single.socket, redis: nil, keys: 1000)
        try preload(mnemo: nodes[0].socket, redis: nil, keys: 1000)
        let gets = (0..<1000).map(getLine)
        extraMeta["postgresql"] = commandOutput("/usr/lib/postgresql/15/bin/postgres", ["--version"])
        try rounds {
            [
                try measureMultiplexed(workload: "cluster wm.get", system: "mnemo cluster node", clients: 1, n: 1000,
                                       perClient: requests, warmup: 500, threads: clientThreads) {
                    try Connect.mnemo(nodes[1].socket, agent: "bench\($0)", lines: gets)
                },
                try measureMultiplexed(workload: "cluster wm.get", system: "mnemo single node", role: "peer", clients: 1, n: 1000,
                                       perClient: requests, warmup: 500, threads: clientThreads) {
                    try Connect.mnemo(single.socket, agent: "bench\($0)", lines: gets)
                },
            ]
        }
        try clusterSemanticSearch(node: nodes[0].socket, reader: nodes[1].socket, single: single.socket)
        let body = "{\"t\":\"put\",\"ns\":\"bench\",\"k\":\"c0-k0\",\"v\":\"\(value)\",\"ver\":1,\"exp\":0,\"p\":{}}"
        let hex = body.utf8.map { String(format: "%02x", $0) }.joined()
        let write = """
            BEGIN;
            SELECT rev, floor(extract(epoch FROM clock_timestamp()) * 1000)::int8 FROM mnemo_counter WHERE id = 1 FOR UPDATE;
            WITH c AS (UPDATE mnemo_counter SET rev = rev + 1 WHERE id = 1 RETURNING rev) INSERT INTO mnemo_changes (rev, first_rev, node, body) SELECT rev, rev, 'peer', '\\x\(hex)'::bytea FROM c;
            NOTIFY mnemo_changes;
            COMMIT;

            """
        let perWrite = requestsDurable
        for n in counts {
            try rounds {
                [
                    try measureMultiplexed(workload: "cluster wm.set", system: "mnemo 3-node cluster", clients: n,
                                           perClient: perWrite, warmup: 20, threads: clientThreads) {
                        try Connect.mnemo(nodes[$0 % 3].socket, agent: "bench\($0)", lines: self.setLines($0))
                    },
                    try pgbench(workload: "cluster wm.set", script: write, clients: n, perClient: perWrite, sock: sock),
                ]
            }
        }
        for n in counts {
            let steps = max(10, perWrite / 2)
            try rounds {
                [
                    try measureMultiplexed(workload: "cluster claim.acquire+release", system: "mnemo 3-node cluster", clients: n,
                                           perClient: steps, warmup: 10, threads: clientThreads) { c in
                        let acquire = Connect.rpc("claim.acquire", "{\"ns\":\"bench\",\"resource\":\"r\(c)\",\"ttl_ms\":30000}")
                        return try Connect.mnemo(nodes[c % 3].socket, agent: "bench\(c)", stepLength: 2) { i, previous in
                            if i % 2 == 0 { return acquire }
                            let token = Connect.integer("token", in: previous) ?? -1
                            return Connect.rpc("claim.release", "{\"ns\":\"bench\",\"resource\":\"r\(c)\",\"token\":\(token)}")
                        }
                    },
                    try pgbench(workload: "cluster claim.acquire+release", script: write + write, clients: n, perClient: steps,
                                sock: sock),
                ]
            }
        }
    }

    /// `sem.search` top-10 at 1 client over 100k 384-d vectors, on a node that received them
    /// through the feed (ingested on another node) against a single node holding the same.
    private func clusterSemanticSearch(node: String, reader: String, single: String, n: Int = 100_000) throws {
        let dir = ServerProcess.tempDir("cluster-sem")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try pythonHelper("semantic_bench.py", ["vectors", "--n", String(n), "--vectors-out", dir + "/vectors.f32",
                                               "--queries-out", dir + "/queries.json"], log: dir + "/vectors.log")
        let clusterNs = try ingest(vectors: dir + "/vectors.f32", n: n, into: node)
        _ = try ingest(vectors: dir + "/vectors.f32", n: n, into: single)
        log("   ingested \(n) vectors through a cluster node in \(String(format: "%.1f", Double(clusterNs) / 1e9)) s")
        results.append(RunResult(workload: "cluster sem.upsert ingest, 400 per line", system: "mnemo cluster node", role: "mnemo",
                                 clients: 1, n: n, note: "vector_b64 over the socket, one cluster transaction per line",
                                 samplesNs: [clusterNs], opsPerSample: n))
        // The reading node has applied every line once it answers a read at the writer's revision.
        let rev = (try call(try Connect.helloSocket(node, agent: "rev"), Connect.rpc("admin.stats", "{}"))["rev"] as? Int) ?? 0
        let waiter = try Connect.helloSocket(reader, agent: "wait")
        let deadline = Date().addingTimeInterval(300)
        while (try? call(waiter, Connect.rpc("sem.get", "{\"ns\":\"bench/vectors\",\"id\":\"v0\",\"min_rev\":\(rev)}"))) == nil {
            guard Date() < deadline else { throw BenchError("the reading node did not apply revision \(rev) within 300 s") }
        }
        let queries = try JSONDecoder().decode([String: AnyCodableB64].self,
                                               from: Data(contentsOf: URL(fileURLWithPath: dir + "/queries.json")))["b64"]?.list ?? []
        guard !queries.isEmpty else { throw BenchError("no queries written") }
        let lines = queries.map { Connect.rpc("sem.search", "{\"ns\":\"bench/vectors\",\"vector_b64\":\"\($0)\",\"k\":10}") }
        let samples = semanticSamples(n).single
        try rounds {
            [
                try measureMultiplexed(workload: "cluster sem.search top-10", system: "mnemo cluster node", clients: 1, n: n,
                                       perClient: samples, warmup: 5) {
                    try Connect.mnemo(reader, agent: "bench\($0)", lines: lines)
                },
                try measureMultiplexed(workload: "cluster sem.search top-10", system: "mnemo single node", role: "peer", clients: 1,
                                       n: n, perClient: samples, warmup: 5) {
                    try Connect.mnemo(single, agent: "bench\($0)", lines: lines)
                },
            ]
        }
    }

    /// pgbench running `script` from `clients` connections (one thread), each transaction
    /// timed (`--log`): one sample per transaction.
    private func pgbench(workload: String, script: String, clients: Int, perClient: Int, sock: String) throws -> RunResult {
        let dir = ServerProcess.tempDir("pgbench")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try script.write(toFile: dir + "/write.sql", atomically: true, encoding: .utf8)
        let started = Date()
        try runCommand("/usr/lib/postgresql/15/bin/pgbench",
                       ["-h", sock, "-U", "postgres", "-n", "-c", String(clients), "-j", "1", "-t", String(perClient),
                        "-f", dir + "/write.sql", "-l", "--log-prefix", dir + "/tx", "peer"], log: dir + "/pgbench.log")
        let seconds = Date().timeIntervalSince(started)
        var hist = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
        var count = 0
        for file in try FileManager.default.contentsOfDirectory(atPath: dir) where file.hasPrefix("tx") {
            for line in try String(contentsOfFile: dir + "/" + file, encoding: .utf8).split(separator: "\n") {
                // client_id transaction_no time_us script_no time_epoch time_us_part
                let fields = line.split(separator: " ")
                guard fields.count >= 3, let us = UInt64(fields[2]) else { continue }
                hist.record(us * 1000)
                count += 1
            }
        }
        guard count > 0 else { throw BenchError("pgbench wrote no transaction log in \(dir)") }
        let tps = (try? String(contentsOfFile: dir + "/pgbench.log", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("tps = ") }
            .flatMap { Double($0.dropFirst(6).split(separator: " ").first ?? "") } ?? Double(count) / seconds
        return RunResult(workload: workload, system: "postgresql direct (pgbench)", role: "peer", clients: clients,
                         note: "the statements of one node write, straight to the same PostgreSQL", hist: hist,
                         seconds: seconds, opsPerSecond: tps)
    }
}
