import Foundation
@testable import MnemoServer
import Testing

/// The lists that name every method agree: the dispatcher's, the access table, the JSON
/// Schemas, the Python client and the CLI's escape hatch. A method added in one place and
/// forgotten in another fails here (CONTRIBUTING.md lists the places).
@Suite("method registry")
struct MethodRegistryTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test("every method the dispatcher serves has an access rule and a schema, and nothing more")
    func dispatcherAccessAndSchemasAgree() throws {
        let names = Set(Dispatcher.methodNames)
        #expect(names.count == Dispatcher.methodNames.count, "a method is listed twice")
        #expect(Set(MethodAccess.table.keys) == names)
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
}
