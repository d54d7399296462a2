import Foundation

/// Working memory and coordination next to Redis (and the echo floor).
extension Bench {
    func getLine(_ k: Int) -> [UInt8] {
        Connect.rpc("wm.get", "{\"ns\":\"bench\",\"key\":\"k\(k)\"}")
    }

    func setLines(_ c: Int) -> [[UInt8]] {
        (0..<1000).map { Connect.rpc("wm.set", "{\"ns\":\"bench\",\"key\":\"c\(c)-k\($0)\",\"value\":\"\(value)\"}") }
    }

    func redisSets(_ c: Int) -> [[String]] { (0..<1000).map { ["SET", "c\(c)-k\($0)", value] } }

    /// `wm.get` of 1000 keys next to Redis GET and the raw echo.
    func get() throws {
        let m = try startMnemod("volatile")
        let r = try ServerProcess.redis(.none, cpus: pin)
        defer { m.stop(); r.stop() }
        try preload(mnemo: m.socket, redis: r.socket, keys: 1000)
        let echoDir = ServerProcess.tempDir("echo")
        let echo = try EchoServer(path: echoDir + "/echo.sock")
        defer { echo.stop(); try? FileManager.default.removeItem(atPath: echoDir) }
        let gets = (0..<1000).map(getLine)
        let redisGets = (0..<1000).map { ["GET", "k\($0)"] }
        for n in counts {
            try rounds {
                [
                    try measureMultiplexed(workload: "wm.get", system: "mnemo", clients: n, n: 1000, perClient: perClient(n),
                                           warmup: 500, threads: clientThreads) {
                        try Connect.mnemo(m.socket, agent: "bench\($0)", lines: gets)
                    },
                    try measureMultiplexed(workload: "wm.get", system: "redis GET", role: "peer", clients: n, n: 1000,
                                           perClient: perClient(n), warmup: 500, threads: clientThreads) { _ in
                        try Connect.redis(r.socket, commands: redisGets)
                    },
                    try measureMultiplexed(workload: "wm.get", system: "echo", role: "floor", clients: n, n: 1000,
                                           perClient: perClient(n), warmup: 500, threads: clientThreads) { _ in
                        try Connect.echo(echo.path, line: gets[0])
                    },
                ]
            }
        }
    }

    /// `wm.set` in each durability mode next to the Redis setting that promises the same:
    /// `volatile` against Redis without persistence, `normal` (journal written before the
    /// reply, survives a crash of the daemon) against AOF `appendfsync everysec`, `strict`
    /// (fsync before the reply) against AOF `appendfsync always`.
    func set() throws {
        for (mode, redisMode, workload) in [("volatile", RedisPersistence.none, "wm.set volatile"),
                                            ("normal", .everysec, "wm.set normal")] {
            let m = try startMnemod(mode)
            let r = try ServerProcess.redis(redisMode, cpus: pin)
            defer { m.stop(); r.stop() }
            for n in counts {
                try rounds {
                    [
                        try measureMultiplexed(workload: workload, system: "mnemo \(mode)", clients: n, perClient: perClient(n),
                                               warmup: 200, threads: clientThreads) {
                            try Connect.mnemo(m.socket, agent: "bench\($0)", lines: self.setLines($0))
                        },
                        try measureMultiplexed(workload: workload, system: redisMode.label, role: "peer", clients: n,
                                               perClient: perClient(n), warmup: 200, threads: clientThreads) {
                            try Connect.redis(r.socket, commands: self.redisSets($0))
                        },
                    ]
                }
            }
        }
    }

    /// `wm.set` in `strict` (fsync before the reply) next to Redis `appendfsync always`.
    func strict() throws {
        let m = try startMnemod("strict")
        let r = try ServerProcess.redis(.always, cpus: pin)
        defer { m.stop(); r.stop() }
        for n in counts {
            try rounds {
                [
                    try measureMultiplexed(workload: "wm.set strict", system: "mnemo strict", clients: n, perClient: requestsDurable,
                                           warmup: 20, threads: clientThreads) {
                        try Connect.mnemo(m.socket, agent: "bench\($0)", lines: self.setLines($0))
                    },
                    try measureMultiplexed(workload: "wm.set strict", system: RedisPersistence.always.label, role: "peer", clients: n,
                                           perClient: requestsDurable, warmup: 20, threads: clientThreads) {
                        try Connect.redis(r.socket, commands: self.redisSets($0))
                    },
                ]
            }
        }
    }

