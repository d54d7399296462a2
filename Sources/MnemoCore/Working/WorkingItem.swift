/// One working-memory entry as stored.
///
/// The hash table holds only what every lookup needs (version, expiry, charge) next to one
/// reference; the value, provenance and lease live in an immutable object behind it. That
/// keeps a table slot at 32 bytes instead of ~150 — the table has up to twice as many
/// slots as keys — and a copy of an item is one retain.
public struct WorkingItem: Sendable {
    /// An item as stored.
    public init(value: [UInt8], version: Int64, expiresAt: Int64, provenance: Provenance, lease: Lease? = nil) {
        self.version = version
        self.expiresAt = expiresAt
        self.body = Body(value: value, provenance: provenance, lease: lease)
    }

    /// The revision of the key's last write; never reused, even across delete/recreate.
    public var version: Int64
    /// Wall-clock expiry in ms since the epoch, or 0 for none.
    public var expiresAt: Int64
    /// Bytes charged for it when stored (removal gives back exactly this, even when the
    /// key is named by another, canonically equivalent spelling).
    var charge = 0
    private var body: Body

    /// The value as compact JSON bytes, returned to readers as is.
    public var value: [UInt8] {
        get { body.value }
        set { body = Body(value: newValue, provenance: body.provenance, lease: body.lease) }
    }
    /// Who wrote it.
    public var provenance: Provenance {
        get { body.provenance }
        set { body = Body(value: body.value, provenance: newValue, lease: body.lease) }
    }
    /// The claim whose end deletes this key (`lease` on `wm.set`), with its token.
    public var lease: Lease? {
        get { body.lease }
        set { body = Body(value: body.value, provenance: body.provenance, lease: newValue) }
    }

    private final class Body: Sendable {
        let value: [UInt8]
        let provenance: Provenance
        let lease: Lease?
        init(value: [UInt8], provenance: Provenance, lease: Lease?) {
            self.value = value
            self.provenance = provenance
            self.lease = lease
        }
    }

    /// Bytes charged against `max_working_bytes`: key, value and a fixed overhead for the
    /// hash entry, the provenance and the expiry bookkeeping.
    static func cost(key: String, valueBytes: Int) -> Int { key.utf8.count + valueBytes + 160 }

    func isLive(at now: Int64) -> Bool { expiresAt == 0 || expiresAt > now }
}

/// The items of one namespace plus a lazily rebuilt byte-ordered key list for `wm.list`.
struct WorkingSpace: Sendable {
    var items: [String: WorkingItem] = [:]
    /// Keys in byte order; nil after a key was added or removed (rebuilt on the next list).
    var sortedKeys: [String]? = []

    mutating func orderedKeys() -> [String] {
        if let sortedKeys { return sortedKeys }
        let keys = items.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        sortedKeys = keys
        return keys
    }
}

/// A key's tie to a claim of its namespace.
public struct Lease: Sendable, Equatable {
    /// The claimed resource.
    public var resource: String
    /// The claim's fencing token when the key was written.
    public var token: Int64

    /// A lease.
    public init(resource: String, token: Int64) {
        self.resource = resource
        self.token = token
    }
}
