/// Turns a user's search text into an FTS5 query that can never be a syntax error.
///
/// Every word (separated by whitespace or NUL) becomes a quoted FTS5 string (inner `"` doubled), so
/// operators (`AND`, `OR`, `NOT`, `NEAR(`, `*`, `^`, `:`, parentheses) are plain words;
/// any of the words matches (OR), and BM25 ranks documents holding more of them, and
/// rarer ones, higher: a paraphrase that shares only some words still finds the record.
/// Words with no letter or digit are dropped: the tokenizer would see no token in them,
/// and an empty phrase matches nothing.
public enum FTSQuery {
    /// The quoted words of `text`, at most `maxTerms` of them; empty when nothing searchable remains.
    public static func terms(_ text: String, maxTerms: Int = 64) -> [String] {
        // FTS5 parses the query as a C string: a NUL inside a quoted word would end it there
        // ("unterminated string"). Its tokenizer separates words at NUL, so NUL separates
        // words here too (byte-wise: 0x00 is never part of a longer UTF-8 sequence).
        let text = text.utf8.contains(0) ? String(decoding: text.utf8.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self) : text
        var out: [String] = []
        for word in text.split(whereSeparator: { $0.isWhitespace }) {
            guard word.contains(where: { $0.isLetter || $0.isNumber }) else { continue }
            out.append("\"" + word.replacingOccurrences(of: "\"", with: "\"\"") + "\"")
            if out.count == maxTerms { break }
        }
        return out
    }

    /// The namespace's one token in the `nskey` column: its bytes in upper-case hex, as
    /// SQLite's `hex()` writes them when the row is indexed.
    public static func namespaceKey(_ ns: String) -> String {
        let digits = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(ns.utf8.count * 2)
        for b in ns.utf8 {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The `nskey` column of a row that a search by namespace PREFIX must find: one token
    /// per ancestor prefix of `ns` (whole segments: `wf`, `wf/1`, `wf/1/a`), each as
    /// ``namespaceKey(_:)`` writes it, separated by spaces. A prefix's token then selects
    /// its whole subtree inside the index.
    /// - Complexity: O(segments x bytes of `ns`).
    public static func subtreeKeys(_ ns: String) -> String {
        var keys: [String] = []
        var prefix = ""
        for segment in ns.split(separator: "/", omittingEmptySubsequences: false) {
            prefix = keys.isEmpty ? String(segment) : prefix + "/" + segment
            keys.append(namespaceKey(prefix))
        }
        return keys.joined(separator: " ")
    }

    /// The MATCH expression for ANY of `text`'s words (OR) in `column`, within the subtree
    /// of namespace `prefix` (rows indexed with ``subtreeKeys(_:)``); nil when the text
    /// holds nothing searchable. Ranking (BM25) favours rows matching more and rarer words.
    public static func matchAny(text: String, column: String, prefix: String) -> String? {
        let words = terms(text)
        guard !words.isEmpty else { return nil }
        return "nskey : \"" + namespaceKey(prefix) + "\" AND " + column + " : (" + words.joined(separator: " OR ") + ")"
    }
}