    /// `claim.acquire` then `claim.release` with the granted token (one sample: both round
    /// trips), next to a Redis lock as clients build it: `SET key token NX PX` and the
    /// compare-and-delete script (`EVALSHA`) to release only one's own lock.
    func claim() throws {
        let m = try startMnemod("normal")
        let r = try ServerProcess.redis(.none, cpus: pin)
        defer { m.stop(); r.stop() }
        let script = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
        let loader = try BenchSocket(path: r.socket)
        try loader.send(Connect.resp(["SCRIPT", "LOAD", script]))
        let sha = String(decoding: try loader.readRESPBulk(), as: UTF8.self)
        for n in counts {
            let steps = perClient(n) / (n == 1 ? 2 : 4)
            try rounds {
                [
                    try measureMultiplexed(workload: "claim.acquire+release", system: "mnemo", clients: n, perClient: steps,
                                           warmup: 100, threads: clientThreads) { c in
                        let acquire = Connect.rpc("claim.acquire", "{\"ns\":\"bench\",\"resource\":\"r\(c)\",\"ttl_ms\":30000}")
                        return try Connect.mnemo(m.socket, agent: "bench\(c)", stepLength: 2) { i, previous in
                            if i % 2 == 0 { return acquire }
                            let token = Connect.integer("token", in: previous) ?? -1
                            return Connect.rpc("claim.release", "{\"ns\":\"bench\",\"resource\":\"r\(c)\",\"token\":\(token)}")
                        }
                    },
                    try measureMultiplexed(workload: "claim.acquire+release", system: "redis SET NX PX + EVALSHA", role: "peer",
                                           clients: n, perClient: steps, warmup: 100, threads: clientThreads) { c in
                        try Connect.redis(r.socket, stepLength: 2) { i, _ in
                            let token = "c\(c)-\(i / 2)"
                            return i % 2 == 0 ? Connect.resp(["SET", "lock:r\(c)", token, "NX", "PX", "30000"])
                                : Connect.resp(["EVALSHA", sha, "1", "lock:r\(c)", token])
                        }
                    },
                ]
            }
        }
    }

