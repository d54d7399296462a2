import ArgumentParser
import Foundation
import MnemoCore

/// `mnemo-bench`: latency and throughput of mnemod next to its peers, measured in one run.
@main
struct MnemoBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mnemo-bench",
        abstract: "Measure mnemod next to its peers (Redis, a raw Unix-socket echo, SQLite, numpy/FAISS) in one run.",
        discussion: """
            Profiles: `short` (make bench, a few minutes) and `full` (the committed run: 1M keys,
            records and vectors; 1 to 64 clients). Every option below overrides the profile.
            Workloads: get, set, strict, claim, result, ep, sem, step, mem, embed, cluster (or `all`).
            """)

    @Option(help: "mnemod binary (release build).") var mnemod = "../.build/release/mnemod"
    @Option(help: "short or full.") var profile = "short"
    @Option(help: "Workloads, comma-separated (get,set,strict,claim,result,ep,sem,step,mem,embed,cluster), or all.")
    var workloads = "all"
    @Option(help: "Client counts, comma-separated (profile: 1,32 short; 1,8,32,64 full).") var clients: String?
    @Option(help: "Rounds; mnemod and its peer alternate in each.") var rounds: Int?
    @Option(help: "Requests per client in each round (1-client runs).") var requests = 20_000
    @Option(help: "Requests per client in each round for multi-client runs.") var requestsMany = 2_000
    @Option(help: "Requests per client in each round for fsync-bound runs (strict, appendfsync always).") var requestsDurable = 300
    @Option(help: "Episodic records to load, comma-separated (profile: 10000,100000 short; up to 1000000 full).")
    var epSizes: String?
    @Option(help: "Vectors (d = 384) to load, comma-separated (profile: 10000,100000 short; up to 1000000 full).")
    var semSizes: String?
    @Option(help: "Working keys loaded for the memory comparison, comma-separated (profile: 100000 short; 100000,1000000 full).")
    var memKeys: String?
    @Option(help: "Python with numpy (faiss-cpu, sqlite-vec + apsw optional) for the vector peers and data loading.")
    var python = "python3"
    @Option(help: "Pin servers and clients to these CPUs with taskset (e.g. 0), or 'none'.") var cpus = "none"
    @Option(help: "Write the JSON results here, and a Markdown report and an SVG plot beside them.") var out: String?
    @Option(help: "A hand-written closing note (what limits the slowest ratios) appended to the report.") var notes: String?
    @Option(help: "Only rewrite the report and plot of an earlier run's JSON results (beside it).") var replot: String?
    @Option(help: "mnemod event-loop threads (default: mnemod's own, half the cores).") var mnemodThreads: Int?
    @Option(help: "Client threads sharing the connections (1: like redis-benchmark; 32: like 32 agent processes).")
    var clientThreads = 1

    func run() throws {
        BLAS.restartWithBetterKernelsIfNeeded()
        if let replot {
            let data = try Data(contentsOf: URL(fileURLWithPath: replot))
            let run: BenchRun
            if let decoded = try? JSONDecoder().decode(BenchRun.self, from: data) {
                run = decoded
            } else {
                run = BenchRun(meta: [:], runs: try JSONDecoder().decode([RunResult].self, from: data), memory: [])
            }
            try Report.write(run, json: replot, notes: notes, rewriteJSON: false)
            return
        }
        let full = profile == "full"
        guard full || profile == "short" else { throw ValidationError("--profile is short or full") }
        let names = workloads == "all" ? Set(Bench.allWorkloads) : Set(workloads.split(separator: ",").map(String.init))
        if let unknown = names.subtracting(Bench.allWorkloads).first { throw ValidationError("unknown workload \(unknown)") }
        let ints = { (s: String) in s.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } }
        let bench = Bench(
            mnemod: mnemod, full: full,
            clients: ints(clients ?? (full ? "1,8,32,64" : "1,32")),
            rounds: rounds ?? (full ? 5 : 3),
            requests: requests, requestsMany: requestsMany, requestsDurable: requestsDurable,
            epSizes: ints(epSizes ?? (full ? "10000,100000,1000000" : "10000,100000")),
            semSizes: ints(semSizes ?? (full ? "10000,100000,1000000" : "10000,100000")),
            memKeys: ints(memKeys ?? (full ? "100000,1000000" : "100000")),
            python: python, pin: cpus == "none" ? nil : cpus,
            mnemodThreads: mnemodThreads, clientThreads: clientThreads)
        let started = Date()
        for w in Bench.allWorkloads where names.contains(w) {
            let t0 = Date()
            log("== \(w)")
            switch w {
            case "get": try bench.get()
            case "set": try bench.set()
            case "strict": try bench.strict()
            case "claim": try bench.claim()
            case "agree": try bench.agreement()
            case "result": try bench.result()
            case "mem": try bench.memory()
            case "ep": try bench.episodic()
            case "sem": try bench.semantic()
            case "step": try bench.agentStep()
            case "embed": try bench.encoder()
            case "cluster": try bench.cluster()
            default: break
            }
            log("   \(w): \(Int(Date().timeIntervalSince(t0))) s")
        }
        var command = CommandLine.arguments
        command[0] = "mnemo-bench"
        let run = BenchRun(meta: bench.meta(command: command.joined(separator: " "), seconds: Date().timeIntervalSince(started)),
                           runs: Report.mergeRounds(bench.results), memory: bench.memoryResults)
        print(Report.markdown(run, notes: notes.flatMap { try? String(contentsOfFile: $0, encoding: .utf8) }))
        if let out { try Report.write(run, json: out, notes: notes, rewriteJSON: true) }
    }
}

