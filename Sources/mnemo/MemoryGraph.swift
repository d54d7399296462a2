import MnemoClient
import MnemoProtocol

/// The knowledge graph of the official MCP memory server (entities with observations,
/// relations between them), kept in Mnemo's working memory so that several processes share
/// one graph without losing writes. That server keeps the graph in one JSONL file that each
/// process reads whole and rewrites whole, so two of them on the same file lose each
/// other's changes; here each entity is one key (`e/NAME`) and each relation one key
/// (`r/["FROM","TYPE","TO"]`) of one namespace, created with `if_absent` and changed with
/// compare-and-set (retried on `CONFLICT`), and durable like any key.
struct MemoryGraph {
    let ns: String
    let call: (String, JSON) throws -> JSON

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    // MARK: the official server's operations

    /// Creates the entities whose name is not taken; returns those created.
    func createEntities(_ entities: [JSON]) throws -> JSON {
        var created: [JSON] = []
        for e in entities {
            let entity = try Self.entity(e)
            guard let name = entity["name"]?.stringValue else { continue }
            if try setIfAbsent(entityKey(name), entity) { created.append(entity) }
        }
        return .array(created)
    }

    /// Creates the relations not already there; returns those created.
    func createRelations(_ relations: [JSON]) throws -> JSON {
        var created: [JSON] = []
        for r in relations {
            let relation = try Self.relation(r)
            if try setIfAbsent(relationKey(relation), relation) { created.append(relation) }
        }
        return .array(created)
    }

    /// Adds the observations an entity does not have yet; returns what each one got.
    func addObservations(_ additions: [JSON]) throws -> JSON {
        var out: [JSON] = []
        for a in additions {
            guard let name = a["entityName"]?.stringValue, let contents = a["contents"]?.arrayValue else {
                throw Failure(description: "each observation needs entityName (string) and contents (array of strings)")
            }
            let texts = try Self.strings(contents, "contents")
            var added: [String] = []
            try update(name) { observations in
                added = []
                for t in texts where !observations.contains(t) && !added.contains(t) { added.append(t) }
                observations += added
            }
            out.append(.object([JSONMember("entityName", .string(name)),
                                JSONMember("addedObservations", .array(added.map { .string($0) }))]))
        }
        return .array(out)
    }

    /// Deletes entities and every relation from or to them.
    func deleteEntities(_ names: [String]) throws -> JSON {
        let doomed = Swift.Set(names)
        for name in names { _ = try call("wm.del", .object([JSONMember("ns", .string(ns)), JSONMember("key", .string(entityKey(name)))])) }
        for (key, relation) in try values(prefix: "r/") {
            if doomed.contains(relation["from"]?.stringValue ?? "") || doomed.contains(relation["to"]?.stringValue ?? "") {
                _ = try call("wm.del", .object([JSONMember("ns", .string(ns)), JSONMember("key", .string(key))]))
            }
        }
        return .string("Entities deleted successfully")
    }

    /// Removes observations from entities (a missing entity is skipped, as the original does).
    func deleteObservations(_ deletions: [JSON]) throws -> JSON {
        for d in deletions {
            guard let name = d["entityName"]?.stringValue, let list = d["observations"]?.arrayValue else {
                throw Failure(description: "each deletion needs entityName (string) and observations (array of strings)")
            }
            let gone = Swift.Set(try Self.strings(list, "observations"))
            do {
                try update(name) { observations in observations.removeAll { gone.contains($0) } }
            } catch let f as Failure where f.description.hasSuffix("not found") {
                continue
            }
        }
        return .string("Observations deleted successfully")
    }

    /// Deletes relations.
    func deleteRelations(_ relations: [JSON]) throws -> JSON {
        for r in relations {
            let key = relationKey(try Self.relation(r))
            _ = try call("wm.del", .object([JSONMember("ns", .string(ns)), JSONMember("key", .string(key))]))
        }
        return .string("Relations deleted successfully")
    }

    /// The whole graph.
    func readGraph() throws -> JSON {
        let entities = try values(prefix: "e/").map(\.1)
        let relations = try values(prefix: "r/").map(\.1)
        return Self.graph(entities, relations)
    }

    /// Entities whose name, type or an observation contains `query` (case-insensitively),
    /// and the relations between them.
    func searchNodes(_ query: String) throws -> JSON {
        let q = query.lowercased()
        let entities = try values(prefix: "e/").map(\.1).filter { e in
            [e["name"], e["entityType"]].contains { $0?.stringValue?.lowercased().contains(q) == true }
                || (e["observations"]?.arrayValue ?? []).contains { $0.stringValue?.lowercased().contains(q) == true }
        }
        return try subgraph(entities)
    }

    /// The named entities and the relations between them.
    func openNodes(_ names: [String]) throws -> JSON {
        var entities: [JSON] = []
        for name in names {
            let got = try call("wm.get", .object([JSONMember("ns", .string(ns)), JSONMember("key", .string(entityKey(name)))]))
            if got["found"]?.boolValue == true, let value = got["value"] { entities.append(value) }
        }
        return try subgraph(entities)
    }

