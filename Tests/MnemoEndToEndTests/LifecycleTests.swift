import Foundation
import Synchronization
import MnemoClient
import MnemoProtocol
import Testing

/// One `admin.health` request line, as a raw client sends it.
private let healthLine = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"admin.health\"}\n"

@Suite("daemon lifecycle, limits and CLI")
struct LifecycleTests {
    @Test func socketIsPrivateAndRemovedOnSIGTERM() throws {
        let daemon = try Daemon()
        var st = stat()
        #expect(stat(daemon.socket, &st) == 0)
        #expect(st.st_mode & 0o777 == 0o600)
        #expect(daemon.stop() == 0)
        #expect(!FileManager.default.fileExists(atPath: daemon.socket))
    }

    @Test func staleSocketIsReplacedAndLiveDaemonIsRefused() throws {
        let first = try Daemon()
        first.kill()  // leaves a stale socket file behind
        #expect(FileManager.default.fileExists(atPath: first.socket))
        let second = try first.restarted()
        #expect(try second.client().call("admin.health")["status"] == "ok")

        // A daemon on the same live socket (its own data directory) must refuse, and so must
        // one on the same data directory (its own socket); the running one is left alone.
        let sameSocket = try Daemon.runToExit(["--socket", second.socket, "--data-dir", second.dir.path + "/other-data"])
        #expect(sameSocket.0 != 0)
        #expect(sameSocket.1.contains("already serving"))
        let sameData = try Daemon.runToExit(["--socket", second.dir.path + "/other.sock", "--data-dir", second.dataDir])
        #expect(sameData.0 != 0)
        #expect(sameData.1.contains("in use by another mnemod"))
        #expect(try second.client().call("admin.health")["status"] == "ok")
    }

    @Test func badConfigurationIsRefusedAtStart() throws {
        for config in ["bogus_key = 1", "[limits]\nmax_batch = 0", "threads = \"two\"", "not toml ["] {
            #expect(throws: (any Error).self) { _ = try Daemon(config: config) }
        }
    }

