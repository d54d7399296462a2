import MnemoCore
import MnemoProtocol

extension Dispatcher {
    static func adminMethods(engine: Engine, stats: MethodStats, status: ServerStatus, hub: WatchHub) -> [(String, Method)] {
        [
            ("admin.health", Method(requiresSession: false) { p, _, out throws(WireError) in
                try p.allowOnly([])
                let damaged = engine.damagedTiers
                out.raw("{\"status\":")
                out.raw(status.shuttingDown.load(ordering: .relaxed) ? "\"shutting_down\"" : damaged.isEmpty ? "\"ok\"" : "\"degraded\"")
                out.raw(",\"uptime_ms\":")
                out.int(engine.uptimeMs)
                out.raw(",\"rev\":")
                out.int(engine.revision)
                if !damaged.isEmpty {
                    out.raw(",\"degraded\":[")
                    for (i, d) in damaged.enumerated() {
                        if i > 0 { out.byte(UInt8(ascii: ",")) }
                        out.raw("{\"tier\":")
                        out.string(d.tier)
                        out.raw(",\"reason\":")
                        out.string(d.reason)
                        out.byte(UInt8(ascii: "}"))
                    }
                    out.byte(UInt8(ascii: "]"))
                }
                if let cluster = engine.cluster { writeClusterHealth(cluster, &out) }
                out.byte(UInt8(ascii: "}"))
            }),
            ("admin.check", Method(requiresSession: true, offLoop: true) { p, _, out throws(WireError) in
                try p.allowOnly(["full"])
                let full = try p.optionalBool("full") ?? false
                out.value(DataCheck.run(engine, full: full).json)
            }),
            ("admin.stats", Method(requiresSession: true) { p, _, out throws(WireError) in
                try p.allowOnly([])
                let wm = engine.working.stats
                out.raw("{\"uptime_ms\":")
                out.int(engine.uptimeMs)
                out.raw(",\"rev\":")
                out.int(engine.revision)
                out.raw(",\"connections\":{\"current\":")
                out.int(status.connectionsCurrent.load(ordering: .relaxed))
                out.raw(",\"total\":")
                out.int(status.connectionsTotal.load(ordering: .relaxed))
                out.raw(",\"refused\":")
                out.int(status.connectionsRefused.load(ordering: .relaxed))
                out.raw(",\"waiting\":")
                out.int(status.waitingCalls.load(ordering: .relaxed))
                out.raw("},\"working\":{\"keys\":")
                out.int(wm.keys)
                out.raw(",\"namespaces\":")
                out.int(wm.namespaces)
                out.raw(",\"bytes\":")
                out.int(wm.bytes)
                out.raw(",\"expired\":")
                out.int(wm.expired)
                out.raw(",\"claims\":")
                out.int(wm.claims)
                out.raw(",\"tasks\":")
                out.int(wm.tasks)
                out.raw(",\"results\":")
                out.int(wm.results)
                out.raw(",\"inbox_entries\":")
                out.int(wm.inboxEntries)
                out.raw(",\"watches\":")
                out.int(hub.count)
                out.raw("},\"durability\":{\"mode\":")
                out.string(engine.durability.rawValue)
                if let journal = engine.working.journal {
                    out.raw(",\"appended_bytes\":")
                    out.uint(journal.appendedLSN)
                    out.raw(",\"synced_bytes\":")
                    out.uint(journal.syncedLSN)
                }
                let ep = engine.episodic.stats
                out.raw("},\"episodic\":{\"records\":")
                out.int(ep.records)
                out.raw(",\"deletions_logged\":")
                out.int(ep.deletionsLogged)
                out.raw(",\"vectors\":")
                out.int(ep.vectors)
                out.raw("},\"jobs\":{\"episodic_retention\":{\"runs\":")
                out.int(ep.jobRuns)
                out.raw(",\"last_ms\":")
                out.int(ep.lastJobMs)
                out.raw(",\"summaries_written\":")
                out.int(ep.summariesWritten)
                out.raw(",\"pruned\":")
                out.int(ep.pruned)
                out.raw(",\"external_summarizer_failures\":")
                out.int(ep.externalSummarizerFailures)
                out.raw("}},\"semantic\":{\"records\":")
                out.int(engine.semantic.count)
                out.raw(",\"collections\":")
                out.int(engine.semantic.collectionCount)
                out.raw(",\"matrix_bytes\":")
                out.int(engine.semantic.matrixBytes)
                out.raw(",\"embedder\":")
                out.string(engine.semantic.embedder.model)
                out.raw("},\"principals\":")
                try writePrincipals(engine, &out)
                out.raw(",\"audit\":{\"dropped\":")
                out.int(engine.audit.dropped.load(ordering: .relaxed))
                out.raw("},\"blas\":{\"library\":")
                out.string(BLAS.loaded)
                out.raw(",\"threads\":")
                out.int(BLAS.threads)
                out.raw("},\"methods\":{")
                for (i, (name, e)) in stats.snapshot().enumerated() {
                    if i > 0 { out.byte(UInt8(ascii: ",")) }
                    out.key(name)
                    out.raw("{\"count\":")
                    out.uint(e.count)
                    out.raw(",\"errors\":")
                    out.uint(e.errors)
                    for (label, pct) in [("p50_us", 50.0), ("p90_us", 90.0), ("p99_us", 99.0), ("p999_us", 99.9)] {
                        out.raw(",")
                        out.key(label)
                        out.double(micros(e.latency.valueAtPercentile(pct)))
                    }
                    out.raw(",\"max_us\":")
                    out.double(micros(e.latency.max))
                    out.byte(UInt8(ascii: "}"))
                }
                out.raw("}}")
            }),
        ]
    }
}

