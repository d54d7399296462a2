import ArgumentParser
import Foundation

/// `mnemo-bench`: latency and throughput of mnemod next to its peers, measured in one run.
@main
struct MnemoBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mnemo-bench",
        abstract: "Measure mnemod (working memory) next to a raw Unix-socket echo and Redis, in the same run.")

    @Option(help: "mnemod binary (release build).") var mnemod = "../.build/release/mnemod"
    @Option(help: "Client counts to run, comma-separated.") var clients = "1,32"
    @Option(help: "Requests per client in each round (1-client runs).") var requests = 20_000
    @Option(help: "Requests per client in each round for multi-client runs.") var requestsMany = 2_000
    @Option(help: "Requests per client in each round for fsync-bound runs (strict, appendfsync always).") var requestsDurable = 300
    @Option(help: "Rounds; mnemod and its peer alternate in each.") var rounds = 3
    @Option(help: "Pin servers and clients to these CPUs with taskset (e.g. 0), or 'none'.") var cpus = "none"
    @Option(help: "Workloads: get,set,strict,echo (comma-separated).") var workloads = "get,set,strict"
    @Option(help: "Write the JSON results here (and an SVG plot beside them).") var out: String?
    @Option(help: "Only draw the SVG plot of an earlier run's JSON results (written beside it).") var replot: String?
    @Option(help: "mnemod event-loop threads (default: mnemod's own, one per core).") var mnemodThreads: Int?
    @Option(help: "Client threads sharing the connections (1: like redis-benchmark; 32: like 32 agent processes).")
    var clientThreads = 1

    func run() throws {
        if let replot {
            let results = try JSONDecoder().decode([RunResult].self, from: Data(contentsOf: URL(fileURLWithPath: replot)))
            let svgPath = (replot.hasSuffix(".json") ? String(replot.dropLast(5)) : replot) + ".svg"
            try Plot.svg(results, title: "mnemo-bench: \(URL(fileURLWithPath: replot).lastPathComponent)")
                .write(toFile: svgPath, atomically: true, encoding: .utf8)
            return
        }
        let counts = clients.split(separator: ",").compactMap { Int($0) }
        let pin = cpus == "none" ? nil : cpus
        let wanted = Set(workloads.split(separator: ",").map(String.init))
        var results: [RunResult] = []
        let value = String(repeating: "v", count: 100)
        let echoPath = ServerProcess.tempDir("echo") + "/echo.sock"
        let echo = try EchoServer(path: echoPath)
        defer { echo.stop() }

        func rounds(_ body: () throws -> [RunResult]) throws -> [RunResult] {
            var all: [RunResult] = []
            for _ in 0..<self.rounds { all += try body() }
            return all
        }

        func perClient(_ n: Int) -> Int { n == 1 ? requests : requestsMany }
        func getLine(_ k: Int) -> [UInt8] {
            Array("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"wm.get\",\"params\":{\"ns\":\"bench\",\"key\":\"k\(k)\"}}\n".utf8)
        }
        func setLines(_ c: Int) -> [[UInt8]] {
            (0..<1000).map {
                Array("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"wm.set\",\"params\":{\"ns\":\"bench\",\"key\":\"c\(c)-k\($0)\",\"value\":\"\(value)\"}}\n".utf8)
            }
        }
        func redisSets(_ c: Int) -> [[String]] { (0..<1000).map { ["SET", "c\(c)-k\($0)", value] } }

        if wanted.contains("get") {
            let m = try ServerProcess.mnemod(mnemod, durability: "volatile", cpus: pin, threads: mnemodThreads)
            let r = try ServerProcess.redis(fsyncAlways: false, cpus: pin)
            defer { m.stop(); r.stop() }
            try preload(mnemo: m.socket, redis: r.socket, value: value)
            let gets = (0..<1000).map(getLine)
            let redisGets = (0..<1000).map { ["GET", "k\($0)"] }
            for n in counts {
                results += try rounds {
                    [
                        try measureMultiplexed(workload: "wm.get", system: "mnemo", clients: n, perClient: perClient(n), warmup: 500, threads: clientThreads) {
                            try Connect.mnemo(m.socket, agent: "bench\($0)", lines: gets)
                        },
                        try measureMultiplexed(workload: "wm.get", system: "redis GET", clients: n, perClient: perClient(n), warmup: 500, threads: clientThreads) { _ in
                            try Connect.redis(r.socket, commands: redisGets)
                        },
                        try measureMultiplexed(workload: "wm.get", system: "echo", clients: n, perClient: perClient(n), warmup: 500, threads: clientThreads) { _ in
                            try Connect.echo(echoPath, line: gets[0])
                        },
                    ]
                }
            }
        }
        if wanted.contains("set") {
            for mode in ["volatile", "normal"] {
                let m = try ServerProcess.mnemod(mnemod, durability: mode, cpus: pin, threads: mnemodThreads)
                defer { m.stop() }
                for n in counts {
                    results += try rounds {
                        [try measureMultiplexed(workload: "wm.set", system: "mnemo \(mode)", clients: n, perClient: perClient(n), warmup: 200, threads: clientThreads) {
                            try Connect.mnemo(m.socket, agent: "bench\($0)", lines: setLines($0))
                        }]
                    }
                }
            }
            let r = try ServerProcess.redis(fsyncAlways: false, cpus: pin)
            defer { r.stop() }
            for n in counts {
                results += try rounds {
                    [try measureMultiplexed(workload: "wm.set", system: "redis SET", clients: n, perClient: perClient(n), warmup: 200, threads: clientThreads) {
                        try Connect.redis(r.socket, commands: redisSets($0))
                    }]
                }
            }
        }
        if wanted.contains("strict") {
            let m = try ServerProcess.mnemod(mnemod, durability: "strict", cpus: pin, threads: mnemodThreads)
            let r = try ServerProcess.redis(fsyncAlways: true, cpus: pin)
            defer { m.stop(); r.stop() }
            for n in counts {
                results += try rounds {
                    [
                        try measureMultiplexed(workload: "wm.set durable", system: "mnemo strict", clients: n, perClient: requestsDurable, warmup: 20, threads: clientThreads) {
                            try Connect.mnemo(m.socket, agent: "bench\($0)", lines: setLines($0))
                        },
                        try measureMultiplexed(workload: "wm.set durable", system: "redis appendfsync always", clients: n, perClient: requestsDurable, warmup: 20, threads: clientThreads) {
                            try Connect.redis(r.socket, commands: redisSets($0))
                        },
                    ]
                }
            }
        }
        let merged = Report.mergeRounds(results)
        print(Report.markdown(merged, cpus: cpus, clientThreads: clientThreads))
        if let out {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            try enc.encode(merged).write(to: URL(fileURLWithPath: out))
            let svgPath = (out.hasSuffix(".json") ? String(out.dropLast(5)) : out) + ".svg"
            let title = "mnemo-bench: CPU pinning \(cpus), \(clientThreads) client thread(s), \(rounds) rounds"
            try Plot.svg(merged, title: title).write(toFile: svgPath, atomically: true, encoding: .utf8)
        }
    }

    private func preload(mnemo: String, redis: String, value: String) throws {
        let m = try Connect.mnemo(mnemo, agent: "preload", lines: [])
        let r = try Connect.redis(redis, commands: [])
        for i in 0..<1000 {
            try m.socket.send(Array("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"wm.set\",\"params\":{\"ns\":\"bench\",\"key\":\"k\(i)\",\"value\":\"\(value)\"}}\n".utf8))
            _ = try m.socket.readLine()
            try r.socket.send(Connect.resp(["SET", "k\(i)", value]))
            _ = try r.socket.readRESP()
        }
    }
}

