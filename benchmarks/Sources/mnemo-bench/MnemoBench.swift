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
    @Option(help: "Write the JSON results here.") var out: String?

    func run() throws {
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

        if wanted.contains("get") {
            let m = try ServerProcess.mnemod(mnemod, durability: "volatile", cpus: pin)
            let r = try ServerProcess.redis(fsyncAlways: false, cpus: pin)
            defer { m.stop(); r.stop() }
            try preload(mnemo: m.socket, redis: r.socket, value: value)
            let getLines = (0..<1000).map { Array("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"wm.get\",\"params\":{\"ns\":\"bench\",\"key\":\"k\($0)\"}}\n".utf8) }
            let redisGets = (0..<1000).map { RedisExchange.command(["GET", "k\($0)"]) }
            for n in counts {
                let per = n == 1 ? requests : requestsMany
                results += try rounds {
                    [
                        try measure(workload: "wm.get", system: "mnemo", clients: n, perClient: per, warmup: 500) { _ in
                            try MnemoExchange(path: m.socket, agent: "bench", requests: getLines)
                        },
                        try measure(workload: "wm.get", system: "redis GET", clients: n, perClient: per, warmup: 500) { _ in
                            RedisExchange(socket: try BenchSocket(path: r.socket), commands: redisGets)
                        },
                        try measure(workload: "wm.get", system: "echo", clients: n, perClient: per, warmup: 500) { _ in
                            EchoExchange(socket: try BenchSocket(path: echoPath), line: getLines[0])
                        },
                    ]
                }
            }
        }
        if wanted.contains("set") {
            for mode in ["volatile", "normal"] {
                let m = try ServerProcess.mnemod(mnemod, durability: mode, cpus: pin)
                defer { m.stop() }
                for n in counts {
                    let per = n == 1 ? requests : requestsMany
                    results += try rounds {
                        [try measure(workload: "wm.set", system: "mnemo \(mode)", clients: n, perClient: per, warmup: 200) { c in
                            try MnemoExchange(path: m.socket, agent: "bench\(c)", requests: setLines(client: c, value: value))
                        }]
                    }
                }
            }
            let r = try ServerProcess.redis(fsyncAlways: false, cpus: pin)
            defer { r.stop() }
            for n in counts {
                let per = n == 1 ? requests : requestsMany
                results += try rounds {
                    [try measure(workload: "wm.set", system: "redis SET", clients: n, perClient: per, warmup: 200) { c in
                        RedisExchange(socket: try BenchSocket(path: r.socket),
                                      commands: (0..<1000).map { RedisExchange.command(["SET", "c\(c)-k\($0)", value]) })
                    }]
                }
            }
        }
        if wanted.contains("strict") {
            let m = try ServerProcess.mnemod(mnemod, durability: "strict", cpus: pin)
            let r = try ServerProcess.redis(fsyncAlways: true, cpus: pin)
            defer { m.stop(); r.stop() }
            for n in counts {
                results += try rounds {
                    [
                        try measure(workload: "wm.set durable", system: "mnemo strict", clients: n, perClient: requestsDurable, warmup: 20) { c in
                            try MnemoExchange(path: m.socket, agent: "bench\(c)", requests: setLines(client: c, value: value))
                        },
                        try measure(workload: "wm.set durable", system: "redis appendfsync always", clients: n, perClient: requestsDurable, warmup: 20) { c in
                            RedisExchange(socket: try BenchSocket(path: r.socket),
                                          commands: (0..<1000).map { RedisExchange.command(["SET", "c\(c)-k\($0)", value]) })
                        },
                    ]
                }
            }
        }
        let merged = Report.mergeRounds(results)
        print(Report.markdown(merged, cpus: cpus))
        if let out {
            let data = try JSONEncoder().encode(["cpus": cpus, "rounds": "\(rounds)"].merging([:]) { a, _ in a })
            _ = data
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            try enc.encode(merged).write(to: URL(fileURLWithPath: out))
        }
    }

    private func setLines(client: Int, value: String) -> [[UInt8]] {
        (0..<1000).map {
            Array("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"wm.set\",\"params\":{\"ns\":\"bench\",\"key\":\"c\(client)-k\($0)\",\"value\":\"\(value)\"}}\n".utf8)
        }
    }

    private func preload(mnemo: String, redis: String, value: String) throws {
        var m = try MnemoExchange(path: mnemo, agent: "preload", requests: (0..<1000).map {
            Array("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"wm.set\",\"params\":{\"ns\":\"bench\",\"key\":\"k\($0)\",\"value\":\"\(value)\"}}\n".utf8)
        })
        var r = RedisExchange(socket: try BenchSocket(path: redis), commands: (0..<1000).map { RedisExchange.command(["SET", "k\($0)", value]) })
        for i in 0..<1000 {
            try m.roundTrip(i)
            try r.roundTrip(i)
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

    static func markdown(_ results: [RunResult], cpus: String) -> String {
        var s = "| workload | system | clients | p50 us | p90 us | p99 us | p99.9 us | max us | ops/s |\n"
        s += "|---|---|---:|---:|---:|---:|---:|---:|---:|\n"
        for r in results {
            s += "| \(r.workload) | \(r.system) | \(r.clients) | \(f(r.p50)) | \(f(r.p90)) | \(f(r.p99)) | \(f(r.p999)) | \(f(r.max)) | \(Int(r.opsPerSecond)) |\n"
        }
        s += "\nMedian of rounds by p50; CPU pinning: \(cpus).\n"
        return s
    }

    static func f(_ v: Double) -> String { String(format: "%.1f", v) }
}