    /// Agreement, next to the same protocols as Lua scripts in Redis (an etcd-style
    /// transaction, one round trip each, answering JSON as mnemod does): `barrier.arrive` at a one-party barrier (every
    /// call opens a generation: the arrival, the opening and the reply with the arrivals),
    /// and `vote.open` then `vote.cast` of a one-vote quorum (one sample: both round trips;
    /// the cast decides and mints the token).
    func agreement() throws {
        let m = try startMnemod("normal")
        let r = try ServerProcess.redis(.none, cpus: pin)
        defer { m.stop(); r.stop() }
        let loader = try BenchSocket(path: r.socket)
        func load(_ script: String) throws -> String {
            try loader.send(Connect.resp(["SCRIPT", "LOAD", script]))
            return String(decoding: try loader.readRESPBulk(), as: UTF8.self)
        }
        let arrive = try load("""
            local g = tonumber(redis.call('HGET', KEYS[1], 'gen') or '1')
            local members = KEYS[1] .. ':' .. g
            redis.call('HSETNX', members, ARGV[1], ARGV[3])
            local n = redis.call('HLEN', members)
            if n >= tonumber(ARGV[2]) then
              redis.call('HSET', KEYS[1], 'gen', g + 1)
              return cjson.encode({generation = g, state = 'open', arrivals = redis.call('HGETALL', members)})
            end
            return cjson.encode({generation = g, state = 'waiting', arrived = n})
            """)
        let open = try load("""
            redis.call('DEL', KEYS[1] .. ':b')
            redis.call('HSET', KEYS[1], 'status', 'open', 'quorum', ARGV[1])
            return redis.call('HINCRBY', KEYS[1], 'round', 1)
            """)
        let cast = try load("""
            if redis.call('HGET', KEYS[1], 'status') ~= 'open' then return cjson.encode({status = 'decided'}) end
            redis.call('HSETNX', KEYS[1] .. ':b', ARGV[1], ARGV[2])
            local yes = 0
            for _, v in ipairs(redis.call('HVALS', KEYS[1] .. ':b')) do if v == 'yes' then yes = yes + 1 end end
            if yes >= tonumber(redis.call('HGET', KEYS[1], 'quorum')) then
              local token = redis.call('INCR', 'tokens')
              redis.call('HSET', KEYS[1], 'status', 'accepted', 'token', token)
              return cjson.encode({status = 'accepted', token = token})
            end
            return cjson.encode({status = 'open', yes = yes})
            """)
        for n in counts {
            let steps = perClient(n) / (n == 1 ? 2 : 4)
            try rounds {
                [
                    try measureMultiplexed(workload: "barrier.arrive", system: "mnemo", clients: n, perClient: steps,
                                           warmup: 100, threads: clientThreads) { c in
                        let line = Connect.rpc("barrier.arrive", "{\"ns\":\"bench\",\"name\":\"b\(c)\",\"parties\":1,\"value\":\"\(c)\"}")
                        return try Connect.mnemo(m.socket, agent: "bench\(c)", stepLength: 1) { _, _ in line }
                    },
                    try measureMultiplexed(workload: "barrier.arrive", system: "redis EVALSHA barrier", role: "peer",
                                           clients: n, perClient: steps, warmup: 100, threads: clientThreads) { c in
                        try Connect.redis(r.socket, stepLength: 1) { _, _ in
                            Connect.resp(["EVALSHA", arrive, "1", "barrier:b\(c)", "bench\(c)", "1", "\(c)"])
                        }
                    },
                    try measureMultiplexed(workload: "vote.open+cast", system: "mnemo", clients: n, perClient: steps,
                                           warmup: 100, threads: clientThreads) { c in
                        let open = Connect.rpc("vote.open", "{\"ns\":\"bench\",\"proposal\":\"p\(c)\",\"quorum\":1}")
                        let cast = Connect.rpc("vote.cast", "{\"ns\":\"bench\",\"proposal\":\"p\(c)\",\"choice\":\"yes\"}")
                        return try Connect.mnemo(m.socket, agent: "bench\(c)", stepLength: 2) { i, _ in i % 2 == 0 ? open : cast }
                    },
                    try measureMultiplexed(workload: "vote.open+cast", system: "redis EVALSHA open + cast", role: "peer",
                                           clients: n, perClient: steps, warmup: 100, threads: clientThreads) { c in
                        try Connect.redis(r.socket, stepLength: 2) { i, _ in
                            i % 2 == 0 ? Connect.resp(["EVALSHA", open, "1", "vote:p\(c)", "1"])
                                : Connect.resp(["EVALSHA", cast, "1", "vote:p\(c)", "bench\(c)", "yes"])
                        }
                    },
                ]
            }
        }
    }

    /// `result.put` with a new idempotency key each time (first write wins) next to Redis
    /// `SET NX EX` with mnemod's 7-day retention.
    func result() throws {
        let m = try startMnemod("normal")
        let r = try ServerProcess.redis(.none, cpus: pin)
        defer { m.stop(); r.stop() }
        let payload = "{\"ok\":true,\"summary\":\"\(value)\"}"
        var round = 0
        for n in counts {
            let count = n == 1 ? perClient(n) : perClient(n) / 2
            try rounds {
                round += 1
                let tag = round
                return [
                    try measureMultiplexed(workload: "result.put", system: "mnemo", clients: n, perClient: count,
                                           warmup: 200, threads: clientThreads) { c in
                        try Connect.mnemo(m.socket, agent: "bench\(c)", stepLength: 1) { i, _ in
                            Connect.rpc("result.put", "{\"ns\":\"bench\",\"task\":\"t\(c)\",\"idempotency_key\":\"r\(tag)-c\(c)-\(i)\",\"value\":\(payload)}")
                        }
                    },
                    try measureMultiplexed(workload: "result.put", system: "redis SET NX EX", role: "peer", clients: n,
                                           perClient: count, warmup: 200, threads: clientThreads) { c in
                        try Connect.redis(r.socket, stepLength: 1) { i, _ in
                            Connect.resp(["SET", "result:bench:t\(c):r\(tag)-c\(c)-\(i)", payload, "NX", "EX", "604800"])
                        }
                    },
                ]
            }
        }
    }

