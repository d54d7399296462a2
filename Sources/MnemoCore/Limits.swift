/// Every limit of the daemon, in one place: its default, its hard maximum and why.
///
/// Configuration (`[limits]` in the TOML file) may lower or raise a limit up to its hard
/// maximum; ``Limits/set(_:to:)`` refuses anything else. Limits are enforced before the
/// memory they guard is allocated.
public struct Limits: Sendable, Equatable {
    /// Longest request line after `session.hello`, in bytes.
    public var maxLineBytes = 1 << 20
    /// Longest request line before `session.hello` (an unauthenticated peer gets less).
    public var maxLineBytesBeforeHello = 16 << 10
    /// Deepest JSON nesting in a request.
    public var maxDepth = 64
    /// Most requests in one batch line.
    public var maxBatch = 1000
    /// Most concurrent connections; further peers are refused with an error line.
    public var maxConnections = 1024
    /// How long a request line may take to arrive, from its first byte, before the
    /// connection is closed (slow or stalled senders).
    public var idleTimeoutMs = 10_000
    /// How long a connection may send nothing while it waits for nothing (no watch, no
    /// parked call) before it is closed; 0 keeps idle connections forever.
    public var idleConnectionTimeoutMs = 0
    /// Longest working-memory key, in bytes.
    public var maxKeyBytes = 1024
    /// Largest working-memory value (compact JSON), in bytes.
    public var maxValueBytes = 512 << 10
    /// Most compares or ops in one `wm.txn`.
    public var maxTxnOps = 128
    /// Most items one `wm.list` page returns.
    public var maxListLimit = 1000
    /// Longest TTL, in milliseconds (10 years).
    public var maxTTLms: Int64 = 315_360_000_000
    /// Working memory's budget (keys, values and bookkeeping); writes past it fail with
    /// `LIMIT_EXCEEDED` instead of evicting anything.
    public var maxWorkingBytes = 1 << 30
    /// Most inbox entries one namespace holds.
    public var maxInboxEntries = 10_000
    /// Recent changes kept for watches to resume from (`from_rev`).
    public var watchHistory = 10_000
    /// Most watches one connection may hold.
    public var maxWatchesPerConnection = 64
    /// Response bytes a connection may have queued before the server stops reading from
    /// it (backpressure against clients that send but do not read).
    public var maxPendingOutputBytes = 8 << 20
    /// Longest semantic vector (contract: 4096).
    public var maxVectorDims = 4096
    /// Most hits one `sem.search` returns (contract: 1000).
    public var maxSearchK = 1000
    /// Longest semantic fact text, in bytes.
    public var maxFactTextBytes = 64 << 10
    /// Most semantic records held (all collections): bounds the in-memory matrices.
    public var maxSemanticRecords = 10_000_000
    /// Past versions kept per semantic record (`sem.history`); the oldest go first. 0
    /// keeps none: a replaced version is gone, as before versions were kept.
    public var maxFactVersions = 32
    /// Largest episodic record content (`ep.append`), in UTF-8 bytes.
    public var maxEpisodeContentBytes = 64 << 10
    /// Largest export one `admin.import` takes, from a file or as lines streamed over the
    /// connection: it is parsed and checked whole before anything is applied (nothing
    /// applied on a bad line or a record outside the grants), so it is held in memory.
    public var maxImportBytes = 1 << 30
    /// Most barriers and proposals kept at once.
    public var maxAgreements = 100_000

    /// The defaults.
    public init() {}

    /// One configurable limit.
    public struct Spec: Sendable {
        /// The name used in configuration, in `session.hello` and in `LIMIT_EXCEEDED` errors.
        public let name: String
        /// Smallest accepted value.
        public let minimum: Int
        /// Largest accepted value.
        public let hardMaximum: Int
        /// Why the limit exists.
        public let reason: String
        /// Where it lives.
        public let keyPath: any WritableKeyPath<Limits, Int> & Sendable
    }

