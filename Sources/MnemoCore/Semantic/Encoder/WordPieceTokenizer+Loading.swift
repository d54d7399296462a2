import Foundation
import MnemoProtocol

extension WordPieceTokenizer {
    /// Reads `tokenizer.json` (a `WordPiece` model with a `BertNormalizer`) from `dir`,
    /// else `vocab.txt` with the options of `tokenizer_config.json`.
    /// - Throws: ``ModelError`` naming the file: neither file, another tokenizer type, a
    ///   vocabulary without `[CLS]`, `[SEP]` or `[UNK]`.
    static func load(dir: String) throws(ModelError) -> WordPieceTokenizer {
        let json = dir + "/tokenizer.json"
        if FileManager.default.fileExists(atPath: json) { return try fromTokenizerJSON(json) }
        let txt = dir + "/vocab.txt"
        guard FileManager.default.fileExists(atPath: txt) else {
            throw ModelError(dir, "neither tokenizer.json nor vocab.txt is there")
        }
        return try fromVocabTxt(txt, config: dir + "/tokenizer_config.json")
    }

    static func fromTokenizerJSON(_ path: String) throws(ModelError) -> WordPieceTokenizer {
        let root = try readJSON(path)
        guard let model = root["model"], model["type"]?.stringValue == "WordPiece" else {
            throw ModelError(path, "model.type is \(root["model"]?["type"]?.stringValue ?? "missing"); only WordPiece (BERT) tokenizers are supported")
        }
        guard let entries = model["vocab"]?.objectValue else { throw ModelError(path, "model.vocab is missing") }
        var vocab: [String: Int32] = [:]
        vocab.reserveCapacity(entries.count)
        for e in entries {
            guard let id = e.value.int64Value, id >= 0, id < Int64(Int32.max) else {
                throw ModelError(path, "model.vocab: \(e.key) has no valid id")
            }
            vocab[e.key] = Int32(id)
        }
        let normalizer = root["normalizer"]
        if let type = normalizer?["type"]?.stringValue, type != "BertNormalizer" {
            throw ModelError(path, "normalizer.type is \(type); only BertNormalizer is supported")
        }
        if let type = root["pre_tokenizer"]?["type"]?.stringValue, type != "BertPreTokenizer" {
            throw ModelError(path, "pre_tokenizer.type is \(type); only BertPreTokenizer is supported")
        }
        let lowercase = normalizer?["lowercase"]?.boolValue ?? true
        var specials: [(String, Int32)] = []
        for t in root["added_tokens"]?.arrayValue ?? [] {
            guard let content = t["content"]?.stringValue, !content.isEmpty, let id = t["id"]?.int64Value else { continue }
            specials.append((content, Int32(truncatingIfNeeded: id)))
        }
        return try make(vocab: vocab, file: path, lowercase: lowercase,
                        stripAccents: normalizer?["strip_accents"]?.boolValue ?? lowercase,
                        handleChineseChars: normalizer?["handle_chinese_chars"]?.boolValue ?? true,
                        cleanText: normalizer?["clean_text"]?.boolValue ?? true,
                        unknownToken: model["unk_token"]?.stringValue ?? "[UNK]",
                        continuingPrefix: model["continuing_subword_prefix"]?.stringValue ?? "##",
                        maxInputCharsPerWord: model["max_input_chars_per_word"]?.int64Value.map { Int($0) } ?? 100,
                        specials: specials)
    }

    static func fromVocabTxt(_ path: String, config: String) throws(ModelError) -> WordPieceTokenizer {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ModelError(path, "cannot read: \(error.localizedDescription)")
        }
        var vocab: [String: Int32] = [:]
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where !line.isEmpty {
            vocab[String(line.hasSuffix("\r") ? line.dropLast() : line)] = Int32(i)
        }
        let options = FileManager.default.fileExists(atPath: config) ? try readJSON(config) : JSON.object([])
        let lowercase = options["do_lower_case"]?.boolValue ?? true
        let specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"].compactMap { t in vocab[t].map { (t, $0) } }
        return try make(vocab: vocab, file: path, lowercase: lowercase,
                        stripAccents: options["strip_accents"]?.boolValue ?? lowercase,
                        handleChineseChars: options["tokenize_chinese_chars"]?.boolValue ?? true, cleanText: true,
                        unknownToken: "[UNK]", continuingPrefix: "##", maxInputCharsPerWord: 100, specials: specials)
    }

    // swiftlint:disable:next function_parameter_count
    private static func make(vocab: [String: Int32], file: String, lowercase: Bool, stripAccents: Bool,
                             handleChineseChars: Bool, cleanText: Bool, unknownToken: String, continuingPrefix: String,
                             maxInputCharsPerWord: Int, specials: [(String, Int32)]) throws(ModelError) -> WordPieceTokenizer {
        guard let unk = vocab[unknownToken] else { throw ModelError(file, "the vocabulary has no \(unknownToken)") }
        guard let cls = vocab["[CLS]"], let sep = vocab["[SEP]"] else { throw ModelError(file, "the vocabulary has no [CLS] or [SEP]") }
        return WordPieceTokenizer(
            vocab: vocab, lowercase: lowercase, stripAccents: stripAccents, handleChineseChars: handleChineseChars,
            cleanText: cleanText, unknown: unk, cls: cls, sep: sep, continuingPrefix: continuingPrefix,
            maxInputCharsPerWord: maxInputCharsPerWord,
            specials: specials.sorted { $0.0.count > $1.0.count }.map { (text: $0.0, id: $0.1) })
    }
}

/// Reads a JSON file of a model directory.
/// - Throws: ``ModelError`` naming the file when it cannot be read or parsed.
func readJSON(_ path: String) throws(ModelError) -> JSON {
    let data: Data
    do {
        data = try Data(contentsOf: URL(fileURLWithPath: path))
    } catch {
        throw ModelError(path, "cannot read: \(error.localizedDescription)")
    }
    do {
        return try JSONParser.parse(data, maxDepth: 32)
    } catch {
        throw ModelError(path, "not valid JSON: \(error)")
    }
}
