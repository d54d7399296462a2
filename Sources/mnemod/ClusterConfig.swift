import Foundation
import MnemoCore
import TOMLKit

/// The `[cluster]` table: with it, this mnemod is a node of a cluster whose state of record
/// is in PostgreSQL; without it, a single node.
///
/// ```toml
/// [cluster]
/// postgres = "host=/run/postgresql dbname=mnemo user=mnemo"   # libpq connection string or URI
/// password_env = "MNEMO_PG_PASSWORD"   # or password_file = "/etc/mnemo/pg-password" (never in this file)
/// node = "gpu-box"                     # default: the host name
/// poll_ms = 200                        # feed read at least this often (NOTIFY wakes it sooner)
/// max_wait_ms = 5000                   # longest wait of a read for min_rev / linearizable
/// snapshot_every = 100000              # state snapshot into PostgreSQL every this many revisions
/// feed_retain = 100000                 # feed revisions kept before the latest snapshot
/// txn_timeout_ms = 5000                # a node's transaction idle this long is ended by PostgreSQL
/// ```
enum ClusterConfig {
    static func parse(_ table: TOMLTable, file: String) throws(ConfigError) -> ClusterSettings {
        var conninfo: String?
        var passwordEnv: String?
        var passwordFile: String?
        var node = ProcessInfo.processInfo.hostName
        var pollMs = 200
        var maxWaitMs = 5_000
        var snapshotEvery = 100_000
        var feedRetain = 100_000
        var txnTimeoutMs = 5_000
        for key in table.keys {
            let value = table[key]
            func string() throws(ConfigError) -> String {
                guard let s = value?.string, !s.isEmpty else { throw ConfigError("\(file): cluster.\(key) must be a non-empty string") }
                return s
            }
            func int(_ range: ClosedRange<Int>) throws(ConfigError) -> Int {
                guard let v = value?.int, range.contains(v) else {
                    throw ConfigError("\(file): cluster.\(key) must be an integer in \(range.lowerBound)...\(range.upperBound)")
                }
                return v
            }
            switch key {
            case "postgres": conninfo = try string()
            case "password_env": passwordEnv = try string()
            case "password_file": passwordFile = try string()
            case "node": node = try string()
            case "poll_ms": pollMs = try int(10...10_000)
            case "max_wait_ms": maxWaitMs = try int(0...60_000)
            case "snapshot_every": snapshotEvery = try int(10...100_000_000)
            case "feed_retain": feedRetain = try int(0...100_000_000)
            case "txn_timeout_ms": txnTimeoutMs = try int(100...600_000)
            default: throw ConfigError("\(file): unknown key cluster.\(key)")
            }
        }
        guard let conninfo else { throw ConfigError("\(file): cluster.postgres is required") }
        if conninfo.lowercased().contains("password") || conninfo.range(of: #"://[^/@]*:[^/@]*@"#, options: .regularExpression) != nil {
            throw ConfigError("\(file): cluster.postgres must not hold a password: use cluster.password_env or cluster.password_file")
        }
        if passwordEnv != nil && passwordFile != nil {
            throw ConfigError("\(file): cluster.password_env and cluster.password_file exclude each other")
        }
        var password: String?
        if let name = passwordEnv {
            guard let v = ProcessInfo.processInfo.environment[name] else {
                throw ConfigError("\(file): cluster.password_env names \(name), which is not set")
            }
            password = v
        }
        if let path = passwordFile {
            do {
                password = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .newlines)
            } catch {
                throw ConfigError("\(file): cluster.password_file \(path) cannot be read: \(error.localizedDescription)")
            }
        }
        return ClusterSettings(conninfo: conninfo, password: password, node: node, pollMs: pollMs, maxWaitMs: maxWaitMs,
                               snapshotEvery: Int64(snapshotEvery), feedRetain: Int64(feedRetain), txnTimeoutMs: txnTimeoutMs)
    }
}
