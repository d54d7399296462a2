import MnemoProtocol

/// A claimable resource: `(ns, resource)`. A task's claim uses the task id as resource.
struct ClaimKey: Hashable, Sendable {
    var ns: String
    var resource: String
}

/// A live claim: one owner, a fencing token and a lease.
public struct Claim: Sendable, Equatable {
    /// Agent holding the claim.
    public var holder: String
    /// Principal of the holder.
    public var principal: String
    /// Fencing token: the global revision at which the claim was granted, so tokens grow
    /// strictly per resource, across releases and restarts.
    public var token: Int64
    /// Wall-clock expiry (ms), for display and persistence.
    public var expiresAt: Int64
    /// Monotonic expiry (ns), what expiry is decided on while running.
    var expiresMono: UInt64
    /// Keys of the claim's namespace written with `lease`, deleted when the claim ends.
    var leasedKeys: Set<String> = []
    /// What a leader campaigned with (compact JSON), for `leader.get`; nil for a plain claim.
    public var value: [UInt8]? = nil
    /// When it was granted (wall ms; 0 when not recorded).
    public var since: Int64 = 0
}

/// The lifecycle of a task (contract, section "coordination").
public enum TaskState: String, Sendable, CaseIterable {
    case pending, claimed, running, succeeded, failed, cancelled

    /// The contract's whole transition table; anything else is `INVALID_TRANSITION`.
    public func canMove(to next: TaskState) -> Bool {
        switch (self, next) {
        case (.pending, .claimed), (.pending, .cancelled): return true
        case (.claimed, .running), (.claimed, .pending), (.claimed, .cancelled): return true
        case (.running, .succeeded), (.running, .failed), (.running, .pending), (.running, .cancelled): return true
        case (.failed, .pending): return true
        default: return false
        }
    }
}

/// One step of a task's history.
public struct TaskStep: Sendable, Equatable {
    /// State before (nil for creation).
    public var from: TaskState?
    /// State after.
    public var to: TaskState
    /// Who moved it, when, at which revision.
    public var provenance: Provenance
}

/// A task: its state and the steps that led there (the most recent `maxHistory`).
public struct TaskRecord: Sendable, Equatable {
    /// Current state.
    public var state: TaskState
    /// Revision of the last transition.
    public var rev: Int64
    /// Steps, oldest first (the most recent 256).
    public var history: [TaskStep]

    static let maxHistory = 256

    mutating func append(_ step: TaskStep) {
        history.append(step)
        if history.count > TaskRecord.maxHistory {
            history.removeFirst(history.count - TaskRecord.maxHistory)
        }
        state = step.to
        rev = step.provenance.rev
    }
}

/// A stored idempotent result.
public struct StoredResult: Sendable, Equatable {
    /// The task it answers.
    public var task: String
    /// Compact JSON of the value.
    public var value: [UInt8]
    /// Who stored it first.
    public var provenance: Provenance
    /// When it is forgotten (ms; retention).
    public var expiresAt: Int64
}

/// One inbox entry.
public struct InboxEntry: Sendable, Equatable {
    /// Unique id (the revision of the post, as a string).
    public var id: String
    /// Sender agent.
    public var from: String
    /// Addressee: an agent name or a role.
    public var to: String
    /// Free-form type, e.g. `handoff`.
    public var type: String
    /// Compact JSON content.
    public var content: [UInt8]
    /// Sender's provenance.
    public var provenance: Provenance
    /// Whether the addressee acknowledged it.
    public var acked: Bool
    /// When it is dropped (ms).
    public var expiresAt: Int64
}
