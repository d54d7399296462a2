import MnemoCore
import MnemoProtocol
import Testing

@Suite("WorkingMemory: claims, leases and fencing")
struct WorkingMemoryClaimTests {
    @Test("acquire on a free resource grants a token (the revision it took) and a wall-clock expiry")
    func grant() throws {
        let (wm, time) = makeStore()
        try wm.put("ns", "k", 1)
        let revBefore = wm.revision
        let outcome = try wm.acquire(ns: "ns", resource: "r", ttlMs: 1000, by: alice)
        #expect(outcome == .granted(token: revBefore + 1, expiresAt: time.nowMs() + 1000))
        #expect(wm.revision == revBefore + 1)
        #expect(wm.claimList("ns") == [ListedClaim(resource: "r", holder: "a", token: revBefore + 1, expiresAt: time.nowMs() + 1000)])
    }

    @Test("while held, any second acquire (another agent or the holder itself) gets .held with holder and expiry")
    func heldForEveryone() throws {
        let (wm, time) = makeStore()
        let start = time.nowMs()
        let startMono = time.monotonicNs()
        let (token, _) = try wm.grant("ns", "r", ttl: 1000)
        time.advance(ms: 400)
        let revBefore = wm.revision
        let expected = WorkingMemory.AcquireOutcome.held(holder: "a", expiresAt: start + 1000,
                                                         retryAtNs: startMono + 1_000_000_000)
        for caller in [bob, alice, carol] {
            #expect(try wm.acquire(ns: "ns", resource: "r", ttlMs: 5000, by: caller) == expected)
        }
        // refusals change nothing: same token, same expiry, no revision taken
        #expect(wm.revision == revBefore)
        #expect(wm.claims(ns: "ns").map(\.token) == [token])
        #expect(wm.claims(ns: "ns").map(\.expiresAt) == [start + 1000])
    }

    @Test("a claim is held until just before its ttl; at the ttl it is free and the new token is strictly greater")
    func expiryFreesWithGreaterToken() throws {
        let (wm, time) = makeStore()
        let (first, _) = try wm.grant("ns", "r", ttl: 100)
        time.advance(ms: 99)
        guard case .held = try wm.acquire(ns: "ns", resource: "r", ttlMs: 100, by: bob) else {
            Issue.record("expected the claim to be held 1 ms before its expiry")
            return
        }
        time.advance(ms: 1)
        let (second, _) = try wm.grant("ns", "r", ttl: 100, by: bob)
        #expect(second > first)
        #expect(wm.claimList("ns") == [ListedClaim(resource: "r", holder: "b", token: second, expiresAt: time.nowMs() + 100)])
        // and so on: every new grant of the resource is above every earlier one
        var last = second
        for i in 0..<5 {
            time.advance(ms: 100)
            let (t, _) = try wm.grant("ns", "r", ttl: 100, by: i % 2 == 0 ? alice : bob)
            #expect(t > last)
            last = t
        }
    }

    @Test("tokens grow strictly across release and re-acquire, even with no other writes in between")
    func releaseReacquire() throws {
        let (wm, _) = makeStore()
        var last: Int64 = 0
        for _ in 0..<10 {
            let (t, _) = try wm.grant("ns", "r", ttl: 1000)
            #expect(t > last)
            #expect(try wm.release(ns: "ns", resource: "r", token: t, by: alice))
            last = t
        }
    }

