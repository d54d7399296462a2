import MnemoProtocol

/// The tools `mnemo mcp` offers an MCP host: each is one or two mnemod calls, named for
/// what an agent wants to do. Arguments are checked against the tool's declared ones (an
/// unknown argument is an error, not silently dropped); values are checked by mnemod.
struct BridgeTool: Sendable {
    /// One declared argument: its JSON Schema type ("" for any JSON value) and a
    /// description for the model.
    struct Argument: Sendable {
        let name: String
        let type: String
        let description: String
        var required = false
    }

    let name: String
    let description: String
    let arguments: [Argument]
    /// Whether the tool only reads (an MCP annotation hosts use to skip confirmations).
    let readOnly: Bool
    /// Runs the tool: `call` sends one request to mnemod; `ns` is the namespace in effect.
    let run: @Sendable (_ args: [JSONMember], _ ns: String, _ call: (String, JSON) throws -> JSON) throws -> JSON
}

/// Every argument but `ns` passes through to `method` unchanged.
private func forward(_ method: String, defaults: [JSONMember] = [])
    -> @Sendable ([JSONMember], String, (String, JSON) throws -> JSON) throws -> JSON
{
    { args, ns, call in
        var params = [JSONMember("ns", .string(ns))] + args
        for d in defaults where !params.contains(where: { $0.key == d.key }) { params.append(d) }
        return try call(method, .object(params))
    }
}

private let namespace = BridgeTool.Argument(
    name: "ns", type: "string",
    description: "Namespace, e.g. wf/42 (default: the bridge's --ns)")