    /// A value of the wrong type, in every section of the configuration, stops mnemod at
    /// start with exit 78 and a message naming the key (never a silent default).
    @Test(arguments: [
        ("threads = \"two\"", "threads"),
        ("socket_group_access = \"yes\"", "socket_group_access"),
        ("durability = 1", "durability"),
        ("[limits]\nmax_batch = \"64\"", "limits.max_batch"),
        ("[working]\nsweep_interval_ms = \"100\"", "working.sweep_interval_ms"),
        ("[audit]\nmutations = \"true\"", "audit.mutations"),
        ("[[principals]]\nname = 7\ngrants = []", ".name"),
        ("[semantic]\nsimilar_score = \"0.9\"", "semantic.similar_score"),
        ("[semantic.embedder]\nkind = \"hash\"\ndims = \"768\"", "dims"),
        ("[episodic]\nsummarizer_timeout_ms = \"5000\"", "episodic.summarizer_timeout_ms"),
        ("[[episodic.retention]]\nns = 42", ".ns"),
        ("[cluster]\npostgres = 5", "cluster.postgres"),
        ("[cluster]\nnode = \"a\"", "cluster.postgres"),
        ("[cluster]\npostgres = \"host=/tmp dbname=m password=secret\"", "cluster.postgres"),
        ("[cluster]\npostgres = \"postgresql://u:secret@db/m\"", "cluster.postgres"),
        ("[cluster]\npostgres = \"host=/tmp\"\npassword_env = \"MNEMO_TEST_UNSET_VARIABLE\"", "MNEMO_TEST_UNSET_VARIABLE"),
        ("[cluster]\npostgres = \"host=/tmp\"\npoll_ms = 0", "cluster.poll_ms"),
    ])
    func aWrongTypeInAnySectionIsRefusedNamingTheKey(config: String, key: String) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mnemo-cfg-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try config.write(toFile: dir.path + "/mnemod.toml", atomically: true, encoding: .utf8)
        let (status, stderr) = try Daemon.runToExit(["--socket", dir.path + "/s.sock", "--data-dir", dir.path + "/data",
                                                     "--config", dir.path + "/mnemod.toml"])
        #expect(status == 78, "\(config): \(stderr)")
        #expect(stderr.contains(key), "\(config): \(stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/data/semantic.sqlite"), "nothing was opened")
    }

    @Test func idlePartialLineIsCutOff() throws {
        let daemon = try Daemon(config: "[limits]\nidle_timeout_ms = 200\n")
        let idle = try RawConnection(daemon.socket)
        let busy = try daemon.client()
        idle.send("{\"jsonrpc\":\"2.0\",")
        let e = idle.readJSON(timeoutMs: 3000)
        #expect(e?["error"]?["data"]?["limit"] == "idle_timeout_ms")
        #expect(idle.isClosedByPeer())
        // Others are unaffected, and a connection with no partial line is never cut.
        #expect(try busy.call("wm.get", ["ns": "a", "key": "b"])["found"] == false)
    }

    @Test func slowSenderIsCutOffAtTheLineDeadline() throws {
        // One byte every 50 ms never leaves the line idle for 400 ms, yet the line is not
        // done 400 ms after its first byte: the deadline counts from the first byte.
        let daemon = try Daemon(config: "[limits]\nidle_timeout_ms = 400\n")
        let slow = try RawConnection(daemon.socket)
        let busy = try daemon.client()
        let line = Array("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"admin.health\"}".utf8)
        var cut = false
        for byte in line where !cut {
            slow.send([byte])
            usleep(50_000)
            var pfd = pollfd(fd: slow.fd, events: Int16(POLLIN), revents: 0)
            cut = poll(&pfd, 1, 0) > 0
        }
        #expect(cut, "a line trickled over \(line.count * 50) ms was never cut off")
        #expect(slow.readJSON(timeoutMs: 1000)?["error"]?["data"]?["limit"] == "idle_timeout_ms")
        #expect(try busy.call("admin.health")["status"] == "ok")
        // Lines that complete in time reset the deadline: a steady stream of requests,
        // each sent whole, is never cut.
        let steady = try RawConnection(daemon.socket)
        for i in 0..<12 {
            steady.send("{\"jsonrpc\":\"2.0\",\"id\":\(i),\"method\":\"admin.health\"}\n")
            #expect(steady.readJSON()?["result"]?["status"] == "ok")
            usleep(50_000)
        }
    }

    @Test func silentConnectionsAreCutOnlyWhenConfigured() throws {
        let daemon = try Daemon(config: "[limits]\nidle_connection_timeout_ms = 300\n")
        let silent = try RawConnection(daemon.socket)
        let watcher = try daemon.client("watcher")
        _ = try watcher.call("watch.subscribe", ["ns": "w"])
        let e = silent.readJSON(timeoutMs: 3000)
        #expect(e?["error"]?["data"]?["limit"] == "idle_connection_timeout_ms")
        #expect(silent.isClosedByPeer())
        // A connection holding a watch waits for events, not requests: it is kept.
        usleep(600_000)
        #expect(try watcher.call("admin.health")["status"] == "ok")
        // With the default (0), a silent connection is never cut.
        let open = try Daemon()
        let quiet = try RawConnection(open.socket)
        #expect(quiet.readLine(timeoutMs: 700) == nil)
        quiet.send(healthLine)
        #expect(quiet.readJSON()?["result"]?["status"] == "ok")
    }

    @Test func connectionLimitRefusesCleanly() throws {
        let daemon = try Daemon(config: "[limits]\nmax_connections = 2\n")
        // The start-up probe's connection may not be closed on the server side yet.
        func connect(_ name: String) throws -> MnemoClient {
            for _ in 0..<100 {
                if let c = try? daemon.client(name) { return c }
                usleep(20_000)
            }
            return try daemon.client(name)
        }
        let a = try connect("a")
        let b = try connect("b")
        let c = try RawConnection(daemon.socket)
        let refusal = c.readJSON()
        #expect(refusal?["error"]?["data"]?["limit"] == "max_connections")
        #expect(c.isClosedByPeer())
        #expect(try a.call("admin.health")["status"] == "ok")
        b.close()
        // A freed slot can be used again.
        var reconnected = false
        for _ in 0..<100 where !reconnected {
            if let c2 = try? daemon.client("c"), (try? c2.call("admin.health")) != nil { reconnected = true } else { usleep(20_000) }
        }
        #expect(reconnected)
        let stats = try a.call("admin.stats")
        #expect((stats["connections"]?["refused"]?.int64Value ?? 0) >= 1)
    }

    @Test func cliExitCodes() throws {
        let daemon = try Daemon()
        func mnemo(_ args: [String]) throws -> (Int32, String) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: Daemon.binary("mnemo"))
            p.arguments = args
            let out = Pipe()
            p.standardOutput = out
            p.standardError = Pipe()
            try p.run()
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            return (p.terminationStatus, text)
        }
        let s = ["--socket", daemon.socket]
        #expect(try mnemo(["set"] + s + ["wf/1", "k", "{\"a\":1}"]).0 == 0)
        let got = try mnemo(["get"] + s + ["-o", "json", "wf/1", "k"])
        #expect(got.0 == 0)
        #expect(try JSONParser.parse(got.1.trimmingCharacters(in: .whitespacesAndNewlines))["value"] == ["a": 1])
        #expect(try mnemo(["set"] + s + ["wf/1", "t", "plain text"]).0 == 0)
        #expect(try mnemo(["get"] + s + ["wf/1", "t"]).1.contains("\"plain text\""))
        #expect(try mnemo(["get"] + s + ["wf/1", "missing"]).0 == 1)
        #expect(try mnemo(["del"] + s + ["wf/1", "missing"]).0 == 1)
        #expect(try mnemo(["set"] + s + ["wf/1", "k", "2", "--if-version", "999"]).0 == 2)
        #expect(try mnemo(["set"] + s + ["bad ns", "k", "2"]).0 == 2)
        #expect(try mnemo(["ls"] + s + ["wf/1"]).1.contains("k"))
        // expire sets and removes a TTL (exit 1 on a missing key); ls resumes from the cursor it prints.
        #expect(try mnemo(["expire"] + s + ["wf/1", "k", "60000"]).0 == 0)
        #expect(try mnemo(["get"] + s + ["wf/1", "k", "-o", "json"]).1.contains("expires_at"))
        #expect(try mnemo(["expire"] + s + ["wf/1", "k", "--persist"]).0 == 0)
        #expect(!(try mnemo(["get"] + s + ["wf/1", "k", "-o", "json"]).1.contains("expires_at")))
        #expect(try mnemo(["expire"] + s + ["wf/1", "missing", "1000"]).0 == 1)
        #expect(try mnemo(["expire"] + s + ["wf/1", "k"]).0 == 64)
        for i in 0..<3 { _ = try mnemo(["set"] + s + ["pages", "key\(i)", "\(i)"]) }
        let first = try mnemo(["ls"] + s + ["pages", "--limit", "2", "-o", "json"])
        let cursor = try #require(try JSONParser.parse(first.1.trimmingCharacters(in: .whitespacesAndNewlines))["cursor"]?.stringValue)
        let rest = try mnemo(["ls"] + s + ["pages", "--limit", "2", "--cursor", cursor, "-o", "json"])
        #expect(try JSONParser.parse(rest.1.trimmingCharacters(in: .whitespacesAndNewlines))["items"]?.arrayValue?.map { $0["key"] } == ["key2"])
        #expect(try mnemo(["call"] + s + ["wm.get", "{\"ns\":\"wf/1\",\"key\":\"k\"}"]).0 == 0)
        #expect(try mnemo(["call"] + s + ["wm.get", "not json"]).0 == 64)
        #expect(try mnemo(["health", "--socket", daemon.dir.path + "/nothing.sock"]).0 == 3)
        #expect(try mnemo(["frobnicate"]).0 == 64)
    }
}

