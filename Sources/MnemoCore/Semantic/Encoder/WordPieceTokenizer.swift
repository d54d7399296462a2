import Foundation
import MnemoProtocol

/// BERT's tokenizer, as Hugging Face `tokenizers` runs it for a `BertNormalizer` +
/// `BertPreTokenizer` + `WordPiece` model (what sentence-transformers uses for MiniLM,
/// BGE and other BERT encoders), so the ids agree with theirs token for token:
///
/// 1. Special tokens written literally in the text (`[SEP]`, `[MASK]`, ...) are kept
///    whole, as the fast tokenizer does with its added tokens.
/// 2. Normalize: drop NUL, U+FFFD and control/format/unassigned characters, turn
///    whitespace into spaces, put spaces around CJK ideographs, strip accents (NFD, then
///    drop non-spacing marks), lower-case each character.
/// 3. Split on whitespace, and make every punctuation character a word of its own.
/// 4. WordPiece: each word becomes the longest vocabulary prefix, then `##`-prefixed
///    longest pieces of the rest; a word with a part no piece covers, or longer than
///    `maxInputCharsPerWord`, is `[UNK]`.
struct WordPieceTokenizer: Sendable {
    let vocab: [String: Int32]
    let lowercase: Bool
    let stripAccents: Bool
    let handleChineseChars: Bool
    let cleanText: Bool
    let unknown: Int32
    let cls: Int32
    let sep: Int32
    let continuingPrefix: String
    let maxInputCharsPerWord: Int
    /// Special tokens matched literally in the raw text, longest first.
    let specials: [(text: String, id: Int32)]

    /// The ids of `text` framed as `[CLS] ... [SEP]`, at most `maxLength` in all, and
    /// whether tokens were cut to fit.
    func encode(_ text: String, maxLength: Int) -> (ids: [Int32], truncated: Bool) {
        var ids: [Int32] = [cls]
        for part in splitSpecials(text) {
            switch part {
            case .special(let id): ids.append(id)
            case .text(let t):
                for word in words(normalize(t)) { wordPiece(word, into: &ids) }
            }
        }
        let room = max(0, maxLength - 2)
        let truncated = ids.count - 1 > room
        if truncated { ids.removeSubrange((1 + room)...) }
        ids.append(sep)
        return (ids, truncated)
    }

    private enum Part {
        case special(Int32)
        case text(Substring)
    }

    private func splitSpecials(_ text: String) -> [Part] {
        guard !specials.isEmpty, text.contains("[") || specials.contains(where: { !$0.text.hasPrefix("[") }) else {
            return [.text(text[...])]
        }
        var parts: [Part] = []
        var plainStart = text.startIndex
        var i = text.startIndex
        while i < text.endIndex {
            if let s = specials.first(where: { text[i...].hasPrefix($0.text) }) {
                if plainStart < i { parts.append(.text(text[plainStart..<i])) }
                parts.append(.special(s.id))
                i = text.index(i, offsetBy: s.text.count)
                plainStart = i
            } else {
                i = text.index(after: i)
            }
        }
        if plainStart < text.endIndex { parts.append(.text(text[plainStart...])) }
        return parts
    }

    /// Step 2, over Unicode scalars (as the Rust implementation works on `char`s).
    func normalize(_ text: Substring) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.unicodeScalars.count)
        for s in text.unicodeScalars {
            if cleanText {
                if s.value == 0 || s.value == 0xFFFD || Self.isControl(s) { continue }
                if Self.isWhitespace(s) {
                    out.append(" ")
                    continue
                }
            }
            if handleChineseChars && Self.isCJK(s) {
                out.append(" ")
                out.append(s)
                out.append(" ")
                continue
            }
            out.append(s)
        }
        if stripAccents {
            var view = String.UnicodeScalarView()
            view.append(contentsOf: out)
            let nfd = String(view).decomposedStringWithCanonicalMapping
            out = nfd.unicodeScalars.filter { $0.properties.generalCategory != .nonspacingMark }
        }
        if lowercase {
            var lower: [Unicode.Scalar] = []
            lower.reserveCapacity(out.count)
            for s in out {
                if s.isASCII {
                    lower.append(s.value >= 65 && s.value <= 90 ? Unicode.Scalar(UInt8(s.value + 32)) : s)
                } else {
                    lower.append(contentsOf: s.properties.lowercaseMapping.unicodeScalars)
                }
            }
            out = lower
        }
        return out
    }

    /// Step 3.
    func words(_ scalars: [Unicode.Scalar]) -> [ArraySlice<Unicode.Scalar>] {
        var out: [ArraySlice<Unicode.Scalar>] = []
        var start = 0
        for (i, s) in scalars.enumerated() {
            if Self.isWhitespace(s) {
                if start < i { out.append(scalars[start..<i]) }
                start = i + 1
            } else if Self.isPunctuation(s) {
                if start < i { out.append(scalars[start..<i]) }
                out.append(scalars[i...i])
                start = i + 1
            }
        }
        if start < scalars.count { out.append(scalars[start...]) }
        return out
    }

    /// Step 4, greedy longest match first.
    func wordPiece(_ word: ArraySlice<Unicode.Scalar>, into ids: inout [Int32]) {
        guard word.count <= maxInputCharsPerWord else {
            ids.append(unknown)
            return
        }
        let chars = Array(word)
        var pieces: [Int32] = []
        var start = 0
        while start < chars.count {
            var end = chars.count
            var found: Int32?
            while end > start {
                var view = String.UnicodeScalarView()
                view.append(contentsOf: chars[start..<end])
                let piece = start > 0 ? continuingPrefix + String(view) : String(view)
                if let id = vocab[piece] {
                    found = id
                    break
                }
                end -= 1
            }
            guard let id = found else {
                ids.append(unknown)
                return
            }
            pieces.append(id)
            start = end
        }
        ids.append(contentsOf: pieces)
    }

    /// Rust's `char::is_whitespace` (the Unicode White_Space property), as BERT uses it.
    static func isWhitespace(_ s: Unicode.Scalar) -> Bool {
        s == " " || s == "\t" || s == "\n" || s == "\r" || s.properties.isWhitespace
    }

    /// Control, format, surrogate, private-use and unassigned characters, except tab,
    /// newline and carriage return (which count as whitespace).
    static func isControl(_ s: Unicode.Scalar) -> Bool {
        if s == "\t" || s == "\n" || s == "\r" { return false }
        switch s.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned: return true
        default: return false
        }
    }

    /// ASCII punctuation (which includes symbols such as `$`, `+`, `^`) or any Unicode
    /// punctuation category.
    static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) { return true }
        switch s.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .closePunctuation, .finalPunctuation, .initialPunctuation,
             .otherPunctuation, .openPunctuation:
            return true
        default:
            return false
        }
    }

    /// The CJK Unified Ideographs blocks BERT splits character by character.
    static func isCJK(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
             0x2B820...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default:
            return false
        }
    }
}
