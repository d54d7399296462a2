import MnemoProtocol

extension WorkingMemory {
    /// Hands out the next global revision for a write in another tier (episodic,
    /// semantic). That tier stores it durably with its write; at start-up the engine
    /// raises the counter above the highest revision any tier stored
    /// (``raiseRevision(atLeast:)``), so a revision is never issued twice.
    /// - Throws: `UNAVAILABLE` when, in normal mode, the next block of revisions cannot
    ///   be reserved in the journal.
    /// - Complexity: O(1); one fsync per 2^20 revisions in normal mode.
    public func reserveRevision() throws(WireError) -> Int64 {
        // On a cluster node every revision is a row of the feed; the SQLite tiers take theirs
        // inside cluster transactions (``WorkingMemory/write(_:_:)``).
        if cluster != nil { throw .app(.unavailable, "no revision outside the cluster's change feed") }
        return try state.withLock { s throws(WireError) in
            let rev = s.rev + 1
            if let journal, journal.mode == .normal, rev > s.revCeiling { try raiseCeiling(&s, above: rev, journal) }
            s.rev = rev
            return rev
        }
    }

    /// Makes the global revision at least `rev` (start-up, after the other tiers opened).
    public func raiseRevision(atLeast rev: Int64) {
        state.withLock { s in s.rev = max(s.rev, rev) }
    }
}