/// `admin.stats` `principals`: per principal, what it holds (working bytes, semantic and
/// episodic records and bytes, open connections, calls and connections refused over
/// quota) and its quota when it has one.
private func writePrincipals(_ engine: Engine, _ out: inout JSONWriter) throws(WireError) {
    let working = engine.working.bytesByPrincipal
    let semantic = try engine.semantic.db.usageByPrincipal()
    let episodic = try engine.episodic.store.usageByPrincipal()
    let meters = engine.access.quotas.allMeters
    let names = Set(working.keys).union(semantic.keys).union(episodic.keys).union(meters.keys)
    out.byte(UInt8(ascii: "{"))
    for (i, name) in names.sorted().enumerated() {
        if i > 0 { out.byte(UInt8(ascii: ",")) }
        out.key(name)
        let meter = meters[name]?.usage ?? (connections: 0, refused: 0)
        let fields: [(String, Int)] = [
            ("working_bytes", working[name] ?? 0), ("semantic_records", semantic[name]?.records ?? 0),
            ("semantic_bytes", semantic[name]?.bytes ?? 0), ("episodic_records", episodic[name]?.records ?? 0),
            ("episodic_bytes", episodic[name]?.bytes ?? 0), ("connections", meter.connections), ("refused", meter.refused),
        ]
        out.byte(UInt8(ascii: "{"))
        for (j, (k, v)) in fields.enumerated() {
            if j > 0 { out.byte(UInt8(ascii: ",")) }
            out.key(k)
            out.int(v)
        }
        if let q = engine.access.quotas.quota(name) {
            out.raw(",\"quota\":{")
            var first = true
            for f in Quota.fields {
                guard let v = q[keyPath: f.keyPath] else { continue }
                if !first { out.byte(UInt8(ascii: ",")) }
                first = false
                out.key(f.name)
                out.int(v)
            }
            out.byte(UInt8(ascii: "}"))
        }
        out.byte(UInt8(ascii: "}"))
    }
    out.byte(UInt8(ascii: "}"))
}

/// Nanoseconds as microseconds with one decimal.
private func micros(_ ns: UInt64) -> Double { (Double(ns) / 100).rounded() / 10 }

/// `admin.health`'s `cluster` member: this node, whether it reaches PostgreSQL, and how
/// stale its local reads may be.
private func writeClusterHealth(_ cluster: ClusterLog, _ out: inout JSONWriter) {
    let health = cluster.health
    out.raw(",\"cluster\":{\"node\":")
    out.string(cluster.settings.node)
    out.raw(",\"connected\":")
    out.bool(health.connected)
    out.raw(",\"staleness_ms\":")
    out.int(health.stalenessMs)
    out.raw(",\"reconnects\":")
    out.int(Int64(health.reconnects))
    if let error = health.lastError {
        out.raw(",\"last_error\":")
        out.string(error)
    }
    out.byte(UInt8(ascii: "}"))
}