    /// Memory of N working keys (100-byte values) for each N of `memKeys`, mnemod
    /// `volatile` against Redis `used_memory` and RSS, and `wm.get` of random keys among
    /// them (latency against N).
    func memory() throws {
        for k in memKeys { try memory(keys: k) }
    }

    private func memory(keys k: Int) throws {
        let m = try startMnemod("volatile")
        let r = try ServerProcess.redis(.none, cpus: pin)
        defer { m.stop(); r.stop() }
        let (mBefore, rBefore, rUsedBefore) = (m.rssBytes, r.rssBytes, try ServerProcess.redisInfo(r.socket, field: "used_memory"))
        let t0 = Date()
        try preload(mnemo: m.socket, redis: r.socket, keys: k)
        log("   loaded \(k) keys into both in \(Int(Date().timeIntervalSince(t0))) s")
        usleep(500_000)
        memoryResults.append(MemoryResult(what: "working keys", system: "mnemo volatile", n: k, rssBeforeBytes: mBefore,
                                          rssAfterBytes: m.rssBytes, reportedBytes: nil, reportedWhat: nil, floorBytes: nil))
        memoryResults.append(MemoryResult(what: "working keys", system: "redis", n: k, rssBeforeBytes: rBefore,
                                          rssAfterBytes: r.rssBytes,
                                          reportedBytes: try ServerProcess.redisInfo(r.socket, field: "used_memory") - rUsedBefore,
                                          reportedWhat: "used_memory", floorBytes: nil))
        var rng = SplitMix(seed: 11)
        let keys = (0..<2000).map { _ in Int(rng.next() % UInt64(k)) }
        let gets = keys.map(getLine)
        let redisGets = keys.map { ["GET", "k\($0)"] }
        try rounds {
            [
                try measureMultiplexed(workload: "wm.get random key", system: "mnemo", clients: 1, n: k, perClient: requests,
                                       warmup: 500, threads: 1) {
                    try Connect.mnemo(m.socket, agent: "bench\($0)", lines: gets)
                },
                try measureMultiplexed(workload: "wm.get random key", system: "redis GET", role: "peer", clients: 1, n: k,
                                       perClient: requests, warmup: 500, threads: 1) { _ in
                    try Connect.redis(r.socket, commands: redisGets)
                },
            ]
        }
    }

    /// Writes keys k0..k{count-1} (100-byte values) into both, pipelined 1000 at a time.
    /// Sets `k0`..`k{count-1}` in mnemod's namespace `bench` over its socket, and in Redis
    /// when given, in pipelined batches of 1000.
    func preload(mnemo: String, redis: String?, keys count: Int) throws {
        let m = try Connect.helloSocket(mnemo, agent: "preload")
        let r = try redis.map { try BenchSocket(path: $0) }
        var i = 0
        while i < count {
            let batch = min(1000, count - i)
            var mb: [UInt8] = []
            var rb: [UInt8] = []
            for j in i..<(i + batch) {
                mb += Connect.rpc("wm.set", "{\"ns\":\"bench\",\"key\":\"k\(j)\",\"value\":\"\(value)\"}")
                if r != nil { rb += Connect.resp(["SET", "k\(j)", value]) }
            }
            try m.send(mb)
            try r?.send(rb)
            for _ in 0..<batch {
                let line = try m.readLine()
                guard line.count > 25, line[line.startIndex + 25] == UInt8(ascii: "r") else {
                    throw BenchError("preload: \(String(decoding: line.prefix(200), as: UTF8.self))")
                }
                _ = try r?.readRESP()
            }
            i += batch
        }
    }
}

/// A small deterministic generator (the same keys and choices in every run).
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}
