import MnemoProtocol

extension WorkingMemory {
    /// Stores a task's result once per `(ns, idempotencyKey)`: the first write wins, a
    /// replay with the same value returns the stored result (`stored` false), another
    /// value is refused. Results are kept for the configured retention.
    /// - Throws: `IDEMPOTENCY_MISMATCH` (with the key and the stored task).
    /// - Complexity: O(1), plus a value comparison on replays.
    public func putResult(ns: String, task: String, idempotencyKey: String, value: JSON,
                          by caller: Caller) throws(WireError) -> (stored: Bool, result: StoredResult) {
        try Validate.identifier(task, field: "task")
        try Validate.identifier(idempotencyKey, field: "idempotency_key")
        let bytes = value.bytes
        try checkValue(bytes)
        let now = time.nowMs()
        return try write { s throws(WireError) in
            let ck = ClaimKey(ns: ns, resource: idempotencyKey)
            if let existing = s.results[ck], existing.expiresAt > now {
                let same = existing.task == task
                    && (existing.value == bytes || ((try? JSONParser.parse(existing.value))?.semanticallyEquals(value) ?? false))
                guard same else {
                    throw .app(.idempotencyMismatch, "idempotency key \(idempotencyKey) already holds another result",
                               [JSONMember("idempotency_key", .string(idempotencyKey)),
                                JSONMember("task", .string(existing.task))])
                }
                return (false, existing)
            }
            try reserve(&s, adding: 240 + bytes.count + task.utf8.count, freeing: 0, by: caller.principal)
            let rev = s.rev + 1
            let r = StoredResult(task: task, value: bytes,
                                 provenance: Provenance(caller: caller, at: now, rev: rev, task: task),
                                 expiresAt: now + resultRetentionMs)
            try commit(&s, .result(ns: ns, key: idempotencyKey, r))
            return (true, r)
        }
    }
}
