/// One state change of working memory and coordination, fully determined (revision, time
/// and provenance are stamped before it is made). The same value is applied live, written
/// to the journal, and re-applied on restart, so replay reproduces the state exactly.
enum Change: Sendable {
    /// Create or replace a key (set and txn set; `retimed` for wm.expire).
    case put(ns: String, key: String, item: WorkingItem, retimed: Bool = false)
    /// Delete a key (del, or expiry when `expired`).
    case remove(ns: String, key: String, rev: Int64, expired: Bool)
    /// Drop a namespace.
    case clear(ns: String, rev: Int64)
    /// Changes applied together under one revision (wm.txn).
    case batch(rev: Int64, [Change])
    /// Grant a claim (its token is the revision).
    case claim(ns: String, resource: String, Claim)
    /// Extend a live claim to a new expiry.
    case renew(ns: String, resource: String, token: Int64, expiresAt: Int64, expiresMono: UInt64, rev: Int64)
    /// End a claim (release, or expiry when `expired`): its leased keys go, and on expiry
    /// its task returns to `pending` with a step stamped `at`.
    case unclaim(ns: String, resource: String, rev: Int64, at: Int64, expired: Bool)
    /// Store an idempotent result.
    case result(ns: String, key: String, StoredResult)
    /// Forget a result past its retention.
    case forgetResult(ns: String, key: String, rev: Int64)
    /// A task's new state (the step is appended to its history).
    case task(ns: String, task: String, TaskStep)
    /// Post to an inbox.
    case post(ns: String, InboxEntry)
    /// Acknowledge inbox entries.
    case ack(ns: String, ids: [String], rev: Int64)
    /// Drop an inbox entry past its retention.
    case dropEntry(ns: String, id: String, rev: Int64)
    /// A revision high-water mark, fsynced before any revision up to it is handed out
    /// (normal mode): after a power loss recovery resumes above it, so revisions and
    /// fencing tokens issued in the last unsynced second are never issued again.
    case ceiling(rev: Int64)
    /// A barrier's whole new state after an arrival, an opening or a break (`event`).
    case barrier(ns: String, name: String, Barrier, rev: Int64, event: String)
    /// A proposal's whole new state after it was opened, voted on or decided (`event`).
    case proposal(ns: String, name: String, Proposal, rev: Int64, event: String)

    /// The revision this change takes.
    var rev: Int64 {
        switch self {
        case .put(_, _, let item, _): return item.version
        case .renew(_, _, _, _, _, let rev): return rev
        case .remove(_, _, let rev, _), .clear(_, let rev), .batch(let rev, _), .unclaim(_, _, let rev, _, _),
            .forgetResult(_, _, let rev), .ack(_, _, let rev), .dropEntry(_, _, let rev),
            .barrier(_, _, _, let rev, _), .proposal(_, _, _, let rev, _):
            return rev
        case .claim(_, _, let c): return c.token
        case .ceiling: return 0  // not a revision of its own; recovery reads it
        case .result(_, _, let r): return r.provenance.rev
        case .task(_, _, let step): return step.provenance.rev
        case .post(_, let e): return e.provenance.rev
        }
    }
}