/// Tables and ratios.
enum Report {
    /// Rounds of the same (workload, system, clients) merged: the median round by p50.
    static func mergeRounds(_ results: [RunResult]) -> [RunResult] {
        var groups: [String: [RunResult]] = [:]
        var order: [String] = []
        for r in results {
            let k = "\(r.workload)|\(r.system)|\(r.clients)"
            if groups[k] == nil { order.append(k) }
            groups[k, default: []].append(r)
        }
        return order.compactMap { k in
            guard let g = groups[k]?.sorted(by: { $0.p50 < $1.p50 }) else { return nil }
            var median = g[g.count / 2]
            median.opsPerSecond = g.map(\.opsPerSecond).sorted()[g.count / 2]
            return median
        }
    }

    static func markdown(_ results: [RunResult], cpus: String, clientThreads: Int) -> String {
        var s = "| workload | system | clients | p50 us | p90 us | p99 us | p99.9 us | max us | ops/s |\n"
        s += "|---|---|---:|---:|---:|---:|---:|---:|---:|\n"
        for r in results {
            s += "| \(r.workload) | \(r.system) | \(r.clients) | \(f(r.p50)) | \(f(r.p90)) | \(f(r.p99)) | \(f(r.p999)) | \(f(r.max)) | \(Int(r.opsPerSecond)) |\n"
        }
        s += "\nMedian of rounds by p50; CPU pinning: \(cpus); client threads: \(clientThreads).\n"
        return s
    }

    static func f(_ v: Double) -> String { String(format: "%.1f", v) }
}