/// Progress on stderr (the report goes to stdout).
func log(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}

/// What one invocation measures and the results so far.
final class Bench {
    static let allWorkloads = ["get", "set", "strict", "claim", "agree", "result", "mem", "ep", "sem", "step", "embed", "cluster"]

    let mnemod: String
    let full: Bool
    let counts: [Int]
    let rounds: Int
    let requests: Int
    let requestsMany: Int
    let requestsDurable: Int
    let epSizes: [Int]
    let semSizes: [Int]
    let memKeys: [Int]
    let python: String
    let pin: String?
    let mnemodThreads: Int?
    let clientThreads: Int
    /// benchmarks/ (the Python helpers live there), found from this source file.
    let scripts = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    var results: [RunResult] = []
    var memoryResults: [MemoryResult] = []
    var extraMeta: [String: String] = [:]
    let value = String(repeating: "v", count: 100)

    init(mnemod: String, full: Bool, clients: [Int], rounds: Int, requests: Int, requestsMany: Int, requestsDurable: Int,
         epSizes: [Int], semSizes: [Int], memKeys: [Int], python: String, pin: String?,
         mnemodThreads: Int?, clientThreads: Int) {
        self.mnemod = mnemod
        self.full = full
        counts = clients
        self.rounds = rounds
        self.requests = requests
        self.requestsMany = requestsMany
        self.requestsDurable = requestsDurable
        self.epSizes = epSizes
        self.semSizes = semSizes
        self.memKeys = memKeys
        self.python = python
        self.pin = pin
        self.mnemodThreads = mnemodThreads
        self.clientThreads = clientThreads
    }

    /// Requests per client for `n` clients.
    func perClient(_ n: Int) -> Int { n == 1 ? requests : requestsMany }

    /// `body` once per round (mnemod and its peers alternate inside it).
    func rounds(_ body: () throws -> [RunResult]) throws {
        for _ in 0..<rounds { results += try body() }
    }

    func startMnemod(_ durability: String, dir: String? = nil) throws -> ServerProcess {
        try ServerProcess.mnemod(mnemod, durability: durability, cpus: pin, threads: mnemodThreads, dir: dir)
    }

    /// Runs one of the Python helpers in benchmarks/.
    func pythonHelper(_ script: String, _ args: [String], log path: String) throws {
        try runCommand("/usr/bin/env", [python, scripts + "/" + script] + args, log: path)
    }

    func meta(command: String, seconds: Double) -> [String: String] {
        var m = extraMeta
        m["command"] = command
        m["profile"] = full ? "full" : "short"
        m["date"] = ISO8601DateFormatter().string(from: Date())
        m["seconds"] = String(Int(seconds))
        m["cpus"] = String(ProcessInfo.processInfo.activeProcessorCount)
        m["memory_gib"] = String(ProcessInfo.processInfo.physicalMemory >> 30)
        m["kernel"] = commandOutput("/usr/bin/uname", ["-sr"])
        m["redis"] = commandOutput("/usr/bin/redis-server", ["--version"])
        m["sqlite"] = SQLiteDB.version
        m["cpu_pinning"] = pin ?? "none"
        m["client_threads"] = String(clientThreads)
        m["rounds"] = String(rounds)
        return m
    }
}
