import Foundation
@testable import MnemoServer
import Testing

/// Everything that names methods agrees with ``MethodRegistry``: the JSON Schemas and
/// their examples, the Python client, the reads that take `min_rev`. A method added in one
/// place and forgotten in another fails here (CONTRIBUTING.md lists the places).
@Suite("method registry")
struct MethodRegistryTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test("every method of the registry has a schema and examples, and nothing more")
    func registryAndSchemasAgree() throws {
        let names = Set(Dispatcher.methodNames)
        #expect(names.count == MethodRegistry.all.count, "a method is listed twice")
        let schemas = try FileManager.default.contentsOfDirectory(atPath: Self.root.path + "/schemas/methods")
            .filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.filter { $0 != "event" }
        #expect(Set(schemas) == names, "schemas without a method: \(Set(schemas).subtracting(names)); methods without a schema: \(names.subtracting(schemas))")
        let examples = try FileManager.default.contentsOfDirectory(atPath: Self.root.path + "/schemas/examples")
            .filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }
        #expect(names.isSubset(of: Set(examples)), "methods without examples: \(names.subtracting(examples))")
    }

    @Test("the Python client calls every method")
    func pythonClientCoversEveryMethod() throws {
        let dir = Self.root.path + "/clients/python/mnemo_client"
        var source = ""
        for file in try FileManager.default.contentsOfDirectory(atPath: dir) where file.hasSuffix(".py") {
            source += try String(contentsOfFile: dir + "/" + file, encoding: .utf8)
        }
        let missing = Dispatcher.methodNames.filter { !source.contains("\"\($0)\"") }
        #expect(missing.isEmpty, "methods the Python client never names: \(missing)")
    }

    @Test("every read that takes min_rev and consistency declares them in its schema")
    func freshReadsDeclareTheirParams() throws {
        for entry in MethodRegistry.all where entry.cluster == .freshRead {
            let data = try Data(contentsOf: Self.root.appendingPathComponent("schemas/methods/\(entry.name).json"))
            let schema = try JSONSerialization.jsonObject(with: data) as? [String: Any]
            let params = ((schema?["$defs"] as? [String: Any])?["params"] as? [String: Any])?["properties"] as? [String: Any]
            #expect(params?["min_rev"] != nil && params?["consistency"] != nil, "\(entry.name)")
        }
    }
}