    @Test("renew with the live token extends the claim: held just before the new expiry, free at it; token kept")
    func renewExtends() throws {
        let (wm, time) = makeStore()
        let (token, _) = try wm.grant("ns", "r", ttl: 100)
        time.advance(ms: 60)
        let revBefore = wm.revision
        let newExpiry = try wm.renew(ns: "ns", resource: "r", token: token, ttlMs: 100, by: alice)
        #expect(newExpiry == time.nowMs() + 100)
        #expect(wm.revision == revBefore + 1)  // a renewal is a change of its own
        #expect(wm.claimList("ns") == [ListedClaim(resource: "r", holder: "a", token: token, expiresAt: newExpiry)])
        time.advance(ms: 99)  // 159 ms after the grant: past the original expiry, before the new one
        #expect(wm.sweepExpired(max: 100).removed == 0)
        guard case .held(let holder, let expiresAt, _) = try wm.acquire(ns: "ns", resource: "r", ttlMs: 100, by: bob) else {
            Issue.record("expected the renewed claim to be held 1 ms before its new expiry")
            return
        }
        #expect(holder == "a")
        #expect(expiresAt == newExpiry)
        // still renewable with the same token
        #expect(try wm.renew(ns: "ns", resource: "r", token: token, ttlMs: 10, by: alice) == time.nowMs() + 10)
        time.advance(ms: 10)
        let (next, _) = try wm.grant("ns", "r", ttl: 100, by: bob)
        #expect(next > token)
    }

    @Test("renew can also shorten a claim")
    func renewShortens() throws {
        let (wm, time) = makeStore()
        let (token, _) = try wm.grant("ns", "r", ttl: 10_000)
        _ = try wm.renew(ns: "ns", resource: "r", token: token, ttlMs: 5, by: alice)
        time.advance(ms: 5)
        #expect(try !wm.isHeld("ns", "r"))
    }

