import Synchronization

/// The watch listeners of a SQLite tier (episodic, semantic): told about each committed
/// change, after its commit.
public final class WatchObservers: Sendable {
    private let observers = Mutex<[@Sendable ([WatchEvent]) -> Void]>([])

    /// An empty list.
    public init() {}

    /// Registers a listener.
    public func observe(_ observer: @escaping @Sendable ([WatchEvent]) -> Void) {
        observers.withLock { $0.append(observer) }
    }

    /// Tells every listener (nothing for no events).
    func emit(_ events: [WatchEvent]) {
        guard !events.isEmpty else { return }
        for observer in observers.withLock({ $0 }) { observer(events) }
    }
}