    // MARK: importing the original server's file

    /// Imports a memory server JSONL file (`{"type":"entity",...}` and
    /// `{"type":"relation",...}` lines): entities are created, or get the observations they
    /// lack; relations are created. Importing twice changes nothing.
    /// - Returns: counts of entities created, entities that gained observations, relations created.
    func importFile(_ text: String) throws -> (entities: Int, updated: Int, relations: Int) {
        var counts = (entities: 0, updated: 0, relations: 0)
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
            let record: JSON
            do { record = try JSONParser.parse(String(line)) } catch {
                throw Failure(description: "line \(i + 1): not JSON: \(error)")
            }
            do {
                switch record["type"]?.stringValue {
                case "entity":
                    let entity = try Self.entity(record)
                    let name = entity["name"]?.stringValue ?? ""
                    if try setIfAbsent(entityKey(name), entity) {
                        counts.entities += 1
                    } else {
                        let added = try addObservations([.object([JSONMember("entityName", .string(name)),
                                                                  JSONMember("contents", entity["observations"] ?? .array([]))])])
                        if added.arrayValue?.first?["addedObservations"]?.arrayValue?.isEmpty == false { counts.updated += 1 }
                    }
                case "relation":
                    if try setIfAbsent(relationKey(try Self.relation(record)), try Self.relation(record)) { counts.relations += 1 }
                default:
                    throw Failure(description: "type must be entity or relation")
                }
            } catch let f as Failure {
                throw Failure(description: "line \(i + 1): \(f.description)")
            }
        }
        return counts
    }

    // MARK: storage

    private func entityKey(_ name: String) -> String { "e/" + name }

    private func relationKey(_ r: JSON) -> String {
        "r/" + JSON.array([r["from"] ?? .null, r["relationType"] ?? .null, r["to"] ?? .null]).text
    }

    /// Sets `key` unless it exists; whether it was set.
    private func setIfAbsent(_ key: String, _ value: JSON) throws -> Bool {
        do {
            _ = try call("wm.set", .object([JSONMember("ns", .string(ns)), JSONMember("key", .string(key)),
                                            JSONMember("value", value), JSONMember("if_absent", .bool(true))]))
            return true
        } catch ClientError.server(let e) where e.appCode == .conflict {
            return false
        }
    }

    /// Changes an entity's observations by compare-and-set, again after a concurrent change.
    private func update(_ name: String, _ change: (inout [String]) -> Void) throws {
        let key = entityKey(name)
        while true {
            let got = try call("wm.get", .object([JSONMember("ns", .string(ns)), JSONMember("key", .string(key))]))
            guard got["found"]?.boolValue == true, let value = got["value"], let version = got["version"] else {
                throw Failure(description: "Entity with name \(name) not found")
            }
            var observations = (value["observations"]?.arrayValue ?? []).compactMap(\.stringValue)
            let before = observations
            change(&observations)
            if observations == before { return }
            let updated = JSON.object([JSONMember("name", .string(name)), JSONMember("entityType", value["entityType"] ?? .string("")),
                                       JSONMember("observations", .array(observations.map { .string($0) }))])
            do {
                _ = try call("wm.set", .object([JSONMember("ns", .string(ns)), JSONMember("key", .string(key)),
                                                JSONMember("value", updated), JSONMember("if_version", version)]))
                return
            } catch ClientError.server(let e) where e.appCode == .conflict {
                continue  // another process changed it in between: read it again
            }
        }
    }

    /// Every key under `prefix` with its value, in key order.
    private func values(prefix: String) throws -> [(String, JSON)] {
        var out: [(String, JSON)] = []
        var cursor: JSON?
        repeat {
            var params = [JSONMember("ns", .string(ns)), JSONMember("prefix", .string(prefix)), JSONMember("limit", .int(1000))]
            if let cursor { params.append(JSONMember("cursor", cursor)) }
            let page = try call("wm.list", .object(params))
            for item in page["items"]?.arrayValue ?? [] {
                guard let key = item["key"]?.stringValue else { continue }
                let got = try call("wm.get", .object([JSONMember("ns", .string(ns)), JSONMember("key", .string(key))]))
                if got["found"]?.boolValue == true, let value = got["value"] { out.append((key, value)) }
            }
            cursor = page["cursor"].flatMap { $0.isNull ? nil : $0 }
        } while cursor != nil
        return out
    }

    private func subgraph(_ entities: [JSON]) throws -> JSON {
        let names = Swift.Set(entities.compactMap { $0["name"]?.stringValue })
        let relations = try values(prefix: "r/").map(\.1).filter {
            names.contains($0["from"]?.stringValue ?? "") && names.contains($0["to"]?.stringValue ?? "")
        }
        return Self.graph(entities, relations)
    }

    private static func graph(_ entities: [JSON], _ relations: [JSON]) -> JSON {
        .object([JSONMember("entities", .array(entities)), JSONMember("relations", .array(relations))])
    }

    // MARK: checking what a host sends

    private static func entity(_ e: JSON) throws -> JSON {
        guard let name = e["name"]?.stringValue, !name.isEmpty, let type = e["entityType"]?.stringValue else {
            throw Failure(description: "an entity needs name (non-empty string) and entityType (string)")
        }
        let observations = try strings(e["observations"]?.arrayValue ?? [], "observations")
        return .object([JSONMember("name", .string(name)), JSONMember("entityType", .string(type)),
                        JSONMember("observations", .array(observations.map { .string($0) }))])
    }

    private static func relation(_ r: JSON) throws -> JSON {
        guard let from = r["from"]?.stringValue, let to = r["to"]?.stringValue, let type = r["relationType"]?.stringValue else {
            throw Failure(description: "a relation needs from, to and relationType (strings)")
        }
        return .object([JSONMember("from", .string(from)), JSONMember("to", .string(to)), JSONMember("relationType", .string(type))])
    }

    static func strings(_ values: [JSON], _ field: String) throws -> [String] {
        try values.map { v in
            guard let s = v.stringValue else { throw Failure(description: "\(field) must hold strings") }
            return s
        }
    }
}

