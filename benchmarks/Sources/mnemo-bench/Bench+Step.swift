import Foundation

/// The token of the claim taken earlier in the step (one per connection or client thread).
private final class StepState: @unchecked Sendable {
    // @unchecked: used by the one client thread that drives its connection.
    var token: Int64 = -1
    var scores: [Float] = []
}

/// One agent step over every tier: read the board, claim a task, append an episode,
/// recall 10 facts, write the result, release the claim. The peer is the same step as an
/// agent would assemble it without mnemod: Redis (board `GET`, lock `SET NX PX`, result
/// `SET NX EX`, release by compare-and-delete `EVALSHA`), SQLite used directly (the
/// episode, in its own transaction, in mnemod's schema) and an in-process brute-force
/// search (`sgemv` + top-k over the same 10k facts, what numpy's `X @ q` does).
extension Bench {
    static let stepFacts = 10_000

    func agentStep() throws {
        let dir = ServerProcess.tempDir("step")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try startMnemod("normal", dir: dir).stop()
        try SQLiteDB.copy(dir + "/data/episodic.sqlite", to: dir + "/peer.sqlite")
        try pythonHelper("semantic_bench.py", ["load", "--data", dir + "/data", "--n", String(Self.stepFacts),
                                               "--queries-out", dir + "/queries.json", "--vectors-out", dir + "/facts.f32"],
                         log: dir + "/load.log")
        let index = try BruteForceIndex(path: dir + "/facts.f32", dims: 384)
        let b64 = try JSONDecoder().decode([String: AnyCodableB64].self,
                                           from: Data(contentsOf: URL(fileURLWithPath: dir + "/queries.json")))["b64"]?.list ?? []
        let queries: [[Float]] = b64.map { s in
            let d = Data(base64Encoded: s) ?? Data()
            return d.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        }
        let m = try startMnemod("normal", dir: dir)
        let r = try ServerProcess.redis(.none, cpus: pin)
        defer { m.stop(); r.stop() }

        // The board: 20 tasks with their state, ~1.3 KB of JSON.
        let board = "{\"tasks\":[" + (0..<20).map { "{\"id\":\"task-\($0)\",\"state\":\"pending\",\"title\":\"step \($0) of the plan\"}" }
            .joined(separator: ",") + "]}"
        let setup = try Connect.helloSocket(m.socket, agent: "planner")
        _ = try call(setup, Connect.rpc("wm.set", "{\"ns\":\"bench/board\",\"key\":\"board\",\"value\":\(board)}"))
        let rs = try BenchSocket(path: r.socket)
        try rs.send(Connect.resp(["SET", "board", board]))
        _ = try rs.readRESP()
        let script = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
        try rs.send(Connect.resp(["SCRIPT", "LOAD", script]))
        let sha = String(decoding: try rs.readRESPBulk(), as: UTF8.self)
        let content = "read the board, took the task, recalled the relevant facts and wrote the result of the step"
        let result = "{\"ok\":true,\"facts\":10,\"summary\":\"\(content)\"}"

        var round = 0
        for n in counts {
            let steps = n == 1 ? (full ? 1000 : 150) : (full ? 30 : 8)
            try rounds {
                round += 1
                let tag = round
                return [
                    try measureMultiplexed(workload: "agent step", system: "mnemo", clients: n, n: Self.stepFacts,
                                           note: "6 requests: wm.get, claim.acquire, ep.append, sem.search, result.put, claim.release",
                                           perClient: steps, warmup: 5, threads: n) { c in
                        let state = StepState()
                        return try Connect.mnemo(m.socket, agent: "agent\(c)", stepLength: 6) { i, previous in
                            let s = i / 6
                            let task = "task-r\(tag)-c\(c)-\(s)"
                            switch i % 6 {
                            case 0: return Connect.rpc("wm.get", "{\"ns\":\"bench/board\",\"key\":\"board\"}")
                            case 1: return Connect.rpc("claim.acquire", "{\"ns\":\"bench/tasks\",\"resource\":\"\(task)\",\"ttl_ms\":60000}")
                            case 2:
                                state.token = Connect.integer("token", in: previous) ?? -1
                                return Connect.rpc("ep.append", "{\"ns\":\"bench/a\(c)/log\",\"kind\":\"observation\",\"task\":\"\(task)\",\"content\":\"\(content)\"}")
                            case 3: return Connect.rpc("sem.search", "{\"ns\":\"bench/vectors\",\"vector_b64\":\"\(b64[s % b64.count])\",\"k\":10}")
                            case 4: return Connect.rpc("result.put", "{\"ns\":\"bench/tasks\",\"task\":\"\(task)\",\"idempotency_key\":\"\(task)\",\"value\":\(result)}")
                            default: return Connect.rpc("claim.release", "{\"ns\":\"bench/tasks\",\"resource\":\"\(task)\",\"token\":\(state.token)}")
                            }
                        }
                    },
                    try measureThreads(workload: "agent step", system: "redis + sqlite + BLAS", clients: n, n: Self.stepFacts,
                                       note: "Redis GET, SET NX PX, SQLite insert, sgemv + top-10, SET NX EX, EVALSHA",
                                       perClient: steps, warmup: 5) { c in
                        let redis = try BenchSocket(path: r.socket)
                        let sql = try EpisodicSQL(path: dir + "/peer.sqlite")
                        let state = StepState()
                        func cmd(_ parts: [String]) throws {
                            try redis.send(Connect.resp(parts))
                            _ = try redis.readRESP()
                        }
                        return { s in
                            let task = "task-r\(tag)-c\(c)-\(s)"
                            try redis.send(Connect.resp(["GET", "board"]))
                            guard try redis.readRESPBulk().count == board.utf8.count else { throw BenchError("board") }
                            try cmd(["SET", "lock:" + task, task, "NX", "PX", "60000"])
                            try sql.append(id: "\(task)", ns: "bench/a\(c)/log", content: content, agent: "agent\(c)")
                            let top = index.search(queries[s % queries.count], k: 10, scores: &state.scores)
                            guard top.count == 10 else { throw BenchError("top-k") }
                            try cmd(["SET", "result:bench/tasks:" + task, result, "NX", "EX", "604800"])
                            try cmd(["EVALSHA", sha, "1", "lock:" + task, task])
                        }
                    },
                ]
            }
        }
    }
}
