import MnemoProtocol

extension WorkingMemory {
    /// Moves a task to `to` following the contract's state machine. A task that does not
    /// exist yet can only move to `pending`. A task's claim is the claim on the resource
    /// named like the task in the same namespace; when it expires, a `claimed` or
    /// `running` task returns to `pending`.
    /// - Throws: `INVALID_TRANSITION` (with `from`, `to`), `CONFLICT` when `from` is not
    ///   the current state (with `state`), `FENCED` for a stale fence.
    /// - Complexity: O(1).
    public func transition(ns: String, task: String, to: TaskState, from: TaskState?, fence: Lease?,
                           by caller: Caller) throws(WireError) -> (state: TaskState, rev: Int64) {
        try Validate.identifier(task, field: "task")
        return try write { s throws(WireError) in
            let ck = ClaimKey(ns: ns, resource: task)
            _ = liveClaim(&s, ck)  // an expired claim returns its task to pending first
            if let f = fence { try checkFence(&s, ns: ns, resource: f.resource, token: f.token, orDecision: true) }
            let current = s.tasks[ck]?.state
            if let from, from != current {
                throw .app(.conflict, "task \(task) is \(current?.rawValue ?? "absent"), not \(from.rawValue)",
                           [JSONMember("version", s.tasks[ck].map { .int($0.rev) } ?? .null),
                            JSONMember("state", current.map { .string($0.rawValue) } ?? .null)])
            }
            let allowed = current.map { $0.canMove(to: to) } ?? (to == .pending)
            guard allowed else {
                throw .app(.invalidTransition, "task \(task) cannot go from \(current?.rawValue ?? "new") to \(to.rawValue)",
                           [JSONMember("from", current.map { .string($0.rawValue) } ?? .null),
                            JSONMember("to", .string(to.rawValue))])
            }
            try reserve(&s, adding: current == nil ? Cost.taskRecord + Cost.taskStep : Cost.taskStep, freeing: 0, by: caller.principal)
            let rev = s.rev + 1
            let step = TaskStep(from: current, to: to,
                                provenance: Provenance(caller: caller, at: time.nowMs(), rev: rev, task: task))
            try commit(&s, .task(ns: ns, task: task, step))
            return (to, rev)
        }
    }

    /// A task's state and history, or nil if it was never created.
    public func task(ns: String, task: String) -> TaskRecord? {
        state.withLock { s in
            let ck = ClaimKey(ns: ns, resource: task)
            _ = liveClaim(&s, ck)
            return s.tasks[ck]
        }
    }
}