extension BridgeTool {
    /// The official MCP memory server's tools, with its names and arguments
    /// (`mnemo mcp --memory-server-compat`), on a ``MemoryGraph`` in the bridge's namespace.
    static let memoryServer: [BridgeTool] = [
        graphTool("create_entities", "Create multiple new entities in the knowledge graph",
                  [.init(name: "entities", type: "array", description: "Entities: {name, entityType, observations}", required: true)],
                  readOnly: false) { g, a in try g.createEntities(try array(a, "entities")) },
        graphTool("create_relations", "Create multiple new relations between entities in the knowledge graph. Relations should be in active voice",
                  [.init(name: "relations", type: "array", description: "Relations: {from, to, relationType}", required: true)],
                  readOnly: false) { g, a in try g.createRelations(try array(a, "relations")) },
        graphTool("add_observations", "Add new observations to existing entities in the knowledge graph",
                  [.init(name: "observations", type: "array", description: "Additions: {entityName, contents}", required: true)],
                  readOnly: false) { g, a in try g.addObservations(try array(a, "observations")) },
        graphTool("delete_entities", "Delete multiple entities and their associated relations from the knowledge graph",
                  [.init(name: "entityNames", type: "array", description: "Names of the entities to delete", required: true)],
                  readOnly: false) { g, a in try g.deleteEntities(try strings(a, "entityNames")) },
        graphTool("delete_observations", "Delete specific observations from entities in the knowledge graph",
                  [.init(name: "deletions", type: "array", description: "Deletions: {entityName, observations}", required: true)],
                  readOnly: false) { g, a in try g.deleteObservations(try array(a, "deletions")) },
        graphTool("delete_relations", "Delete multiple relations from the knowledge graph",
                  [.init(name: "relations", type: "array", description: "Relations: {from, to, relationType}", required: true)],
                  readOnly: false) { g, a in try g.deleteRelations(try array(a, "relations")) },
        graphTool("read_graph", "Read the entire knowledge graph", [], readOnly: true) { g, _ in try g.readGraph() },
        graphTool("search_nodes", "Search for nodes in the knowledge graph based on a query",
                  [.init(name: "query", type: "string", description: "Matched against entity names, types and observation content", required: true)],
                  readOnly: true) { g, a in try g.searchNodes(a.first { $0.key == "query" }?.value.stringValue ?? "") },
        graphTool("open_nodes", "Open specific nodes in the knowledge graph by their names",
                  [.init(name: "names", type: "array", description: "Entity names to retrieve", required: true)],
                  readOnly: true) { g, a in try g.openNodes(try strings(a, "names")) },
    ]

    private static func graphTool(_ name: String, _ description: String, _ arguments: [Argument], readOnly: Bool,
                                  _ body: @escaping @Sendable (MemoryGraph, [JSONMember]) throws -> JSON) -> BridgeTool {
        BridgeTool(name: name, description: description, arguments: arguments, readOnly: readOnly) { args, ns, call in
            try withoutActuallyEscaping(call) { call in try body(MemoryGraph(ns: ns, call: call), args) }
        }
    }

    private static func strings(_ args: [JSONMember], _ name: String) throws -> [String] {
        try MemoryGraph.strings(try array(args, name), name)
    }

    private static func array(_ args: [JSONMember], _ name: String) throws -> [JSON] {
        guard let a = args.first(where: { $0.key == name })?.value.arrayValue else {
            throw MemoryGraph.Failure(description: "\(name) must be an array")
        }
        return a
    }
}
