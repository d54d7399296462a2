import Foundation
@testable import MnemoCore
import MnemoProtocol
import Testing

/// A fresh directory under the system's temporary directory, removed by `cleanup()`.
struct TempDir {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("mnemo-journal-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func cleanup() { try? FileManager.default.removeItem(atPath: path) }

    /// The files of the directory, sorted.
    func files() -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted() }

    /// The newest `journal-*.log`.
    func newestLog() throws -> String {
        let logs = files().filter { $0.hasPrefix("journal-") && $0.hasSuffix(".log") }
        return path + "/" + (try #require(logs.last))
    }
}

/// The framed records of a journal file: `(offset, payload length)` each, up to the first
/// zero length (space reserved but not written) or the end of the file.
func frames(_ path: String) throws -> [(offset: Int, length: Int)] {
    let data = [UInt8](try #require(FileManager.default.contents(atPath: path)))
    var out: [(Int, Int)] = []
    var off = 0
    while off + 8 <= data.count {
        let len = Int(data[off]) | Int(data[off + 1]) << 8 | Int(data[off + 2]) << 16 | Int(data[off + 3]) << 24
        if len == 0 || off + 8 + len > data.count { break }
        out.append((off, len))
        off += 8 + len
    }
    return out
}

/// Overwrites bytes of a file at `offset` (the file keeps its size unless it grows).
func overwrite(_ path: String, at offset: Int, with bytes: [UInt8]) throws {
    let handle = try #require(FileHandle(forUpdatingAtPath: path))
    defer { try? handle.close() }
    try handle.seek(toOffset: UInt64(offset))
    try handle.write(contentsOf: Data(bytes))
}

/// A framed record as the journal writes it: length, CRC-32C, payload.
func frame(_ payload: [UInt8]) -> [UInt8] {
    let len = UInt32(payload.count)
    let crc = CRC32C.checksum(payload)
    return withUnsafeBytes(of: len.littleEndian) { Array($0) } + withUnsafeBytes(of: crc.littleEndian) { Array($0) } + payload
}

@Suite("Journal: codec, recovery, torn tails, snapshots")
struct JournalTests {
    static let quiet = {
        var logger = WorkingMemory(limits: Limits(), time: ManualTime()).logger
        logger.logLevel = .critical
        return logger
    }()

    static func open(_ dir: TempDir, _ time: ManualTime, resultRetentionMs: Int64 = 7 * 86_400_000,
                     inboxRetentionMs: Int64 = 7 * 86_400_000) throws -> WorkingMemory {
        try WorkingMemory.open(dir: dir.path, durability: .normal, limits: Limits(), time: time, logger: quiet,
                               resultRetentionMs: resultRetentionMs, inboxRetentionMs: inboxRetentionMs)
    }

    /// Everything the store holds, one line per thing, sorted: keys with value, version,
    /// expiry, provenance and lease; claims with holder, token, expiry and leased keys;
    /// results; tasks with their history; inbox entries with their acked flag.
    static func dump(_ wm: WorkingMemory) -> [String] {
        let s = wm.state.withLock { $0 }
        var out: [String] = []
        for (ns, space) in s.spaces {
            for (key, i) in space.items {
                out.append("key \(ns) \(key) v=\(String(decoding: i.value, as: UTF8.self)) ver=\(i.version) exp=\(i.expiresAt) "
                           + "prov=\(i.provenance) lease=\(String(describing: i.lease))")
            }
        }
        for (k, c) in s.claims {
            out.append("claim \(k.ns) \(k.resource) \(c.holder) \(c.principal) tok=\(c.token) exp=\(c.expiresAt) "
                       + "leased=\(c.leasedKeys.sorted())")
        }
        for (k, r) in s.results { out.append("result \(k.ns) \(k.resource) \(r)") }
        for (k, t) in s.tasks { out.append("task \(k.ns) \(k.resource) \(t)") }
        for (ns, box) in s.inboxes { for (id, e) in box { out.append("inbox \(ns) \(id) \(e)") } }
        return out.sorted()
    }

    // MARK: codec

    static let prov = Provenance(agent: "agent-1", principal: "ops", uid: 4_294_967_295, pid: -1, at: 1_800_000_000_123,
                                 rev: 9_007_199_254_740_993, task: "task/é", derivedFrom: ["x", "y\"z"])
    static let plainProv = Provenance(agent: "a", principal: "local", uid: 0, pid: 42, at: 0, rev: 1, task: nil, derivedFrom: nil)

    /// One of every change, with awkward strings and numbers. Values are compact JSON as the
    /// server stores them (parsed and re-written), so they come back byte for byte. Claims have no monotonic
    /// deadline (it is not journaled: replay derives it from the wall-clock expiry) and
    /// puts are not `retimed` (that only names the watch event).
    static let everyChange: [Change] = [
        .put(ns: "a/b", key: "k \"q\" \\ \n ✓ \u{1}", item: WorkingItem(
            value: Array(#"{"n":[1,2.5e-3,null,true],"s":"é \"\n"}"#.utf8), version: 7, expiresAt: 1_800_000_001_000,
            provenance: prov, lease: Lease(resource: "res", token: 5))),
        .put(ns: "a", key: "plain", item: WorkingItem(value: Array("12345678901234567890".utf8), version: 8, expiresAt: 0,
                                                      provenance: plainProv)),
        .remove(ns: "a", key: "k", rev: 9, expired: true),
        .remove(ns: "a", key: "k", rev: 10, expired: false),
        .clear(ns: "a/b", rev: 11),
        .batch(rev: 12, [
            .put(ns: "a", key: "x", item: WorkingItem(value: Array("1".utf8), version: 12, expiresAt: 5, provenance: plainProv)),
            .remove(ns: "a", key: "y", rev: 12, expired: false),
        ]),
        .batch(rev: 13, []),
        .claim(ns: "a", resource: "r é", Claim(holder: "h", principal: "p", token: 14, expiresAt: 1_800_000_002_000, expiresMono: 0)),
        .renew(ns: "a", resource: "r", token: 14, expiresAt: 1_800_000_003_000, expiresMono: 0, rev: 15),
        .unclaim(ns: "a", resource: "r", rev: 16, at: 1_800_000_004_000, expired: true),
        .unclaim(ns: "a", resource: "r", rev: 17, at: 1_800_000_004_001, expired: false),
        .result(ns: "a", key: "idem", StoredResult(task: "t", value: Array(#"[{"b":1,"a":2}]"#.utf8), provenance: prov,
                                                    expiresAt: 1_800_000_005_000)),
        .forgetResult(ns: "a", key: "idem", rev: 19),
        .task(ns: "a", task: "t", TaskStep(from: nil, to: .pending, provenance: plainProv)),
        .task(ns: "a", task: "t", TaskStep(from: .running, to: .failed, provenance: prov)),
        .post(ns: "a", InboxEntry(id: "22", from: "a", to: "b", type: "handoff", content: Array(#"{"x":"y"}"#.utf8),
                                  provenance: prov, acked: false, expiresAt: 1_800_000_006_000)),
        .post(ns: "a", InboxEntry(id: "23", from: "a", to: "ops", type: "t", content: Array("null".utf8),
                                  provenance: plainProv, acked: true, expiresAt: 1)),
        .ack(ns: "a", ids: ["22", "23"], rev: 24),
        .dropEntry(ns: "a", id: "22", rev: 25),
        .ceiling(rev: 1 << 20),
        .claim(ns: "a", resource: "leader", Claim(holder: "h", principal: "p", token: 30, expiresAt: 1_800_000_009_000, expiresMono: 0,
                                                  value: Array(#"{"addr":"x"}"#.utf8), since: 1_800_000_000_500)),
        .barrier(ns: "a", name: "gate", {
            var b = Barrier(parties: 2)
            b.arrivals = [BarrierArrival(agent: "x", principal: "p", value: Array("1".utf8), at: 1_800_000_000_001, rev: 31)]
            b.deadline = 1_800_000_010_000
            b.finished = [.init(generation: 0, state: .broken, parties: 3, arrivals: [], rev: 29, at: 1_800_000_000_000)]
            b.generation = 1
            return b
        }(), rev: 31, event: "arrive"),
        .proposal(ns: "a", name: "ship", {
            var p = Proposal(round: 2, voters: ["x", "y"], quorum: 1, payload: Array(#"{"v":1}"#.utf8), openedBy: "x",
                             openedPrincipal: "p", openedAt: 1_800_000_000_002, openedRev: 32, deadline: 1_800_000_020_000)
            p.ballots = [.init(voter: "y", principal: "q", yes: true, reason: "ok \u{e9}", at: 1_800_000_000_003, rev: 33)]
            p.decide(.accepted, rev: 33, at: 1_800_000_000_003)
            return p
        }(), rev: 33, event: "decided"),
    ]

    @Test("ChangeCodec.decode(encode(c)) gives back every field of every kind of change", arguments: everyChange.indices)
    func codecRoundTrip(index: Int) throws {
        let change = Self.everyChange[index]
        let encoded = ChangeCodec.encode(change)
        let json = try JSONParser.parse(encoded)
        let decoded = try ChangeCodec.decode(json)
        #expect(String(describing: decoded) == String(describing: change))
        #expect(decoded.rev == change.rev)
        #expect(ChangeCodec.encode(decoded) == encoded)
    }

    /// The name of a change's case. The switch has no default: a new kind of change does
    /// not compile here until it is named, and then `everyChange` must hold one.
    static func kind(_ c: Change) -> String {
        switch c {
        case .put: "put"
        case .remove: "remove"
        case .clear: "clear"
        case .batch: "batch"
        case .claim: "claim"
        case .renew: "renew"
        case .unclaim: "unclaim"
        case .result: "result"
        case .forgetResult: "forgetResult"
        case .task: "task"
        case .post: "post"
        case .ack: "ack"
        case .dropEntry: "dropEntry"
        case .ceiling: "ceiling"
        case .barrier: "barrier"
        case .proposal: "proposal"
        }
    }

    @Test("the round trip above covers every kind of change")
    func codecCoversEveryCase() {
        #expect(Set(Self.everyChange.map(Self.kind)).count == 16)
    }

    @Test("records that do not decode are refused, not guessed at",
          arguments: [#"{"t":"bogus"}"#, #"{"ns":"a"}"#, #"{"t":"rm","ns":"a","k":"k","rev":1}"#,
                      #"{"t":"rm","ns":"a","k":"k","rev":"1","x":true}"#,
                      #"{"t":"task","ns":"a","task":"t","from":null,"to":"finished","p":{"a":"a","pr":"p","u":0,"pid":0,"at":0,"rev":1}}"#,
                      #"{"t":"put","ns":"a","k":"k","v":1,"ver":1,"exp":0}"#,
                      #"{"t":"batch","rev":2,"c":[{"t":"nope"}]}"#])
    func codecRefusesDamage(record: String) throws {
        let json = try JSONParser.parse(record)
        #expect(throws: ChangeCodec.DecodeError.self) { try ChangeCodec.decode(json) }
    }

    // MARK: recovery

    /// Writes one of everything, through the public API.
    static func populate(_ wm: WorkingMemory, _ time: ManualTime) throws {
        try wm.put("app", "plain", ["a": 1, "b": [true, "x"]])
        try wm.put("app", "ttl", "v", ttl: 3_600_000)
        _ = try wm.set(.init(ns: "app/sub", key: "linked", value: JSON.int(7).bytes, task: "t1", derivedFrom: ["ep:1", "ep:2"]), by: bob)
        try wm.put("app", "rewritten", 1)
        try wm.put("app", "rewritten", 2, by: bob)
        try wm.put("app", "deleted", 1)
        _ = try wm.delete(ns: "app", key: "deleted", by: alice)
        _ = try wm.expire(ns: "app", key: "plain", ttlMs: 7_200_000, by: carol)
        _ = try wm.txn(compare: [], ops: [.set(ns: "app", key: "tx1", value: JSON.int(1).bytes, ttlMs: nil),
                                          .set(ns: "app", key: "tx2", value: JSON.int(2).bytes, ttlMs: 60_000)], by: alice)
        try wm.put("gone", "k", 1)
        _ = try wm.clear(ns: "gone", by: alice)
        time.advance(ms: 10)
        // claims: a live one with leased keys, a renewed one, a released one with its key gone
        let (tok, _) = try wm.grant("app", "job", ttl: 600_000)
        try wm.putLeased("app", "job-state", ["step": 1], resource: "job", token: tok)
        let (tok2, _) = try wm.grant("app", "renewed", ttl: 1000, by: bob)
        _ = try wm.renew(ns: "app", resource: "renewed", token: tok2, ttlMs: 900_000, by: bob)
        let (tok3, _) = try wm.grant("app", "released", ttl: 1000)
        try wm.putLeased("app", "released-state", 1, resource: "released", token: tok3)
        #expect(try wm.release(ns: "app", resource: "released", token: tok3, by: alice))
        // tasks, one of them back to pending after its claim expired
        try wm.walk("app", "t1", [.pending, .claimed, .running, .failed, .pending], by: bob)
        try wm.walk("app", "t2", [.pending, .claimed, .running])
        _ = try wm.grant("app", "t2", ttl: 50)
        time.advance(ms: 50)
        #expect(wm.sweepExpired(max: 100).removed == 1)
        try wm.walk("app", "job", [.pending, .claimed])
        // results
        _ = try wm.putResult(ns: "app", task: "t1", idempotencyKey: "r1", value: ["out": .number("1.50")], by: bob)
        _ = try wm.putResult(ns: "app/sub", task: "t1", idempotencyKey: "r1", value: "other", by: alice)
        // inbox, some acknowledged
        var ids: [String] = []
        for i in 0..<4 { ids.append(try wm.post(ns: "app", to: i % 2 == 0 ? "b" : "local", type: "m", content: .int(i), by: alice).id) }
        #expect(try wm.ack(ns: "app", ids: [ids[0]], by: bob) == 1)
        #expect(try wm.ack(ns: "app", ids: [ids[1]], by: carol) == 1)
        time.advance(ms: 10)
    }

    @Test("open on an empty directory: an empty store at revision 0, and the directory is created if missing")
    func openEmpty() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let sub = TempDir(pathUnder: dir, "data/working")
        let wm = try Self.open(sub, ManualTime())
        #expect(wm.revision == 0)
        #expect(Self.dump(wm) == [])
        #expect(wm.journal != nil)
        #expect(sub.files().contains { $0.hasPrefix("journal-") })
        try wm.put("ns", "k", 1)
        wm.close()
    }

    @Test("close and reopen: identical state (values, versions, provenance, claims and tokens, results, task histories, inbox acks)")
    func reopenIdentical() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let time = ManualTime()
        let wm = try Self.open(dir, time)
        try Self.populate(wm, time)
        let before = Self.dump(wm)
        #expect(Set(before.map { String($0.prefix(while: { $0 != " " })) }) == ["key", "claim", "result", "task", "inbox"])
        let rev = wm.revision
        let claims = wm.claims(ns: "app")
        let t1 = wm.task(ns: "app", task: "t1")
        let inbox = wm.inbox(ns: "app", for: bob, unackedOnly: false, limit: 100)
        wm.close()

        let again = try Self.open(dir, time)
        defer { again.close() }
        #expect(Self.dump(again) == before)
        #expect(again.revision >= rev)
        #expect(again.claims(ns: "app") == claims)
        #expect(again.task(ns: "app", task: "t1") == t1)
        #expect(again.inbox(ns: "app", for: bob, unackedOnly: false, limit: 100) == inbox)
        #expect(again.inbox(ns: "app", for: bob, unackedOnly: true, limit: 100).count == 1)
        #expect(again.task(ns: "app", task: "t2")?.history.last?.provenance.agent == "mnemod")
        // the recovered state works as before: the holder can renew with its token, others are refused,
        // replays replay, new revisions are above the old ones
        let job = try #require(claims.first { $0.resource == "job" })
        _ = try again.renew(ns: "app", resource: "job", token: job.token, ttlMs: 1000, by: alice)
        guard case .held(let holder, _, _) = try again.acquire(ns: "app", resource: "job", ttlMs: 10, by: bob) else {
            Issue.record("the recovered claim is not held")
            return
        }
        #expect(holder == "a")
        #expect(try again.putResult(ns: "app", task: "t1", idempotencyKey: "r1", value: ["out": .number("1.5")], by: alice).stored == false)
        let w = try again.put("app", "new", 1)
        #expect(w.version > rev)
    }

    @Test("the revision never goes down across restarts, even when the last changes left nothing behind",
          arguments: [false, true])
    func revisionAcrossRestarts(explicitSnapshot: Bool) throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let time = ManualTime()
        var wm = try Self.open(dir, time)
        try wm.put("ns", "keep", 1)
        let (token, _) = try wm.grant("ns", "r", ttl: 1000)
        #expect(try wm.release(ns: "ns", resource: "r", token: token, by: alice))
        let tmp = try wm.put("ns", "tmp", 1)
        _ = try wm.delete(ns: "ns", key: "tmp", by: alice)
        let rev = wm.revision
        if explicitSnapshot { wm.snapshot() }
        wm.close()
        // restarts with nothing written in between (each one replays and compacts into a snapshot)
        var revisions: [Int64] = []
        for _ in 0..<2 {
            wm = try Self.open(dir, time)
            revisions.append(wm.revision)
            wm.close()
        }
        wm = try Self.open(dir, time)
        defer { wm.close() }
        let (next, _) = try wm.grant("ns", "r", ttl: 1000)
        let recreated = try wm.put("ns", "tmp", 2)
        do {
            #expect(revisions.allSatisfy { $0 >= rev }, "revisions after restarts: \(revisions), before: \(rev)")
            #expect(next > rev, "fencing token \(next) reissued (last token \(token), revision \(rev))")
            #expect(recreated.version > tmp.version + 1, "version \(recreated.version) not above the delete's revision")
        }
    }

    @Test("expired items stay expired after a restart: keys, claims (with their leased keys and tasks), results, inbox entries")
    func expiredStayExpired() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let time = ManualTime()
        let wm = try Self.open(dir, time, resultRetentionMs: 500, inboxRetentionMs: 500)
        try wm.put("ns", "short", 1, ttl: 100)
        try wm.put("ns", "long", 1, ttl: 10_000)
        try wm.put("ns", "forever", 1)
        try wm.walk("ns", "t", [.pending, .claimed, .running])
        let (token, _) = try wm.grant("ns", "t", ttl: 200)
        try wm.putLeased("ns", "leased", 1, resource: "t", token: token)
        _ = try wm.putResult(ns: "ns", task: "t", idempotencyKey: "k", value: 1, by: alice)
        _ = try wm.post(ns: "ns", to: "b", type: "m", content: 1, by: alice)
        wm.close()
        time.advance(ms: 600)  // the daemon was down while everything but "long" and "forever" expired

        let again = try Self.open(dir, time, resultRetentionMs: 500, inboxRetentionMs: 500)
        defer { again.close() }
        // the sweep alone finds them all: the key, the claim (its leased key goes with it), the result, the entry
        #expect(again.sweepExpired(max: 100) == (removed: 4, more: false))
        #expect(again.stats.keys == 2)
        #expect(again.get(ns: "ns", key: "short") == nil)
        #expect(again.get(ns: "ns", key: "leased") == nil)
        #expect(again.allKeys("ns") == ["forever", "long"])
        #expect(again.claims(ns: "ns") == [])
        #expect(again.task(ns: "ns", task: "t")?.state == .pending)
        #expect(again.task(ns: "ns", task: "t")?.history.last?.provenance.agent == "mnemod")
        #expect(again.inbox(ns: "ns", for: bob, unackedOnly: false, limit: 10) == [])
        let (stored, _) = try again.putResult(ns: "ns", task: "t", idempotencyKey: "k", value: 2, by: alice)
        #expect(stored)
        let (t2, _) = try again.grant("ns", "t", ttl: 100, by: bob)
        #expect(t2 > token)
        time.advance(ms: 10_000)
        #expect(again.get(ns: "ns", key: "long") == nil)
        #expect(again.allKeys("ns") == ["forever"])
    }

    @Test("a long task history (bounded to its last 256 steps) is the same after restarts, and so is its dropped count")
    func longHistoryAcrossRestarts() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let time = ManualTime()
        var wm = try Self.open(dir, time)
        try wm.walk("ns", "t", [.pending])
        for _ in 0..<150 {
            time.advance(ms: 1)
            try wm.walk("ns", "t", [.claimed, .pending])
        }
        let rec = try #require(wm.task(ns: "ns", task: "t"))
        #expect(rec.history.count == 256)
        wm.close()
        wm = try Self.open(dir, time)  // from the log
        #expect(wm.task(ns: "ns", task: "t") == rec)
        wm.close()
        wm = try Self.open(dir, time)  // from the snapshot the previous start wrote
        defer { wm.close() }
        let reloaded = try #require(wm.task(ns: "ns", task: "t"))
        #expect(reloaded.history == rec.history)
        #expect(reloaded.state == rec.state)
    }

    @Test("a claim still live at the restart stays held for exactly its remaining time")
    func liveClaimKeepsItsDeadline() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let time = ManualTime()
        let wm = try Self.open(dir, time)
        let (token, expiresAt) = try wm.grant("ns", "r", ttl: 1000)
        wm.close()
        time.advance(ms: 400)
        let again = try Self.open(dir, time)
        defer { again.close() }
        time.advance(ms: 599)
        #expect(again.claimList("ns") == [ListedClaim(resource: "r", holder: "a", token: token, expiresAt: expiresAt)])
        time.advance(ms: 1)
        #expect(again.claims(ns: "ns") == [])
    }

    @Test("a torn last record (its second half never written: zeros) is ignored and everything before it is recovered")
    func tornTailTruncated() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let time = ManualTime()
        let wm = try Self.open(dir, time)
        for i in 0..<5 { try wm.put("ns", "k\(i)", .int(i)) }
        let expected = Self.dump(wm).filter { !$0.hasPrefix("key ns k4 ") }
        wm.close()
        let log = try dir.newestLog()
        let records = try frames(log)
        #expect(records.count == 6)  // a revision high-water mark, then the five keys
        let last = try #require(records.last)
        try overwrite(log, at: last.offset + 8 + last.length / 2, with: [UInt8](repeating: 0, count: last.length - last.length / 2))

        let again = try Self.open(dir, time)
        #expect(Self.dump(again) == expected)
        // Normal mode resumes above the durable high-water mark: revision 5 (lost with the
        // torn record) and everything below the mark are never issued again.
        #expect(again.revision >= WorkingMemory.revisionBlock)
        #expect(again.get(ns: "ns", key: "k4") == nil)
        // the store goes on from there, and the recovered state survives the next restart too
        try again.put("ns", "k5", 5)
        again.close()
        let third = try Self.open(dir, time)
        defer { third.close() }
        #expect(third.allKeys("ns") == ["k0", "k1", "k2", "k3", "k5"])
    }

    @Test("garbage after the last record (a header cut short, or bytes that fail the checksum) is ignored",
          arguments: [[0xAB, 0xCD, 0xEF], [0x20, 0, 0, 0, 1, 2, 3, 4] + Array(repeating: 0x41, count: 0x20),
                      [0xFF, 0xFF, 0xFF, 0x7F, 9, 9, 9, 9, 1]] as [[UInt8]])
    func tornTailGarbage(garbage: [UInt8]) throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let time = ManualTime()
        let wm = try Self.open(dir, time)
        for i in 0..<3 { try wm.put("ns", "k\(i)", .int(i)) }
        _ = try wm.grant("ns", "r", ttl: 10_000)
        let expected = Self.dump(wm)
        wm.close()
        let log = try dir.newestLog()
        let last = try #require(try frames(log).last)
        try overwrite(log, at: last.offset + 8 + last.length, with: garbage)

        let again = try Self.open(dir, time)
        defer { again.close() }
        #expect(Self.dump(again) == expected)
        #expect(again.revision >= WorkingMemory.revisionBlock)
    }

    @Test("a record with a valid checksum that is not JSON, or not a known record, makes open throw StorageError",
          arguments: ["{not json", "\u{0}\u{1}binary", #"{"t":"put","ns":"a"}"#, #"{"t":"martian"}"#, "[]"])
    func damagedRecordThrows(payload: String) throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let time = ManualTime()
        let wm = try Self.open(dir, time)
        try wm.put("ns", "k", 1)
        wm.close()
        let log = try dir.newestLog()
        let last = try #require(try frames(log).last)
        try overwrite(log, at: last.offset + 8 + last.length, with: frame(Array(payload.utf8)))
        #expect(throws: StorageError.self) { try Self.open(dir, time) }
    }

    @Test("snapshot, more writes, reopen: same state; the snapshot replaced the older journal files")
    func snapshotThenWrites() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let time = ManualTime()
        let wm = try Self.open(dir, time)
        try Self.populate(wm, time)
        let logsBefore = dir.files().filter { $0.hasPrefix("journal-") }
        wm.snapshot()
        let files = dir.files()
        let snapshots = files.filter { $0.hasPrefix("snapshot-") && $0.hasSuffix(".mnemo") }
        let logs = files.filter { $0.hasPrefix("journal-") && $0.hasSuffix(".log") }
        #expect(snapshots.count == 1)
        #expect(logs.count == 1)
        #expect(!logsBefore.contains(logs[0]))  // the old log is gone, writes go to a new one
        #expect(files.allSatisfy { !$0.hasSuffix(".tmp") })
        // more writes after the snapshot, including ones that undo snapshotted state
        try wm.put("app", "after", 1)
        _ = try wm.delete(ns: "app", key: "tx1", by: alice)
        let job = try #require(wm.claims(ns: "app").first { $0.resource == "job" })
        #expect(try wm.release(ns: "app", resource: "job", token: job.token, by: alice))
        _ = try wm.transition(ns: "app", task: "job", to: .running, from: .claimed, fence: nil, by: alice)
        _ = try wm.post(ns: "app", to: "b", type: "late", content: 1, by: alice)
        try wm.put("app", "last", 1)
        let before = Self.dump(wm)
        let rev = wm.revision
        wm.close()

        let again = try Self.open(dir, time)
        defer { again.close() }
        #expect(Self.dump(again) == before)
        #expect(again.revision >= rev)
        #expect(again.get(ns: "app", key: "job-state") == nil)
        // the restart compacted again: one snapshot, one log, both newer
        let after = dir.files()
        #expect(after.filter { $0.hasPrefix("snapshot-") }.count == 1)
        #expect(after.filter { $0.hasPrefix("journal-") }.count == 1)
        #expect(!after.contains(snapshots[0]))
        #expect(!after.contains(logs[0]))
    }
}

extension TempDir {
    /// A directory path under `parent` that does not exist yet.
    init(pathUnder parent: TempDir, _ relative: String) { path = parent.path + "/" + relative }
}