    /// The catalog of every configurable limit.
    public static let catalog: [Spec] = [
        Spec(name: "max_line_bytes", minimum: 1024, hardMaximum: 64 << 20,
             reason: "bounds the memory one request can pin", keyPath: \.maxLineBytes),
        Spec(name: "max_line_bytes_before_hello", minimum: 256, hardMaximum: 1 << 20,
             reason: "an unauthenticated peer gets a small buffer", keyPath: \.maxLineBytesBeforeHello),
        Spec(name: "max_depth", minimum: 2, hardMaximum: 512,
             reason: "bounds parser recursion", keyPath: \.maxDepth),
        Spec(name: "max_batch", minimum: 1, hardMaximum: 100_000,
             reason: "bounds the work and reply size of one line", keyPath: \.maxBatch),
        Spec(name: "max_connections", minimum: 1, hardMaximum: 65_536,
             reason: "bounds file descriptors and per-connection buffers", keyPath: \.maxConnections),
        Spec(name: "idle_timeout_ms", minimum: 100, hardMaximum: 3_600_000,
             reason: "a slow or stalled request line must not hold a buffer forever", keyPath: \.idleTimeoutMs),
        Spec(name: "idle_connection_timeout_ms", minimum: 0, hardMaximum: 86_400_000,
             reason: "peers that vanished without closing must not hold a descriptor forever (0: off)",
             keyPath: \.idleConnectionTimeoutMs),
        Spec(name: "max_key_bytes", minimum: 16, hardMaximum: 64 << 10,
             reason: "keys are held in memory and listed in order", keyPath: \.maxKeyBytes),
        Spec(name: "max_value_bytes", minimum: 64, hardMaximum: 64 << 20,
             reason: "bounds one item's memory and reply size", keyPath: \.maxValueBytes),
        Spec(name: "max_txn_ops", minimum: 1, hardMaximum: 10_000,
             reason: "a transaction holds the store lock while it applies", keyPath: \.maxTxnOps),
        Spec(name: "max_list_limit", minimum: 1, hardMaximum: 100_000,
             reason: "bounds one page of wm.list", keyPath: \.maxListLimit),
        Spec(name: "max_working_bytes", minimum: 1 << 20, hardMaximum: 1 << 40,
             reason: "working memory refuses writes rather than grow without bound", keyPath: \.maxWorkingBytes),
        Spec(name: "max_inbox_entries", minimum: 1, hardMaximum: 10_000_000,
             reason: "an inbox nobody reads must not grow without bound", keyPath: \.maxInboxEntries),
        Spec(name: "watch_history", minimum: 0, hardMaximum: 10_000_000,
             reason: "bounds the change log watches resume from", keyPath: \.watchHistory),
        Spec(name: "max_watches_per_connection", minimum: 1, hardMaximum: 100_000,
             reason: "each watch is checked on every change", keyPath: \.maxWatchesPerConnection),
        Spec(name: "max_pending_output_bytes", minimum: 64 << 10, hardMaximum: 1 << 30,
             reason: "a client that does not read must not grow the server's memory", keyPath: \.maxPendingOutputBytes),
        Spec(name: "max_vector_dims", minimum: 1, hardMaximum: 4096,
             reason: "the contract's largest vector; bounds each row of a matrix", keyPath: \.maxVectorDims),
        Spec(name: "max_search_k", minimum: 1, hardMaximum: 1000,
             reason: "the contract's largest k; bounds the top-k heap and the reply", keyPath: \.maxSearchK),
        Spec(name: "max_fact_text_bytes", minimum: 64, hardMaximum: 1 << 20,
             reason: "fact texts are kept in memory beside their vectors", keyPath: \.maxFactTextBytes),
        Spec(name: "max_semantic_records", minimum: 1, hardMaximum: 1 << 31,
             reason: "vectors live in memory: 1M x 384 dims is 1.5 GB", keyPath: \.maxSemanticRecords),
        Spec(name: "max_fact_versions", minimum: 0, hardMaximum: 10_000,
             reason: "past versions are kept on disk and scanned by as_of and include_history searches",
             keyPath: \.maxFactVersions),
        Spec(name: "max_episode_content_bytes", minimum: 64, hardMaximum: 16 << 20,
             reason: "each record is indexed by FTS5 and returned whole by ep.query", keyPath: \.maxEpisodeContentBytes),
        Spec(name: "max_import_bytes", minimum: 1 << 10, hardMaximum: 1 << 32,
             reason: "an import is held in memory and checked whole before anything is applied", keyPath: \.maxImportBytes),
        Spec(name: "max_agreements", minimum: 1, hardMaximum: 10_000_000,
             reason: "barriers and proposals are kept in memory (and in every snapshot)", keyPath: \.maxAgreements),
    ]

    /// Fixed by the wire contract, not configurable.
    public static let maxNamespaceBytes = 512
    /// Fixed by the wire contract, not configurable.
    public static let maxNamespaceSegments = 16
    /// Longest agent name (contract: `[A-Za-z0-9._:-]{1,64}`).
    public static let maxAgentBytes = 64
    /// Longest claim resource, task id or idempotency key.
    public static let maxIdentifierBytes = 256
    /// Most tags on an episodic record (contract: `tags`, 64 items).
    public static let maxEpisodeTags = 64
    /// Longest tag, in characters (contract: `tag`).
    public static let maxTagCharacters = 128
    /// Most ids in `derived_from`, and so most sources one summary covers (contract).
    public static let maxDerivedFrom = 256
    /// Most ids in one `ep.pin` (contract: `ids`).
    public static let maxEpisodeIds = 1000
    /// Longest `ep.search` text, in characters (contract); it is split into at most 64 words.
    public static let maxSearchTextCharacters = 1024
    /// Most records one `ep.summarize` call takes (contract): one commit holds them all.
    public static let maxSummarizeRecords = 100_000
    /// Most namespace remappings one `admin.import` takes.
    public static let maxImportRemaps = 16
    /// Most parties of a barrier generation, and most voters of a proposal (a barrier's
    /// or proposal's whole state is journaled at each arrival or vote).
    public static let maxParties = 256
    /// Largest `value` a party brings to a barrier, `payload` of a proposal, leader `value`
    /// (compact JSON bytes) and vote `reason` (bytes).
    public static let maxAgreementValueBytes = 4096

    /// Sets the limit named `name`, refusing unknown names and values out of range.
    public mutating func set(_ name: String, to value: Int) throws(ConfigError) {
        guard let spec = Limits.catalog.first(where: { $0.name == name }) else {
            throw ConfigError("unknown limit \"\(name)\"; known: \(Limits.catalog.map(\.name).joined(separator: ", "))")
        }
        guard value >= spec.minimum, value <= spec.hardMaximum else {
            throw ConfigError("limit \(name) = \(value) is outside \(spec.minimum)...\(spec.hardMaximum) (\(spec.reason))")
        }
        self[keyPath: spec.keyPath] = value
    }

    /// Name and value of every configurable limit, in catalog order.
    public var all: [(String, Int)] { Limits.catalog.map { ($0.name, self[keyPath: $0.keyPath]) } }
}

/// A configuration value that cannot be used; the daemon refuses to start with it.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    /// What is wrong and where.
    public let description: String
    /// An error with a message.
    public init(_ description: String) { self.description = description }
}
