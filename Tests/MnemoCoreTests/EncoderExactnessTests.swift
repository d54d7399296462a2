import Foundation
import MnemoCore
import MnemoProtocol
import Testing

/// The built-in encoder against sentence-transformers' own output for the same model
/// files (`EncoderReference/make_reference.py` wrote the reference; `make model` fetches
/// the model that `make test` runs with).
@Suite(.serialized) struct EncoderExactnessTests {
    struct Case {
        var text: String
        var ids: [Int32]
        var vector: [Float]
    }

    static let modelDir = ProcessInfo.processInfo.environment["MNEMO_MODEL_DIR"]
        ?? LocalEmbedder.defaultModelsDirectory() + "/" + LocalEmbedder.defaultModel

    static func reference(_ name: String = "all-MiniLM-L6-v2") throws -> (maxLength: Int, cases: [Case]) {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("EncoderReference/\(name).json").path
        let json = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
        let cases = try #require(json["cases"]?.arrayValue).map { c in
            Case(text: c["text"]?.stringValue ?? "",
                 ids: (c["ids"]?.arrayValue ?? []).compactMap { $0.int64Value.map { Int32($0) } },
                 vector: (c["vector"]?.arrayValue ?? []).compactMap { $0.doubleValue.map { Float($0) } })
        }
        return (Int(try #require(json["max_seq_length"]?.int64Value)), cases)
    }

    static func load() throws -> LocalEmbedder {
        do {
            return try LocalEmbedder(directory: modelDir)
        } catch {
            Issue.record("cannot load \(modelDir) (\(error)); \(LocalEmbedder.fetchHint)")
            throw error
        }
    }

    static func cosine(_ a: [Float], _ b: [Float]) -> Float {
        var dot: Float = 0, na: Float = 0, nb: Float = 0
        for i in 0..<min(a.count, b.count) {
            dot += a[i] * b[i]
            na += a[i] * a[i]
            nb += b[i] * b[i]
        }
        return dot / (na.squareRoot() * nb.squareRoot())
    }

    @Test func tokenIDsAreTheReferenceTokenizers() throws {
        let embedder = try Self.load()
        let ref = try Self.reference()
        #expect(embedder.maxTokens == ref.maxLength)
        for c in ref.cases {
            #expect(embedder.tokenIDs(c.text) == c.ids, "\(c.text)")
        }
    }

    @Test func vectorsAgreeWithSentenceTransformersOneByOneAndAsOneBatch() throws {
        let embedder = try Self.load()
        let ref = try Self.reference()
        #expect(embedder.dims == 384 && embedder.model == "all-MiniLM-L6-v2")
        #expect(ref.cases.count >= 18 && ref.cases.allSatisfy { $0.vector.count == 384 })
        let batch = try embedder.embed(ref.cases.map(\.text), field: "text")
        for (c, b) in zip(ref.cases, batch) {
            let one = try embedder.embed([c.text], field: "text")[0]
            #expect(Self.cosine(one.vector, c.vector) >= 0.9999, "\(c.text): cosine \(Self.cosine(one.vector, c.vector))")
            #expect(Self.cosine(b.vector, c.vector) >= 0.9999, "\(c.text) in a batch: cosine \(Self.cosine(b.vector, c.vector))")
            // No case sits exactly at the limit: reaching it means the text was cut.
            #expect(b.truncated == (c.ids.count == ref.maxLength), "\(c.text)")
        }
    }

    @Test func paraphrasesScoreAboveUnrelatedTexts() throws {
        let e = try Self.load()
        let v = try e.embed(["When is the staging database wiped?", "The staging DB gets reset each night",
                             "Alice prefers tea over coffee"], field: "text").map(\.vector)
        #expect(Self.cosine(v[0], v[1]) > Self.cosine(v[0], v[2]) + 0.3)
    }

    @Test func textWithNothingToEmbedIsInvalidParamsAndFailsTheWholeBatch() throws {
        let e = try Self.load()
        for bad in ["", "   ", "\t\n", "\u{0007}\u{0000}"] {
            #expect(throws: WireError.self) { try e.embed([bad], field: "text") }
            do {
                _ = try e.embed(["fine text", bad], field: "text")
                Issue.record("\(bad.debugDescription) was embedded")
            } catch {
                #expect(error.code == -32602)
            }
        }
    }

    /// The same model with CLS pooling (how BGE models pool), against sentence-transformers
    /// loading the same variant (`make_reference.py` builds it the same way).
    @Test func clsPoolingAgreesWithSentenceTransformers() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mnemo-cls-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/1_Pooling", withIntermediateDirectories: true)
        for name in try FileManager.default.contentsOfDirectory(atPath: Self.modelDir) where name != "1_Pooling" {
            try FileManager.default.createSymbolicLink(atPath: dir + "/" + name, withDestinationPath: Self.modelDir + "/" + name)
        }
        try #"{"word_embedding_dimension": 384, "pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false}"#
            .write(toFile: dir + "/1_Pooling/config.json", atomically: true, encoding: .utf8)
        let cls = try LocalEmbedder(directory: dir, name: "minilm-cls")
        let ref = try Self.reference("all-MiniLM-L6-v2-cls")
        #expect(cls.model == "minilm-cls" && ref.cases.count >= 18)
        let got = try cls.embed(ref.cases.map(\.text), field: "text")
        for (c, g) in zip(ref.cases, got) {
            #expect(Self.cosine(g.vector, c.vector) >= 0.9999, "\(c.text): cosine \(Self.cosine(g.vector, c.vector))")
        }
        // CLS pooling really is another vector than mean pooling.
        let mean = try Self.load().embed([ref.cases[0].text], field: "text")[0].vector
        #expect(Self.cosine(mean, got[0].vector) < 0.99)
    }
}
