import MnemoCore
import MnemoProtocol

extension Params {
    /// A required namespace, validated.
    func namespace(_ key: String = "ns") throws(WireError) -> String {
        let ns = try string(key)
        try Validate.namespace(ns, field: name(key))
        return ns
    }

    /// Optional client-supplied provenance links: `task` and `derived_from`.
    func links() throws(WireError) -> (task: String?, derivedFrom: [String]?) {
        let task = try optionalString("task")
        if let task { try Validate.identifier(task, field: "task") }
        guard let list = try optionalArray("derived_from") else { return (task, nil) }
        guard list.count <= 256 else { throw .invalidParams("derived_from", "at most 256 ids") }
        var ids: [String] = []
        for item in list {
            guard let s = item.stringValue else { throw .invalidParams("derived_from", "must be an array of strings") }
            try Validate.identifier(s, field: "derived_from")
            ids.append(s)
        }
        return (task, ids)
    }
}

extension JSONWriter {
    /// Writes `,"expires_at":"..."` when there is an expiry.
    mutating func expiresAt(_ ms: Int64?) {
        guard let ms else { return }
        raw(",\"expires_at\":")
        Timestamp.write(ms, to: &self)
    }
}