@Suite("file descriptor exhaustion")
struct DescriptorLimitTests {
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/prlimit"), "needs prlimit"))
    func peersBeyondTheOpenFilesLimitAreRefusedNotLeftHanging() throws {
        // mnemod under a hard limit of 48 open files: it cannot hold 100 connections.
        let daemon = try Daemon(launcher: ["/usr/bin/prlimit", "--nofile=48:48"])
        var open: [RawConnection] = []
        var refused = 0
        for _ in 0..<100 {
            let c = try RawConnection(daemon.socket)
            c.send(healthLine)
            guard let reply = c.readJSON(timeoutMs: 3000) else {
                Issue.record("no reply: the peer was left hanging")
                break
            }
            if reply["error"]?["data"]?["limit"] == "max_connections" {
                refused += 1
                #expect(c.isClosedByPeer())
            } else {
                #expect(reply["result"]?["status"] == "ok")
                open.append(c)
            }
        }
        #expect(refused > 0)
        #expect(open.count > 10)
        // Freeing descriptors lets new peers in again.
        open.removeAll()
        var served = false
        for _ in 0..<100 where !served {
            usleep(20_000)
            served = (try? daemon.client().call("admin.health")) != nil
        }
        #expect(served)
    }

    /// Peers connecting from many threads at once while descriptors run out and free up:
    /// every peer is answered (served, or refused with an error line), and then, with the
    /// table full, every new peer still is. Regression: the two event loops accepted
    /// concurrently, one could take the descriptor the other had just released to refuse a
    /// peer, and once both spares were gone new peers waited unanswered (CI saw it once in
    /// the test above; this one hung in 1 of 3 runs before the fix).
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/prlimit"), "needs prlimit"))
    func peersRacingForTheLastDescriptorsAreAllAnswered() throws {
        let daemon = try Daemon(launcher: ["/usr/bin/prlimit", "--nofile=48:48"])
        let socket = daemon.socket
        /// Connects and asks for health: the reply, nil when the connection ended without
        /// one (a refused peer's request can meet the closed socket), and a hang is counted.
        let hung = Mutex(0)
        let answered = Mutex((served: 0, refused: 0))
        @Sendable func ask() -> (RawConnection, JSON?)? {
            guard let c = try? RawConnection(socket) else { return nil }
            c.send(healthLine)
            let start = DispatchTime.now().uptimeNanoseconds
            let reply = c.readJSON(timeoutMs: 5000)
            if reply == nil && DispatchTime.now().uptimeNanoseconds - start >= 4_500_000_000 {
                hung.withLock { $0 += 1 }
            }
            if reply?["result"] != nil { answered.withLock { $0.served += 1 } }
            if reply?["error"]?["data"]?["limit"] == "max_connections" { answered.withLock { $0.refused += 1 } }
            return (c, reply)
        }
        let group = DispatchGroup()
        for _ in 0..<8 {
            group.enter()
            Thread {
                defer { group.leave() }
                var kept: [RawConnection] = []
                for i in 0..<300 {
                    if let (c, reply) = ask(), reply?["result"] != nil { kept.append(c) }
                    // Hold a few, let go of the rest: descriptors run out and free up.
                    if kept.count > 4 || i % 7 == 0 { kept.removeFirst(min(kept.count, 2)) }
                }
            }.start()
        }
        group.wait()
        #expect(hung.withLock { $0 } == 0, "peers left waiting while descriptors ran out")
        let counts = answered.withLock { $0 }
        #expect(counts.served > 100 && counts.refused > 100, "descriptors did not run out: \(counts)")
        // The table full again, and held: each further peer is served or refused.
        var held: [RawConnection] = []
        for _ in 0..<80 {
            guard let (c, _) = ask() else { continue }
            held.append(c)
            if hung.withLock({ $0 }) > 0 { break }
        }
        #expect(hung.withLock { $0 } == 0, "a peer left waiting once the table was full")
    }
}
