import Logging
import MnemoProtocol

/// The daemon's state, all tiers together; what the server dispatches into.
public final class Engine: Sendable {
    /// Limits in force.
    public let limits: Limits
    /// The clock every store reads.
    public let time: any TimeSource
    /// The working-memory and coordination tier.
    public let working: WorkingMemory
    /// Semantic memory: facts with embeddings, searched exactly in memory.
    public let semantic: SemanticStore
    /// The episodic tier (SQLite).
    public let episodic: EpisodeStore
    /// Principals and grants (reloadable).
    public let access: AccessControl
    /// Mutations and denials.
    public let audit: AuditLog
    /// How working memory is made durable.
    public let durability: Durability
    /// Where `admin.export`, `admin.import` and `admin.snapshot` read and write files.
    public let transfer: TransferDirectory
    /// Monotonic time at start-up.
    public let startedAtNs: UInt64
    /// The data directory; nil when nothing is kept on disk (volatile).
    public let dataDir: String?

    /// An engine whose working memory lives in `dataDir/working` and episodic memory in
    /// `dataDir/episodic.sqlite` (neither used when volatile). Both SQLite tiers embed with
    /// the one embedder of `settings`. Files are transferred in `transfer` (default:
    /// `dataDir/transfer`, created 0700 at first use).
    /// - Throws: when the journal cannot be opened or recovered, a database opened, or the
    ///   transfer directory made.
    public init(limits: Limits, durability: Durability, dataDir: String, time: any TimeSource = SystemTime(),
                resultRetentionMs: Int64 = 7 * 86_400_000, inboxRetentionMs: Int64 = 7 * 86_400_000,
                semantic settings: SemanticSettings = SemanticSettings(), summarizer: Summarizer = Summarizer(),
                episodic episodicSettings: EpisodicSettings = EpisodicSettings(),
                principals: [Principal] = [], auditRetentionMs: Int64 = 30 * 86_400_000, auditMutations: Bool? = nil,
                transfer: TransferDirectory? = nil, cluster: ClusterSettings? = nil, logger: Logger) throws(StorageError) {
        self.limits = limits
        self.access = AccessControl(principals: principals)
        // A cluster node decides on the database's clock (see ``ClusterClock``).
        let clusterClock = cluster.map { _ in ClusterClock() }
        let time: any TimeSource = clusterClock ?? time
        self.time = time
        self.durability = durability
        // Opened at first use: an engine that is never asked for a file makes none.
        self.transfer = transfer ?? TransferDirectory(deferredPath: dataDir + "/transfer")
        if let cluster, let clusterClock {
            do {
                let log = try ClusterLog(settings: cluster, clock: clusterClock, logger: logger)
                working = try WorkingMemory.openCluster(log: log, limits: limits, logger: logger, resultRetentionMs: resultRetentionMs,
                                                        inboxRetentionMs: inboxRetentionMs, quotas: access.quotas)
            } catch {
                throw StorageError("\(error)", cluster: true)
            }
        } else if durability == .volatile {
            working = WorkingMemory(limits: limits, time: time, logger: logger, resultRetentionMs: resultRetentionMs,
                                    inboxRetentionMs: inboxRetentionMs, quotas: access.quotas)
        } else {
            working = try WorkingMemory.open(dir: dataDir + "/working", durability: durability, limits: limits, time: time,
                                             logger: logger, resultRetentionMs: resultRetentionMs,
                                             inboxRetentionMs: inboxRetentionMs, quotas: access.quotas)
        }
        let working = self.working
        episodic = try EpisodeStore(dir: dataDir, durability: durability, limits: limits, time: time,
                                    summarizer: summarizer, embedder: settings.embedder, settings: episodicSettings,
                                    quotas: access.quotas, logger: logger,
                                    nextRevision: { () throws(WireError) -> Int64 in try working.reserveRevision() })
        semantic = try SemanticStore(dir: dataDir, durability: durability, limits: limits, time: time,
                                     embedder: settings.embedder, defaultMetric: settings.metric,
                                     similarScore: settings.similarScore, defaultMode: settings.defaultMode,
                                     quotas: access.quotas, logger: logger,
                                     nextRevision: { () throws(WireError) in try working.reserveRevision() })
        if cluster != nil {
            // A cluster node's SQLite tiers are caught up from the feed and written through it.
            do {
                try working.replicate([episodic, semantic])
            } catch {
                throw StorageError("\(error)", cluster: true)
            }
        } else {
            // Revisions the SQLite tiers stored may be above what the journal recovered.
            working.raiseRevision(atLeast: max(episodic.maxRevAtOpen, semantic.db.maxRevAtOpen))
        }
        audit = try AuditLog(dir: dataDir, durability: durability, retentionMs: auditRetentionMs,
                             recordsMutations: auditMutations ?? !principals.isEmpty, time: time, cluster: cluster, logger: logger)
        self.startedAtNs = time.monotonicNs()
        self.dataDir = durability == .volatile ? nil : dataDir
    }

    /// Tiers whose database was found damaged, with the reason: their calls are refused
    /// (`CORRUPT`) while the others serve.
    public var damagedTiers: [(tier: String, reason: String)] {
        [("ep", episodic.store.damage), ("sem", semantic.db.damage), ("audit", audit.db.damage)]
            .compactMap { t in t.1.map { (t.0, $0) } }
    }

    /// The cluster this engine is a node of; nil on a single node.
    public var cluster: ClusterLog? { working.cluster }

    /// The global revision.
    public var revision: Int64 { working.revision }

    /// Milliseconds since start-up.
    public var uptimeMs: Int64 { Int64((time.monotonicNs() - startedAtNs) / 1_000_000) }

    /// Final fsync and stop of background threads (after the server stopped).
    public func close() {
        audit.close()
        semantic.close()
        episodic.close()
        working.close()
    }
}
