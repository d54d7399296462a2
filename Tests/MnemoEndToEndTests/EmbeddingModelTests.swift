import Foundation
import MnemoClient
import MnemoCore
import MnemoProtocol
import Testing

/// The built-in encoder as the daemon runs it: the default model, a missing model, a
/// broken model directory, and the configuration's checks.
@Suite("embedding model of the daemon") struct EmbeddingModelTests {
    static let modelDir = ProcessInfo.processInfo.environment["MNEMO_MODEL_DIR"]
        ?? LocalEmbedder.defaultModelsDirectory() + "/" + LocalEmbedder.defaultModel

    /// Runs mnemod expecting it to stop at start: exit status and stderr.
    func refusedStart(config: String, environment: [String: String] = [:]) throws -> (status: Int32, stderr: String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mnemo-model-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try config.write(toFile: dir.path + "/mnemod.toml", atomically: true, encoding: .utf8)
        return try Daemon.runToExit(["--socket", dir.path + "/s.sock", "--data-dir", dir.path + "/data", "--config", dir.path + "/mnemod.toml"],
                                    environment: environment)
    }

    /// A copy of the model directory (symlinks to its files) with `file` replaced by `contents`.
    func brokenModel(_ file: String, _ contents: Data) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mnemo-broken-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir + "/1_Pooling", withIntermediateDirectories: true)
        for f in LocalEmbedder.requiredFiles + ["tokenizer.json"] where f != file {
            try FileManager.default.createSymbolicLink(atPath: dir + "/" + f, withDestinationPath: Self.modelDir + "/" + f)
        }
        try contents.write(to: URL(fileURLWithPath: dir + "/" + file))
        return dir
    }

    @Test func theDefaultModelRecallsAParaphrase() throws {
        let daemon = try Daemon()
        let c = try daemon.client()
        let facts = ["The staging database is reset every night at 02:00 UTC",
                     "Alice prefers answers in French and short bullet lists",
                     "Deploys to production need two approvals in the release channel"]
        for (i, f) in facts.enumerated() { _ = try c.call("sem.upsert", ["ns": "kb/ops", "id": .string("f\(i)"), "text": .string(f)]) }
        let hits = try c.call("sem.search", ["ns": "kb", "text": "when does the test DB get wiped?", "k": 3])["hits"]
        #expect(hits?.arrayValue?.first?["id"] == "f0")
        let stats = try c.call("admin.stats")
        #expect(stats["semantic"]?["embedder"]?.stringValue == LocalEmbedder.defaultModel)
    }

    @Test func aMissingModelAnswersTextCallsUnavailableAndKeepsClientVectors() throws {
        let daemon = try Daemon(environment: ["MNEMO_MODEL_DIR": "/nonexistent/mnemo-model"])
        let c = try daemon.client()
        for (method, params) in [("sem.upsert", ["ns": "kb", "text": "hello"] as JSON), ("sem.search", ["ns": "kb", "text": "hello"])] {
            let e = wireError { try c.call(method, params) }
            #expect(e?.appCode == .unavailable, "\(method)")
            #expect(e?.message.contains("make model") == true, "\(method): \(e?.message ?? "")")
        }
        _ = try c.call("sem.upsert", ["ns": "vec", "text": "v", "vector": [1, 0, 0]])
        #expect(try c.call("sem.search", ["ns": "vec", "vector": [1, 0, 0]])["hits"]?.arrayValue?.count == 1)
        #expect(try c.call("admin.stats")["semantic"]?["records"] == 1)
    }

    @Test func aBrokenModelDirectoryStopsTheDaemonNamingTheFile() throws {
        let config = try Data(contentsOf: URL(fileURLWithPath: Self.modelDir + "/config.json"))
        let wrongHidden = Data(String(decoding: config, as: UTF8.self).replacingOccurrences(of: "\"hidden_size\": 384", with: "\"hidden_size\": 768").utf8)
        let cases: [(file: String, contents: Data, says: String)] = [
            ("model.safetensors", Data(repeating: 7, count: 100), "model.safetensors"),
            ("config.json", wrongHidden, "differs from hidden_size 768"),
            ("config.json", Data("{not json".utf8), "config.json: not valid JSON"),
            ("1_Pooling/config.json", Data(#"{"pooling_mode_max_tokens": true}"#.utf8), "pooling_mode_max_tokens is not supported"),
        ]
        for c in cases {
            let dir = try brokenModel(c.file, c.contents)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let (status, stderr) = try refusedStart(config: "[semantic.embedder]\nmodel_dir = \"\(dir)\"\n")
            #expect(status == 78, "\(c.file): \(stderr)")
            #expect(stderr.contains(c.says), "\(c.file): \(stderr)")
        }
    }

    @Test func embedderKeysAreCheckedByKindAndType() throws {
        let cases: [(String, String)] = [
            ("[semantic.embedder]\nkind = \"hash\"\ndims = \"768\"\n", "dims must be an integer"),
            ("[semantic.embedder]\nurl = \"http://127.0.0.1:1/v1/embeddings\"\n", "url is not a key of kind local"),
            ("[semantic.embedder]\nkind = \"fasttext\"\n", "kind must be local, hash or openai"),
            ("[semantic.embedder]\ndims = 768\n", "has 384 dimensions"),
        ]
        for (config, says) in cases {
            let (status, stderr) = try refusedStart(config: config)
            #expect(status == 78, "\(config): \(stderr)")
            #expect(stderr.contains(says), "\(config): \(stderr)")
        }
    }

    @Test func theCLIRemembersAndRecalls() throws {
        let daemon = try Daemon()
        let stored = try daemon.cli(["remember", "kb/ops", "The staging database is reset every night", "--id", "staging", "--tag", "ops"])
        #expect(stored.status == 0, "\(stored.stderr)")
        #expect(stored.stdout.hasPrefix("staging version "))
        _ = try daemon.cli(["remember", "kb/people", "Alice prefers short answers in French"])
        let found = try daemon.cli(["search", "kb", "when does the staging DB get wiped?", "-k", "1"])
        #expect(found.status == 0, "\(found.stderr)")
        #expect(found.stdout.contains("staging") && found.stdout.contains("kb/ops") && !found.stdout.contains("Alice"))
        let tagged = try daemon.cli(["search", "kb", "French", "--tag", "ops", "-o", "json"])
        #expect(try JSONParser.parse(tagged.stdout)["hits"]?.arrayValue?.map { $0["id"] } == ["staging"])
        let bad = try daemon.cli(["search", "kb", "x", "--mode", "fuzzy"])
        #expect(bad.status == 64)
        let blank = try daemon.cli(["remember", "kb", "   "])
        #expect(blank.status == 2 && blank.stderr.contains("nothing to embed"), "\(blank.stderr)")
        // Validity and conflicts: a contradicting fact supersedes the old one; --as-of recalls it.
        let old = try daemon.cli(["remember", "kb/ops", "The staging database is reset every Sunday", "--id", "reset",
                                  "--valid-from", "2026-01-01T00:00:00.000Z"])
        #expect(old.status == 0, "\(old.stderr)")
        // The same sentence but for its punctuation scores near 1 and states it otherwise: refused.
        let clash = try daemon.cli(["remember", "kb/ops", "The staging database is reset every Sunday!", "--on-conflict", "reject"])
        #expect(clash.status != 0 && clash.stderr.contains("CONFLICT") && clash.stderr.contains("reset"), "\(clash.stderr)")
        let new = try daemon.cli(["remember", "kb/ops", "The staging database is reset every Monday", "--supersedes", "reset",
                                  "--valid-from", "2026-06-01T00:00:00.000Z"])
        #expect(new.status == 0 && new.stderr.contains("superseded: reset"), "\(new.stderr)")
        let then = try daemon.cli(["search", "kb/ops", "when is staging reset?", "--as-of", "2026-03-01T00:00:00.000Z",
                                   "-k", "1", "-o", "json"])
        #expect(try JSONParser.parse(then.stdout)["hits"]?.arrayValue?.first?["id"] == "reset", "\(then.stdout)")
        let episodesThen = try daemon.cli(["search", "kb", "x", "--episodes", "--as-of", "2026-03-01T00:00:00.000Z"])
        #expect(episodesThen.status == 64)
    }
}
