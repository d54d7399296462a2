/// Turns a user's search text into an FTS5 query that can never be a syntax error.
///
/// Every whitespace-separated word becomes a quoted FTS5 string (inner `"` doubled), so
/// operators (`AND`, `OR`, `NOT`, `NEAR(`, `*`, `^`, `:`, parentheses) are plain words;
/// the words must all match (implicit AND). Words with no letter or digit are dropped:
/// the tokenizer would see no token in them, and an empty phrase matches nothing.
public enum FTSQuery {
    /// The quoted words of `text`, at most `maxTerms` of them; empty when nothing searchable remains.
    public static func terms(_ text: String, maxTerms: Int = 64) -> [String] {
        var out: [String] = []
        for word in text.split(whereSeparator: { $0.isWhitespace }) {
            guard word.contains(where: { $0.isLetter || $0.isNumber }) else { continue }
            out.append("\"" + word.replacingOccurrences(of: "\"", with: "\"\"") + "\"")
            if out.count == maxTerms { break }
        }
        return out
    }

    /// The tokens a namespace yields under the `unicode61` tokenizer (runs of ASCII letters
    /// and digits; the namespace alphabet is ASCII).
    public static func namespaceTokens(_ ns: String) -> [String] {
        ns.split(whereSeparator: { !($0.isASCII && ($0.isLetter || $0.isNumber)) }).map(String.init)
    }

    /// The full MATCH expression for `text` within namespace `ns`, or nil when the text
    /// holds nothing searchable. The namespace is matched as a phrase anchored at the
    /// start of the `ns` column, which narrows the candidates inside the index; the exact
    /// namespace is still checked on the joined row.
    public static func match(text: String, ns: String) -> String? {
        let words = terms(text)
        guard !words.isEmpty else { return nil }
        let content = "content : (" + words.joined(separator: " AND ") + ")"
        let nsTokens = namespaceTokens(ns)
        guard !nsTokens.isEmpty else { return content }
        return "ns : ^\"" + nsTokens.joined(separator: " ") + "\" AND " + content
    }
}
