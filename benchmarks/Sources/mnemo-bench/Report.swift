import Foundation

/// The Markdown report: every workload next to its peer with ratios, growth with N and
/// with clients, memory, the slowest ratios, all percentiles, and the plot.
enum Report {
    /// Rounds of the same (workload, system, clients, N) merged: the median round by p50.
    static func mergeRounds(_ results: [RunResult]) -> [RunResult] {
        var groups: [String: [RunResult]] = [:]
        var order: [String] = []
        for r in results {
            let k = key(r) + "|" + r.system
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

    /// What mnemod and its peers are compared on.
    static func key(_ r: RunResult) -> String { "\(r.workload)|\(r.clients)|\(r.n ?? -1)" }

    /// (mnemo row, peer row) pairs measured on the same workload, clients and N.
    static func pairs(_ runs: [RunResult]) -> [(RunResult, RunResult)] {
        var out: [(RunResult, RunResult)] = []
        for m in runs where m.isMnemo {
            for p in runs where !p.isMnemo && key(p) == key(m) { out.append((m, p)) }
        }
        return out
    }

    /// Writes the JSON (unless only re-plotting), the Markdown report and the SVG plot.
    static func write(_ run: BenchRun, json: String, notes: String?, rewriteJSON: Bool) throws {
        let base = json.hasSuffix(".json") ? String(json.dropLast(5)) : json
        if rewriteJSON {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            try enc.encode(run).write(to: URL(fileURLWithPath: json))
        }
        let svg = base + ".svg"
        let title = "mnemo-bench \(run.meta["profile"] ?? ""): \(URL(fileURLWithPath: json).lastPathComponent)"
        try Plot.svg(run.runs, title: title).write(toFile: svg, atomically: true, encoding: .utf8)
        let text = markdown(run, notes: notes.flatMap { try? String(contentsOfFile: $0, encoding: .utf8) },
                            plot: URL(fileURLWithPath: svg).lastPathComponent)
        try text.write(toFile: base + ".md", atomically: true, encoding: .utf8)
    }

    static func markdown(_ run: BenchRun, notes: String?, plot: String? = nil) -> String {
        let runs = run.runs
        let m = run.meta
        var s = "# mnemo-bench, \(m["profile"] ?? "?") run\(m["date"].map { " of \($0)" } ?? "")\n\n"
        if !m.isEmpty {
            s += "Machine: \(m["cpus"] ?? "?") CPUs, \(m["memory_gib"] ?? "?") GiB, \(m["kernel"] ?? "?"); "
            s += "\(m["redis"] ?? "Redis ?"); SQLite \(m["sqlite"] ?? "?"); numpy \(m["numpy"] ?? "not run").\n"
            s += "Command: `\(m["command"] ?? "?")` (\(m["seconds"] ?? "?") s; CPU pinning \(m["cpu_pinning"] ?? "none"), "
            s += "\(m["client_threads"] ?? "1") client thread(s) for the socket workloads, \(m["rounds"] ?? "?") rounds, median round by p50).\n"
            let extra = m.keys.filter { $0.hasPrefix("sem_") || $0.hasPrefix("mnemod_load") }.sorted()
            if !extra.isEmpty { s += "Notes: " + extra.map { "\($0) = \(m[$0]!)" }.joined(separator: "; ") + ".\n" }
            s += "\n"
        }
        s += """
            Latencies in microseconds. Ratios are mnemo / peer: a **p50 ratio** above 1 means mnemod is
            slower; a **throughput ratio** below 1 means it serves less (at several clients, compare
            throughput: see "Slowest ratios"). Socket workloads run one request
            in flight per connection; in-process peers (SQLite, numpy, FAISS, sqlite-vec, BLAS) have no
            socket and no JSON, which is what an agent that links them saves and what mnemod's ratio
            against them costs.

            """
        s += "\n"
        s += "## Every workload next to its peer\n\n"
        s += "| workload | N | clients | mnemo | p50 | p99 | ops/s | peer | p50 | p99 | ops/s | p50 ratio | throughput ratio |\n"
        s += "|---|---:|---:|---|---:|---:|---:|---|---:|---:|---:|---:|---:|\n"
        for (a, b) in pairs(runs) {
            s += "| \(a.workload) | \(n(a.n)) | \(a.clients) | \(a.system) | \(f(a.p50)) | \(f(a.p99)) | \(ops(a.opsPerSecond)) | "
            s += "\(b.system)\(b.isFloor ? " (floor)" : "") | \(f(b.p50)) | \(f(b.p99)) | \(ops(b.opsPerSecond)) | "
            s += "\(ratio(a.p50 / b.p50)) | \(ratio(a.opsPerSecond / b.opsPerSecond)) |\n"
        }
        var howMeasured: [(String, [String])] = []
        for r in runs {
            guard let note = r.note else { continue }
            let who = r.isMnemo ? "\(r.system) (\(r.workload))" : r.system
            if let i = howMeasured.firstIndex(where: { $0.0 == note }) {
                if !howMeasured[i].1.contains(who) { howMeasured[i].1.append(who) }
            } else {
                howMeasured.append((note, [who]))
            }
        }
        if !howMeasured.isEmpty {
            s += "\nHow each was measured: " + howMeasured.map { "\($0.1.joined(separator: ", ")): \($0.0)" }.joined(separator: "; ") + ".\n"
        }

        s += "\n## Slowest ratios\n\n"
        s += """
            How much slower mnemod is than its peer, by the measure that fits: the p50 ratio at one
            client, the throughput ratio (peer / mnemo) at several (with many closed-loop clients a
            socket server's latency is its queue, Little's law, while an in-process peer's per-call
            latency leaves out the time its thread waits for a core). The worst pair of each workload:


            """
        var worst: [String: (RunResult, RunResult, Double)] = [:]
        for (a, b) in pairs(runs) where !b.isFloor {
            let slower = slowdown(a, b)
            if let w = worst[a.workload], w.2 >= slower { continue }
            worst[a.workload] = (a, b, slower)
        }
        let top = worst.values.sorted { $0.2 > $1.2 }.prefix(3)
        for (i, (a, b, slower)) in top.enumerated() {
            s += "\(i + 1). **\(a.workload)** (\(a.n.map { "N \(n($0)), " } ?? "")\(a.clients) client\(a.clients == 1 ? "" : "s")), "
            s += "against \(b.system): \(ratio(slower))x slower"
            s += a.clients == 1 ? " (p50 \(f(a.p50)) us against \(f(b.p50)) us).\n"
                : " (\(ops(a.opsPerSecond)) against \(ops(b.opsPerSecond)) ops/s).\n"
        }
        if let notes { s += "\n" + notes.trimmingCharacters(in: .whitespacesAndNewlines) + "\n" }

        let growth = Dictionary(grouping: runs.filter { $0.clients == 1 && $0.n != nil && !$0.isFloor }) { growthFamily($0) }
            .filter { Set($0.value.map(\.n)).count > 1 }
        if !growth.isEmpty {
            s += "\n## Growth with N (one client)\n\n"
            s += "| workload | system | N | p50 | p99 | ops/s | p50 / p50 at the smallest N |\n|---|---|---:|---:|---:|---:|---:|\n"
        }
        for family in growth.keys.sorted() {
            guard let rows = growth[family] else { continue }
            let sorted = rows.sorted { ($0.n ?? 0) < ($1.n ?? 0) }
            let first = sorted[0].p50
            for r in sorted {
                s += "| \(r.workload) | \(r.system) | \(n(r.n)) | \(f(r.p50)) | \(f(r.p99)) | \(ops(r.opsPerSecond)) | \(ratio(r.p50 / first)) |\n"
            }
        }

        let clientCounts = Array(Set(runs.map(\.clients))).sorted()
        if clientCounts.count > 1 {
            s += "\n## Growth with clients (ops/s, and p99 in us)\n\n"
            s += "| workload | system | N | " + clientCounts.map { "\($0) client\($0 == 1 ? "" : "s")" }.joined(separator: " | ") + " |\n"
            s += "|---|---|---:|" + clientCounts.map { _ in "---:|" }.joined() + "\n"
            var seen = Set<String>()
            for r in runs where !seen.contains("\(r.workload)|\(r.system)|\(r.n ?? -1)") {
                seen.insert("\(r.workload)|\(r.system)|\(r.n ?? -1)")
                let row = runs.filter { $0.workload == r.workload && $0.system == r.system && $0.n == r.n }
                guard row.count > 1 else { continue }
                s += "| \(r.workload) | \(r.system) | \(n(r.n)) | "
                s += clientCounts.map { c in
                    row.first { $0.clients == c }.map { "\(ops($0.opsPerSecond)) (\(f($0.p99)))" } ?? ""
                }.joined(separator: " | ") + " |\n"
            }
        }

        if !run.memory.isEmpty {
            s += "\n## Memory\n\n"
            s += "| what | system | N | RSS empty | RSS loaded | RSS growth per million | reported per million | floor per million |\n"
            s += "|---|---|---:|---:|---:|---:|---:|---:|\n"
            for x in run.memory {
                let perM = { (b: Int) in Double(b) / Double(x.n) * 1e6 }
                s += "| \(x.what) | \(x.system) | \(n(x.n)) | \(mb(Double(x.rssBeforeBytes))) | \(mb(Double(x.rssAfterBytes))) | "
                // Episodic records live in SQLite: mnemod's RSS holds its page cache, not the records.
                s += x.what == "episodic records" ? "page cache only | " : "\(mb(perM(x.rssAfterBytes - x.rssBeforeBytes))) | "
                s += "\(x.reportedBytes.map { mb(perM($0)) + " (\(x.reportedWhat ?? "reported"))" } ?? "") | "
                s += "\(x.floorBytes.map { mb(perM($0)) + " (N x 384 x 4)" } ?? "") |\n"
            }
            let keys = run.memory.filter { $0.what == "working keys" }
            let most = keys.map(\.n).max()
            if let mn = keys.first(where: { $0.system.hasPrefix("mnemo") && $0.n == most }),
                let rd = keys.first(where: { $0.system == "redis" && $0.n == most }), let used = rd.reportedBytes, used > 0 {
                s += "\nAt N = \(n(most))"
                let growth = Double(mn.rssAfterBytes - mn.rssBeforeBytes)
                s += " working keys (100-byte values): mnemod's RSS growth / Redis `used_memory` growth = \(ratio(growth / Double(used)));"
                s += " / Redis RSS growth = \(ratio(growth / Double(max(1, rd.rssAfterBytes - rd.rssBeforeBytes)))).\n"
            }
            if let v = run.memory.filter({ $0.what == "384-d vectors" }).max(by: { $0.n < $1.n }), let floor = v.floorBytes {
                s += "Vectors at N = \(n(v.n)): mnemod's RSS / the float32 floor = \(ratio(Double(v.rssAfterBytes) / Double(floor)))"
                s += " (RSS growth / floor = \(ratio(Double(v.rssAfterBytes - v.rssBeforeBytes) / Double(floor)))).\n"
            }
        }

        s += "\n## All percentiles\n\n"
        s += "| workload | system | N | clients | p50 | p90 | p99 | p99.9 | max | ops/s |\n"
        s += "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        for r in runs {
            s += "| \(r.workload) | \(r.system) | \(n(r.n)) | \(r.clients) | \(f(r.p50)) | \(f(r.p90)) | \(f(r.p99)) | \(f(r.p999)) | \(f(r.max)) | \(ops(r.opsPerSecond)) |\n"
        }
        if let plot { s += "\n![latency percentiles](\(plot))\n" }
        return s
    }

    /// Rows that show one system's latency against N: `wm.get` over 1000 keys and over
    /// the memory run's keys are one family.
    /// How many times slower mnemod is: p50 ratio at one client, inverse throughput ratio at several.
    static func slowdown(_ a: RunResult, _ b: RunResult) -> Double {
        a.clients == 1 ? a.p50 / b.p50 : b.opsPerSecond / a.opsPerSecond
    }

    static func growthFamily(_ r: RunResult) -> String {
        let w = r.workload == "wm.get random key" ? "wm.get" : r.workload
        return w + "|" + r.system
    }

    static func f(_ v: Double) -> String {
        v >= 1000 ? String(Int(v.rounded())) : v >= 100 ? String(format: "%.0f", v) : String(format: "%.1f", v)
    }

    static func ops(_ v: Double) -> String {
        v >= 10_000 ? String(format: "%.0fk", v / 1000) : v >= 100 ? String(Int(v.rounded())) : String(format: "%.1f", v)
    }

    static func ratio(_ v: Double) -> String { v.isFinite ? String(format: "%.2f", v) : "n/a" }

    static func n(_ v: Int?) -> String {
        guard let v else { return "" }
        return v >= 1_000_000 && v % 1_000_000 == 0 ? "\(v / 1_000_000)M" : v >= 1000 && v % 1000 == 0 ? "\(v / 1000)k" : "\(v)"
    }

    static func mb(_ bytes: Double) -> String { bytes >= 1e9 ? String(format: "%.2f GB", bytes / 1e9) : String(format: "%.0f MB", bytes / 1e6) }
}
