/// When a write is acknowledged, and what survives what.
public enum Durability: String, Sendable, CaseIterable {
    /// Acknowledged after the journal is fsynced (group commit): survives a crash of the
    /// daemon and a power loss. No reply (not even a read) shows data that is not yet
    /// durable.
    case strict
    /// Acknowledged after the journal write reaches the operating system: survives a crash
    /// of the daemon; a power loss may lose the last second (the journal is fsynced every
    /// second).
    case normal
    /// Memory only: a restart starts empty.
    case volatile
}