    @Test("renew with a stale token is FENCED: token is the live one (or null when free), given_token the caller's")
    func renewStale() throws {
        let (wm, time) = makeStore()
        let (old, _) = try wm.grant("ns", "r", ttl: 100)
        time.advance(ms: 100)
        // expired, nobody holds it: token null
        let e1 = try #require(wireError { () throws(WireError) in
            try wm.renew(ns: "ns", resource: "r", token: old, ttlMs: 100, by: alice)
        })
        #expect(e1.appCode == .fenced)
        #expect(e1.detail("token") == .null)
        #expect(e1.detail("given_token") == .int(old))
        #expect(e1.detail("resource") == "r")
        #expect(try !wm.isHeld("ns", "r"))  // the failed renewal did not revive it

        // someone else holds it now: token is theirs
        let (live, _) = try wm.grant("ns", "r", ttl: 1000, by: bob)
        let revBefore = wm.revision
        let e2 = try #require(wireError { () throws(WireError) in
            try wm.renew(ns: "ns", resource: "r", token: old, ttlMs: 100, by: alice)
        })
        #expect(e2.appCode == .fenced)
        #expect(e2.detail("token") == .int(live))
        #expect(e2.detail("given_token") == .int(old))
        #expect(wm.revision == revBefore)
        #expect(wm.claimList("ns") == [ListedClaim(resource: "r", holder: "b", token: live, expiresAt: time.nowMs() + 1000)])

        // a token that was never issued, and a resource never claimed
        let e3 = try #require(wireError { () throws(WireError) in
            try wm.renew(ns: "ns", resource: "r", token: live + 1, ttlMs: 100, by: bob)
        })
        #expect(e3.detail("token") == .int(live))
        let e4 = try #require(wireError { () throws(WireError) in
            try wm.renew(ns: "ns", resource: "never", token: 1, ttlMs: 100, by: bob)
        })
        #expect(e4.appCode == .fenced)
        #expect(e4.detail("token") == .null)
    }

    @Test("release with a stale or unknown token returns false and changes nothing")
    func releaseStale() throws {
        let (wm, time) = makeStore()
        let (old, _) = try wm.grant("ns", "r", ttl: 100)
        #expect(try wm.release(ns: "ns", resource: "r", token: old, by: alice))
        #expect(try !wm.release(ns: "ns", resource: "r", token: old, by: alice))  // twice
        let (live, _) = try wm.grant("ns", "r", ttl: 1000, by: bob)
        let revBefore = wm.revision
        #expect(try !wm.release(ns: "ns", resource: "r", token: old, by: alice))
        #expect(try !wm.release(ns: "ns", resource: "r", token: live + 1, by: bob))
        #expect(try !wm.release(ns: "ns", resource: "free", token: live, by: bob))
        #expect(wm.revision == revBefore)
        #expect(wm.claims(ns: "ns").map(\.token) == [live])
        // an expired claim cannot be released either
        time.advance(ms: 1000)
        #expect(try !wm.release(ns: "ns", resource: "r", token: live, by: bob))
        #expect(wm.claims(ns: "ns") == [])
    }

    @Test("release deletes exactly the keys written with that claim's lease")
    func releaseDeletesLeasedKeys() throws {
        let (wm, _) = makeStore()
        let (t, _) = try wm.grant("ns", "r", ttl: 10_000)
        let (t2, _) = try wm.grant("ns", "r2", ttl: 10_000)
        try wm.putLeased("ns", "leased1", 1, resource: "r", token: t)
        try wm.putLeased("ns", "leased2", 2, resource: "r", token: t)
        try wm.putLeased("ns", "other-claim", 3, resource: "r2", token: t2)
        try wm.put("ns", "plain", 4)
        // leased, then rewritten without a lease: no longer the claim's
        try wm.putLeased("ns", "rewritten", 5, resource: "r", token: t)
        try wm.put("ns", "rewritten", 6)
        // leased, then moved to the other claim
        try wm.putLeased("ns", "moved", 7, resource: "r", token: t)
        try wm.putLeased("ns", "moved", 8, resource: "r2", token: t2)
        // leased, deleted, recreated plainly
        try wm.putLeased("ns", "recreated", 9, resource: "r", token: t)
        _ = try wm.delete(ns: "ns", key: "recreated", by: alice)
        try wm.put("ns", "recreated", 10)
        // leased, then its TTL changed: still the claim's
        try wm.putLeased("ns", "retimed", 11, resource: "r", token: t)
        _ = try wm.expire(ns: "ns", key: "retimed", ttlMs: 60_000, by: alice)
        #expect(wm.get(ns: "ns", key: "leased1")?.lease == Lease(resource: "r", token: t))

        let keysBefore = wm.stats.keys
        #expect(try wm.release(ns: "ns", resource: "r", token: t, by: alice))
        #expect(wm.allKeys("ns") == ["moved", "other-claim", "plain", "recreated", "rewritten"])
        for gone in ["leased1", "leased2", "retimed"] { #expect(wm.get(ns: "ns", key: gone) == nil) }
        #expect(wm.stats.keys == keysBefore - 3)
        #expect(try wm.value("ns", "moved") == 8)
        #expect(try wm.value("ns", "rewritten") == 6)

        // a new claim of the same resource does not bring them back, and its own leased keys are its own
        let (t3, _) = try wm.grant("ns", "r", ttl: 10_000)
        try wm.putLeased("ns", "leased3", 12, resource: "r", token: t3)
        #expect(try wm.release(ns: "ns", resource: "r2", token: t2, by: alice))
        #expect(wm.allKeys("ns") == ["leased3", "plain", "recreated", "rewritten"])
    }

    @Test("a claim's expiry found by the sweep takes its leased keys with it")
    func expiryBySweepDeletesLeasedKeys() throws {
        let (wm, time) = makeStore()
        let (t, _) = try wm.grant("ns", "r", ttl: 100)
        try wm.putLeased("ns", "a", 1, resource: "r", token: t)
        try wm.putLeased("ns", "b", 1, resource: "r", token: t)
        try wm.put("ns", "keep", 1)
        time.advance(ms: 100)
        #expect(wm.sweepExpired(max: 100).removed == 1)  // the claim; its keys go with it
        #expect(wm.stats.keys == 1)
        #expect(wm.stats.claims == 0)
        #expect(wm.allKeys("ns") == ["keep"])
    }

    @Test("a leased key is gone as soon as its claim has expired, before any sweep (reading it ends the claim)")
    func expiryOnReadDeletesLeasedKeys() throws {
        let (wm, time) = makeStore()
        let (t, _) = try wm.grant("ns", "r", ttl: 100)
        try wm.putLeased("ns", "a", 1, resource: "r", token: t)
        try wm.putLeased("ns", "b", 1, resource: "r", token: t)
        try wm.put("ns", "keep", 1)
        time.advance(ms: 99)
        #expect(try wm.value("ns", "a") == 1)
        time.advance(ms: 1)
        #expect(wm.allKeys("ns") == ["keep"])  // a listing hides them
        #expect(wm.get(ns: "ns", key: "a") == nil)
        #expect(wm.stats.keys == 1)  // the read ended the claim, and with it both keys
        #expect(wm.stats.claims == 0)
        #expect(wm.sweepExpired(max: 100).removed == 0)  // nothing left for the sweep
        #expect(wm.allKeys("ns") == ["keep"])
    }

    @Test("a lease needs the live token of a claim of the write's own namespace, else FENCED and nothing is written")
    func leaseNeedsLiveClaim() throws {
        let (wm, _) = makeStore()
        let (t, _) = try wm.grant("ns", "r", ttl: 1000)
        let revBefore = wm.revision
        for (ns, resource, token) in [("ns", "r", t + 1), ("ns", "unclaimed", t), ("other", "r", t), ("ns/sub", "r", t)] {
            let e = try #require(wireError { () throws(WireError) in try wm.putLeased(ns, "k", 1, resource: resource, token: token) })
            #expect(e.appCode == .fenced)
            #expect(e.detail("given_token") == .int(token))
            #expect(wm.get(ns: ns, key: "k") == nil)
        }
        #expect(wm.revision == revBefore)
    }

    @Test("set with a fence is applied only for the live token; otherwise FENCED, nothing applied, revision unchanged")
    func fencedSet() throws {
        let (wm, time) = makeStore()
        let (t1, _) = try wm.grant("ns", "r", ttl: 100)
        let ok = try wm.set(.init(ns: "ns", key: "k", value: JSON.int(1).bytes, fence: Lease(resource: "r", token: t1)), by: alice)
        #expect(try wm.value("ns", "k") == 1)
        #expect(wm.get(ns: "ns", key: "k")?.lease == nil)  // a fence is not a lease
        time.advance(ms: 100)
        let (t2, _) = try wm.grant("ns", "r", ttl: 1000, by: bob)

        let revBefore = wm.revision
        // the previous holder, its claim expired and taken over: fenced off
        let e = try #require(wireError { () throws(WireError) in
            try wm.set(.init(ns: "ns", key: "k", value: JSON.int(2).bytes, fence: Lease(resource: "r", token: t1)), by: alice)
        })
        #expect(e.appCode == .fenced)
        #expect(e.detail("token") == .int(t2))
        #expect(e.detail("given_token") == .int(t1))
        // a token from the future, a resource nobody holds, the same claim named from another namespace
        for (ns, fence) in [("ns", Lease(resource: "r", token: t2 + 1)), ("ns", Lease(resource: "free", token: t2)),
                            ("other", Lease(resource: "r", token: t2))] {
            let e = try #require(wireError { () throws(WireError) in
                try wm.set(.init(ns: ns, key: "k", value: JSON.int(3).bytes, fence: fence), by: bob)
            })
            #expect(e.appCode == .fenced)
        }
        #expect(wm.revision == revBefore)
        #expect(try wm.value("ns", "k") == 1)
        #expect(wm.get(ns: "ns", key: "k")?.version == ok.version)
        #expect(wm.get(ns: "other", key: "k") == nil)

        // the live holder gets through
        let r = try wm.set(.init(ns: "ns", key: "k", value: JSON.int(4).bytes, fence: Lease(resource: "r", token: t2)), by: bob)
        #expect(r.rev == revBefore + 1)
        #expect(try wm.value("ns", "k") == 4)
    }

    @Test("delete with a fence is applied only for the live token; otherwise FENCED and the key stays")
    func fencedDelete() throws {
        let (wm, _) = makeStore()
        let (t1, _) = try wm.grant("ns", "r", ttl: 1000)
        #expect(try wm.release(ns: "ns", resource: "r", token: t1, by: alice))
        let (t2, _) = try wm.grant("ns", "r", ttl: 1000, by: bob)
        let w = try wm.put("ns", "k", 1)
        let revBefore = wm.revision
        for fence in [Lease(resource: "r", token: t1), Lease(resource: "r", token: t2 + 1), Lease(resource: "x", token: t2)] {
            let e = try #require(wireError { () throws(WireError) in
                try wm.delete(ns: "ns", key: "k", fence: fence, by: alice)
            })
            #expect(e.appCode == .fenced)
        }
        // released and not re-taken: null
        let e = try #require(wireError { () throws(WireError) in
            try wm.delete(ns: "ns", key: "k", fence: Lease(resource: "x", token: 1), by: alice)
        })
        #expect(e.detail("token") == .null)
        #expect(wm.revision == revBefore)
        #expect(wm.get(ns: "ns", key: "k")?.version == w.version)
        let rev = try wm.delete(ns: "ns", key: "k", fence: Lease(resource: "r", token: t2), by: bob)
        #expect(rev == revBefore + 1)
        #expect(wm.get(ns: "ns", key: "k") == nil)
    }

    @Test("claims(ns:) lists the live claims of exactly that namespace, by resource")
    func listExactNamespace() throws {
        let (wm, time) = makeStore()
        let (tb, _) = try wm.grant("ns", "b", ttl: 1000, by: bob)
        let (ta, _) = try wm.grant("ns", "a", ttl: 2000)
        _ = try wm.grant("ns", "short", ttl: 10)
        let (tr, _) = try wm.grant("ns", "released", ttl: 1000)
        #expect(try wm.release(ns: "ns", resource: "released", token: tr, by: alice))
        _ = try wm.grant("ns/sub", "a", ttl: 1000)
        _ = try wm.grant("nsx", "a", ttl: 1000)
        _ = try wm.grant("other", "c", ttl: 1000)
        let start = time.nowMs()
        time.advance(ms: 10)
        #expect(wm.claimList("ns") == [ListedClaim(resource: "a", holder: "a", token: ta, expiresAt: start + 2000),
            ListedClaim(resource: "b", holder: "b", token: tb, expiresAt: start + 1000),
        ])
        #expect(wm.claims(ns: "ns/sub").map(\.resource) == ["a"])
        #expect(wm.claims(ns: "nothing") == [])
        time.advance(ms: 990)
        #expect(wm.claims(ns: "ns").map(\.resource) == ["a"])
    }

    @Test("onClaimEnd callbacks run once on release, not on a refused release")
    func onClaimEndRelease() throws {
        let (wm, _) = makeStore()
        let (t, _) = try wm.grant("ns", "r", ttl: 1000)
        let ended = Counter()
        let other = Counter()
        wm.onClaimEnd(ns: "ns", resource: "r") { ended.bump() }
        wm.onClaimEnd(ns: "ns", resource: "r") { ended.bump() }
        wm.onClaimEnd(ns: "ns", resource: "r2") { other.bump() }
        wm.onClaimEnd(ns: "other", resource: "r") { other.bump() }
        #expect(try !wm.release(ns: "ns", resource: "r", token: t + 1, by: alice))
        #expect(ended.value == 0)
        #expect(try wm.release(ns: "ns", resource: "r", token: t, by: alice))
        #expect(ended.value == 2)
        // once: the next claim's end does not call them again
        let (t2, _) = try wm.grant("ns", "r", ttl: 1000)
        #expect(try wm.release(ns: "ns", resource: "r", token: t2, by: alice))
        #expect(ended.value == 2)
        #expect(other.value == 0)
    }

    @Test("onClaimEnd callbacks run when sweepExpired finds the claim expired")
    func onClaimEndSweep() throws {
        let (wm, time) = makeStore()
        _ = try wm.grant("ns", "r", ttl: 100)
        let ended = Counter()
        wm.onClaimEnd(ns: "ns", resource: "r") { ended.bump() }
        time.advance(ms: 99)
        #expect(wm.sweepExpired(max: 100).removed == 0)
        #expect(ended.value == 0)
        time.advance(ms: 1)
        #expect(wm.sweepExpired(max: 100).removed == 1)
        #expect(ended.value == 1)
        #expect(wm.sweepExpired(max: 100).removed == 0)
        #expect(ended.value == 1)
    }

    @Test("a renewed claim is not ended by the sweep at its original expiry")
    func sweepRespectsRenewal() throws {
        let (wm, time) = makeStore()
        let (t, _) = try wm.grant("ns", "r", ttl: 100)
        let ended = Counter()
        wm.onClaimEnd(ns: "ns", resource: "r") { ended.bump() }
        _ = try wm.renew(ns: "ns", resource: "r", token: t, ttlMs: 500, by: alice)
        time.advance(ms: 100)
        #expect(wm.sweepExpired(max: 100).removed == 0)
        #expect(ended.value == 0)
        #expect(wm.claims(ns: "ns").map(\.token) == [t])
        time.advance(ms: 400)
        #expect(wm.sweepExpired(max: 100).removed == 1)
        #expect(ended.value == 1)
    }

    @Test("onClaimEnd callbacks run when the expiry is noticed by acquire rather than by the sweep")
    func onClaimEndAcquire() throws {
        let (wm, time) = makeStore()
        _ = try wm.grant("ns", "r", ttl: 100)
        let ended = Counter()
        wm.onClaimEnd(ns: "ns", resource: "r") { ended.bump() }
        time.advance(ms: 100)
        _ = try wm.grant("ns", "r", ttl: 100, by: bob)
        #expect(ended.value == 1)
    }

    @Test("onClaimEnd callbacks run when the expiry is noticed by a read (claims(ns:)) before the sweep")
    func onClaimEndLazyExpiry() throws {
        let (wm, time) = makeStore()
        _ = try wm.grant("ns", "r", ttl: 100)
        let ended = Counter()
        wm.onClaimEnd(ns: "ns", resource: "r") { ended.bump() }
        time.advance(ms: 100)
        #expect(wm.claims(ns: "ns") == [])  // notices the expiry and ends the claim
        _ = wm.sweepExpired(max: 100)
        do {
            #expect(ended.value == 1)
        }
    }

    @Test("bad ttl_ms (0, negative, above max_ttl) is -32602 for acquire and renew; nothing is granted or changed")
    func badTTL() throws {
        let (wm, _) = makeStore()
        let maxTTL = Limits().maxTTLms
        for ttl in [0, -1, Int64.min, maxTTL + 1, Int64.max] {
            let e = try #require(wireError { () throws(WireError) in try wm.acquire(ns: "ns", resource: "r", ttlMs: ttl, by: alice) })
            #expect(e.code == -32602)
            #expect(e.detail("field") == "ttl_ms")
        }
        #expect(wm.claims(ns: "ns") == [])
        #expect(wm.revision == 0)
        let (t, exp) = try wm.grant("ns", "r", ttl: maxTTL)  // the maximum itself is fine
        for ttl in [0, -5, maxTTL + 1] {
            let e = try #require(wireError { () throws(WireError) in
                try wm.renew(ns: "ns", resource: "r", token: t, ttlMs: ttl, by: alice)
            })
            #expect(e.code == -32602)
            #expect(e.detail("field") == "ttl_ms")
        }
        #expect(wm.claims(ns: "ns").map(\.expiresAt) == [exp])
        #expect(wm.revision == t)
    }

    @Test("an empty or oversized resource is -32602 naming resource, for acquire, renew and release")
    func badResource() throws {
        let (wm, _) = makeStore()
        let max = Limits.maxIdentifierBytes
        for bad in ["", String(repeating: "r", count: max + 1), String(repeating: "é", count: max / 2 + 1)] {
            let e1 = try #require(wireError { () throws(WireError) in try wm.acquire(ns: "ns", resource: bad, ttlMs: 10, by: alice) })
            let e2 = try #require(wireError { () throws(WireError) in
                try wm.renew(ns: "ns", resource: bad, token: 1, ttlMs: 10, by: alice)
            })
            let e3 = try #require(wireError { () throws(WireError) in try wm.release(ns: "ns", resource: bad, token: 1, by: alice) })
            for e in [e1, e2, e3] {
                #expect(e.code == -32602)
                #expect(e.detail("field") == "resource")
            }
        }
        #expect(wm.revision == 0)
        _ = try wm.grant("ns", String(repeating: "r", count: max), ttl: 10)  // exactly the maximum is fine
    }
}
