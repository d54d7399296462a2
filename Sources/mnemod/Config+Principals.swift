import MnemoCore
import TOMLKit

/// `[[principals]]`: who may connect and what each may do.
enum PrincipalsConfig {
    /// Parses the `principals` array of tables.
    /// - Throws: a message naming the principal and key for a bad name, token hash, uid,
    ///   grant pattern or permission, or a duplicate name.
    static func parse(_ value: (any TOMLValueConvertible)?, file: String) throws(ConfigError) -> [Principal] {
        guard let list = value?.array else { throw ConfigError("\(file): principals must be an array of tables ([[principals]])") }
        var out: [Principal] = []
        for (i, item) in list.enumerated() {
            let at = "\(file): principals[\(i)]"
            guard let t = item.table else { throw ConfigError("\(at) must be a table") }
            let allowed: Set<String> = ["name", "token_sha256", "uids", "grants", "quota"]
            if let bad = t.keys.first(where: { !allowed.contains($0) }) { throw ConfigError("\(at): unknown key \(bad)") }
            guard let name = t["name"]?.string, !name.isEmpty, name.utf8.count <= 256 else {
                throw ConfigError("\(at).name must be a string of 1 to 256 bytes")
            }
            guard !out.contains(where: { $0.name == name }) else { throw ConfigError("\(at): principal \(name) is defined twice") }
            var token: [UInt8]?
            if let hex = t["token_sha256"] {
                guard let h = hex.string, let bytes = Self.hex(h), bytes.count == 32 else {
                    throw ConfigError("\(at).token_sha256 must be 64 hex digits (sha256sum of the token)")
                }
                token = bytes
            }
            var uids: [UInt32]?
            if let u = t["uids"] {
                guard let a = u.array else { throw ConfigError("\(at).uids must be an array of integers") }
                uids = []
                for v in a {
                    guard let n = v.int, let uid = UInt32(exactly: n) else { throw ConfigError("\(at).uids must be uids (0...4294967295)") }
                    uids?.append(uid)
                }
            }
            guard let grantList = t["grants"]?.array else { throw ConfigError("\(at).grants must be an array of { ns, perms } tables") }
            var grants: [Grant] = []
            for (j, g) in grantList.enumerated() {
                guard let gt = g.table, let ns = gt["ns"]?.string, let letters = gt["perms"]?.string,
                      gt.keys.allSatisfy({ $0 == "ns" || $0 == "perms" })
                else { throw ConfigError("\(at).grants[\(j)] must be { ns = \"...\", perms = \"rwa\" }") }
                guard let perms = Perms(letters: letters) else { throw ConfigError("\(at).grants[\(j)].perms must be letters from r, w, a") }
                guard let grant = Grant(pattern: ns, perms: perms) else {
                    throw ConfigError("\(at).grants[\(j)].ns: \(ns) is not a pattern (segments, *, {agent}, trailing **)")
                }
                grants.append(grant)
            }
            var quota: Quota?
            if let q = t["quota"] {
                guard let qt = q.table else { throw ConfigError("\(at).quota must be a table { \(Quota.fields.map { "\($0.name) = N" }.joined(separator: ", ")) }") }
                var parsed = Quota()
                for key in qt.keys {
                    guard let field = Quota.fields.first(where: { $0.name == key }) else {
                        throw ConfigError("\(at).quota: unknown key \(key); known: \(Quota.fields.map(\.name).joined(separator: ", "))")
                    }
                    guard let n = qt[key]?.int, n >= 1 else { throw ConfigError("\(at).quota.\(key) must be an integer >= 1") }
                    parsed[keyPath: field.keyPath] = n
                }
                quota = parsed
            }
            out.append(Principal(name: name, tokenSHA256: token, uids: uids, grants: grants, quota: quota))
        }
        return out
    }

    static func hex(_ s: String) -> [UInt8]? {
        let digits = Array(s.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        var i = 0
        while i < digits.count {
            guard let hi = nibble(digits[i]), let lo = nibble(digits[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
