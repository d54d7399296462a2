import Dispatch
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import MnemoProtocol

/// An OpenAI-compatible `/v1/embeddings` endpoint (Ollama, TEI, llama.cpp, vLLM, ...):
/// `POST {"model", "input"}` -> `{"data": [{"embedding": [...]}]}`. A failure is
/// `UNAVAILABLE` with the reason; the daemon never falls back to another model, which
/// would mix incomparable vectors in one collection.
public struct HTTPEmbedder: SingleTextEmbedder {
    /// The endpoint's model name (recorded in each collection).
    public let model: String
    /// Vector length the endpoint returns (checked on every answer).
    public let dims: Int
    let url: URL
    let apiKey: String?
    let timeoutMs: Int

    /// An embedder calling `url` for `model`.
    public init(url: URL, model: String, dims: Int, apiKey: String?, timeoutMs: Int) {
        self.url = url
        self.model = model
        self.dims = dims
        self.apiKey = apiKey
        self.timeoutMs = timeoutMs
    }

    /// - Throws: `UNAVAILABLE` when the endpoint cannot be reached, times out, answers
    ///   with an error status or a malformed body, or returns a vector of other length.
    func embedOne(_ text: String, field: String) throws(WireError) -> [Float] {
        guard !text.isEmpty else { throw .invalidParams(field, "empty text") }
        var request = URLRequest(url: url, timeoutInterval: Double(timeoutMs) / 1000)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        if let apiKey { request.setValue("Bearer \(apiKey)", forHTTPHeaderField: "Authorization") }
        var body = JSONWriter(capacity: text.utf8.count + 64)
        body.raw("{\"model\":")
        body.string(model)
        body.raw(",\"input\":")
        body.string(text)
        body.byte(UInt8(ascii: "}"))
        request.httpBody = Data(body.bytes)
        let outcome = Outcome()
        let done = DispatchSemaphore(value: 0)
        URLSession.shared.dataTask(with: request) { data, response, error in
            outcome.set(data: data, status: (response as? HTTPURLResponse)?.statusCode, error: error)
            done.signal()
        }.resume()
        if done.wait(timeout: .now() + .milliseconds(timeoutMs + 1000)) == .timedOut {
            throw .app(.unavailable, "embedder \(url.absoluteString) did not answer within \(timeoutMs) ms")
        }
        let (data, status, error) = outcome.get()
        if let error { throw .app(.unavailable, "embedder \(url.absoluteString) failed: \(error.localizedDescription)") }
        guard let status, (200..<300).contains(status), let data else {
            throw .app(.unavailable, "embedder \(url.absoluteString) answered HTTP \(status.map(String.init) ?? "without a status")")
        }
        let json: JSON
        do {
            json = try JSONParser.parse(Array(data), maxDepth: 16)
        } catch {
            throw .app(.unavailable, "embedder \(url.absoluteString) answered with invalid JSON")
        }
        guard let first = json.objectValue?.first(where: { $0.key == "data" })?.value.arrayValue?.first,
              let numbers = first.objectValue?.first(where: { $0.key == "embedding" })?.value.arrayValue
        else { throw .app(.unavailable, "embedder \(url.absoluteString) answered without data[0].embedding") }
        let v: [Float]
        do {
            v = try VectorCodec.decode(numbers: numbers, field: "embedding", maxDims: 4096)
        } catch {
            throw .app(.unavailable, "embedder \(url.absoluteString) returned an invalid vector: \(error.message)")
        }
        guard v.count == dims else {
            throw .app(.unavailable, "embedder \(url.absoluteString) returned \(v.count) dimensions, configured \(dims)")
        }
        return v
    }
}

// @unchecked: written once by URLSession's callback before the semaphore is signaled,
// read after waiting on it; the lock covers a late callback after a timeout.
private final class Outcome: @unchecked Sendable {
    private let lock = NSLock()
    private var value: (Data?, Int?, (any Error)?) = (nil, nil, nil)
    func set(data: Data?, status: Int?, error: (any Error)?) { lock.withLock { value = (data, status, error) } }
    func get() -> (Data?, Int?, (any Error)?) { lock.withLock { value } }
}