extension BridgeTool {
    static let all: [BridgeTool] = [
        BridgeTool(
            name: "remember_episode",
            description: "Record something that happened (an observation, a decision, a tool result) in episodic memory.",
            arguments: [
                .init(name: "content", type: "string", description: "What happened, as text", required: true),
                .init(name: "kind", type: "string", description: "Record kind, e.g. observation or decision (default observation)"),
                .init(name: "tags", type: "array", description: "Tags to filter by later"),
                .init(name: "task", type: "string", description: "Task id this belongs to"),
                .init(name: "data", type: "object", description: "Structured details"),
                .init(name: "idempotency_key", type: "string", description: "Makes a retried call record once"),
                .init(name: "embed", type: "boolean", description: "Also embed it, so recall by meaning (mode vector or hybrid) finds it"),
                namespace,
            ],
            readOnly: false,
            run: forward("ep.append", defaults: [JSONMember("kind", "observation")])),
        BridgeTool(
            name: "recall_episodes",
            description: "Recall past episodes related to a situation (by meaning and keywords, best matches first, namespace and everything under it), or list the latest records when no text is given.",
            arguments: [
                .init(name: "text", type: "string", description: "The situation or keywords to recall; omit for the latest records"),
                .init(name: "limit", type: "integer", description: "Most records to return (default 20)"),
                .init(name: "mode", type: "string", description: "With text: keyword (any of the words), vector (by meaning, embedded records only) or hybrid (both)"),
                namespace,
            ],
            readOnly: true,
            run: { args, ns, call in
                if args.contains(where: { $0.key == "text" }) {
                    return try forward("ep.search")(args, ns, call)
                }
                // Without text there is nothing to rank: the latest records, whatever the mode.
                return try forward("ep.query", defaults: [JSONMember("order", "desc")])(args.filter { $0.key != "mode" }, ns, call)
            }),
        BridgeTool(
            name: "remember_fact",
            description: "Store a fact or preference in semantic memory (embedded by the server); with dedupe \"report\" near-duplicates are reported, with \"merge\" the nearest is updated.",
            arguments: [
                .init(name: "text", type: "string", description: "The fact, as a sentence", required: true),
                .init(name: "id", type: "string", description: "Stable id: storing again under it replaces the fact"),
                .init(name: "tags", type: "array", description: "Tags to filter by"),
                .init(name: "supersedes", type: "string", description: "Id of a fact this one replaces (marked superseded)"),
                .init(name: "confidence", type: "number", description: "0 to 1"),
                .init(name: "ttl_ms", type: "integer", description: "Forget after this many milliseconds"),
                .init(name: "data", type: "object", description: "Structured details"),
                .init(name: "dedupe", type: "string", description: "none (default), report (list near-duplicates) or merge (update the nearest)"),
                .init(name: "on_conflict", type: "string", description: "A near-duplicate that says something else: supersede it, keep_both, or reject this fact"),
                .init(name: "valid_from", type: "string", description: "When the fact began to hold, e.g. 2026-12-01T00:00:00.000Z (default: now)"),
                .init(name: "valid_to", type: "string", description: "When it stops holding (default: open)"),
                namespace,
            ],
            readOnly: false,
            run: forward("sem.upsert")),
        BridgeTool(
            name: "recall_facts",
            description: "Find the facts most relevant to a text, by meaning and keywords (exact search), best first.",
            arguments: [
                .init(name: "text", type: "string", description: "What to recall", required: true),
                .init(name: "mode", type: "string", description: "hybrid (meaning + keywords), vector (meaning) or keyword (default: the server's)"),
                .init(name: "k", type: "integer", description: "How many facts (default 10)"),
                .init(name: "filter", type: "object", description: "e.g. {\"tags\": [\"prefs\"]}"),
                .init(name: "min_score", type: "number", description: "Leave out weaker matches"),
                .init(name: "as_of", type: "string", description: "What was believed true at this time, e.g. 2026-11-01T00:00:00.000Z"),
                namespace,
            ],
            readOnly: true,
            run: forward("sem.search", defaults: [JSONMember("k", 10)])),
        BridgeTool(
            name: "scratchpad_read",
            description: "Read a key of the shared scratchpad (working memory) with its version, or list keys by prefix when no key is given.",
            arguments: [
                .init(name: "key", type: "string", description: "The key to read"),
                .init(name: "prefix", type: "string", description: "List keys starting with this (when no key is given)"),
                .init(name: "limit", type: "integer", description: "Most keys to list"),
                namespace,
            ],
            readOnly: true,
            run: { args, ns, call in
                if args.contains(where: { $0.key == "key" }) {
                    guard args.count == 1 else {
                        throw WireError.invalidParams("key", "give either key, or prefix and limit")
                    }
                    return try forward("wm.get")(args, ns, call)
                }
                return try forward("wm.list")(args, ns, call)
            }),
        BridgeTool(
            name: "scratchpad_write",
            description: "Write a key of the shared scratchpad. With if_version the write happens only if nobody changed the key since you read it (compare-and-set).",
            arguments: [
                .init(name: "key", type: "string", description: "The key", required: true),
                .init(name: "value", type: "", description: "Any JSON value", required: true),
                .init(name: "if_version", type: "integer", description: "Write only if the key is at this version (0: only if absent)"),
                .init(name: "ttl_ms", type: "integer", description: "Expire after this many milliseconds"),
                namespace,
            ],
            readOnly: false,
            run: forward("wm.set")),
        BridgeTool(
            name: "claim_task",
            description: "Claim a task so that no other agent works on it; returns a fencing token. The claim ends after ttl_ms unless renewed or released.",
            arguments: [
                .init(name: "resource", type: "string", description: "The task or resource to claim", required: true),
                .init(name: "ttl_ms", type: "integer", description: "Lease length (default 60000)"),
                .init(name: "wait_ms", type: "integer", description: "Wait this long for a busy claim (default 0: answer at once)"),
                namespace,
            ],
            readOnly: false,
            run: forward("claim.acquire", defaults: [JSONMember("ttl_ms", 60_000)])),
        BridgeTool(
            name: "release_task",
            description: "Release a claim taken with claim_task.",
            arguments: [
                .init(name: "resource", type: "string", description: "The claimed resource", required: true),
                .init(name: "token", type: "integer", description: "The fencing token claim_task returned", required: true),
                namespace,
            ],
            readOnly: false,
            run: forward("claim.release")),
        BridgeTool(
            name: "barrier_arrive",
            description: "Arrive at a barrier and wait until `parties` agents have arrived (state open, with what each brought). If it is still waiting when wait_ms ends, call again with the generation returned. A barrier that does not fill in time answers BROKEN.",
            arguments: [
                .init(name: "name", type: "string", description: "The barrier", required: true),
                .init(name: "parties", type: "integer", description: "How many distinct agents it waits for", required: true),
                .init(name: "value", type: "", description: "What you bring: any JSON value"),
                .init(name: "generation", type: "integer", description: "The generation a previous call returned (a retry)"),
                .init(name: "wait_ms", type: "integer", description: "How long to wait for it to open (default 30000)"),
                namespace,
            ],
            readOnly: false,
            run: forward("barrier.arrive", defaults: [JSONMember("wait_ms", 30_000)])),
        BridgeTool(
            name: "propose",
            description: "Put a proposal to a vote: it is accepted once `quorum` listed voters say yes (default: all of them), rejected when that becomes impossible or at its deadline. An accepted decision returns a token that fences the action it authorises.",
            arguments: [
                .init(name: "proposal", type: "string", description: "The proposal's name", required: true),
                .init(name: "voters", type: "array", description: "The agents whose votes count"),
                .init(name: "quorum", type: "integer", description: "Yes votes that accept it"),
                .init(name: "payload", type: "", description: "What is proposed: any JSON value"),
                .init(name: "ttl_ms", type: "integer", description: "Milliseconds before an undecided round is rejected (default 600000)"),
                namespace,
            ],
            readOnly: false,
            run: forward("vote.open")),
        BridgeTool(
            name: "vote",
            description: "Vote yes or no on a proposal; returns the round (status open, accepted or rejected).",
            arguments: [
                .init(name: "proposal", type: "string", description: "The proposal's name", required: true),
                .init(name: "choice", type: "string", description: "yes or no", required: true),
                .init(name: "reason", type: "string", description: "Why"),
                namespace,
            ],
            readOnly: false,
            run: forward("vote.cast")),
        BridgeTool(
            name: "decision",
            description: "Read a proposal's round, waiting up to wait_ms for its decision. Act only if status is accepted, passing fence {resource: proposal, token} with your writes.",
            arguments: [
                .init(name: "proposal", type: "string", description: "The proposal's name", required: true),
                .init(name: "wait_ms", type: "integer", description: "How long to wait for the decision (default 30000)"),
                namespace,
            ],
            readOnly: true,
            run: forward("vote.get", defaults: [JSONMember("wait_ms", 30_000)])),
        BridgeTool(
            name: "inbox_post",
            description: "Send a message to another agent's inbox.",
            arguments: [
                .init(name: "to", type: "string", description: "The receiving agent", required: true),
                .init(name: "content", type: "", description: "The message: any JSON value", required: true),
                .init(name: "type", type: "string", description: "Message type (default message)"),
                namespace,
            ],
            readOnly: false,
            run: forward("inbox.post", defaults: [JSONMember("type", "message")])),
        BridgeTool(
            name: "inbox_read",
            description: "Read your inbox (unacknowledged messages by default); with ack=true the messages returned are acknowledged.",
            arguments: [
                .init(name: "unacked_only", type: "boolean", description: "Only messages not yet acknowledged (default true)"),
                .init(name: "limit", type: "integer", description: "Most messages"),
                .init(name: "ack", type: "boolean", description: "Acknowledge what is returned (default false)"),
                namespace,
            ],
            readOnly: false,
            run: { args, ns, call in
                let ack = args.first(where: { $0.key == "ack" })?.value.boolValue ?? false
                let read = try forward("inbox.read")(args.filter { $0.key != "ack" }, ns, call)
                let ids = (read["entries"]?.arrayValue ?? []).compactMap { $0["id"] }
                guard ack, !ids.isEmpty else { return read }
                _ = try call("inbox.ack", .object([JSONMember("ns", .string(ns)), JSONMember("ids", .array(ids))]))
                return read
            }),
    ]
}
