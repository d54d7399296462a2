/// A decoded JSON-RPC 2.0 request.
public struct RPCRequest: Sendable {
    /// The request id; nil for a notification (which gets no response).
    public var id: JSON?
    /// The method name, e.g. `wm.get`.
    public var method: String
    /// The named parameters (an empty object when absent).
    public var params: Params
}

/// One element of a line: a request, or the error to answer for an unusable one.
public enum RPCItem: Sendable {
    /// A well-formed request.
    case request(RPCRequest)
    /// Not a valid request; answered with `error` under `id` (null when unknown).
    case invalid(id: JSON, error: WireError)
    /// A notification the server does not run: positional (array) params, which the
    /// JSON-RPC 2.0 specification allows and Mnemo's by-name methods cannot take. A
    /// notification is never answered, not even with an error: nothing is done, nothing sent.
    case ignored
}

/// What one line of input holds.
public enum RPCLine: Sendable {
    /// A single request.
    case single(RPCItem)
    /// A batch: the reply is one array with the responses of the non-notifications.
    case batch([RPCItem])
    /// The line is unusable as a whole (not JSON, too deep, empty batch, batch too large).
    case failure(WireError)
}

/// JSON-RPC 2.0 framing: decoding request lines and writing response lines.
public enum RPC {
    /// Decodes one line (without its `\n`).
    public static func decode(line: UnsafeBufferPointer<UInt8>, maxDepth: Int, maxBatch: Int) -> RPCLine {
        let json: JSON
        do {
            json = try JSONParser.parse(line, maxDepth: maxDepth)
        } catch {
            switch error.kind {
            case .syntax: return .failure(.parse("parse error: \(error)"))
            case .tooDeep(let max): return .failure(.limit("max_depth", max: max, "JSON nesting deeper than \(max)"))
            }
        }
        switch json {
        case .array(let elements):
            if elements.isEmpty { return .failure(.invalidRequest("empty batch")) }
            if elements.count > maxBatch {
                return .failure(.limit("max_batch", max: maxBatch, "batch of \(elements.count) requests exceeds \(maxBatch)"))
            }
            return .batch(elements.map(item))
        default:
            return .single(item(json))
        }
    }

    /// Validates one request object.
    static func item(_ json: JSON) -> RPCItem {
        guard case .object(let members) = json else {
            return .invalid(id: .null, error: .invalidRequest("a request must be a JSON object"))
        }
        var id: JSON? = nil
        var method: String? = nil
        var params: [JSONMember]? = nil
        var version: JSON? = nil
        var badParams = false
        var positional = false
        for m in members {
            switch m.key {
            case "jsonrpc": version = m.value
            case "id": id = m.value
            case "method": method = m.value.stringValue
                if method == nil { return .invalid(id: usableID(id ?? json["id"]), error: .invalidRequest("method must be a string")) }
            case "params":
                switch m.value {
                case .object(let p): params = p
                case .null: params = []
                case .array: positional = true
                default: badParams = true
                }
            default:
                return .invalid(id: usableID(id ?? json["id"]), error: .invalidRequest("unknown request member \"\(m.key)\""))
            }
        }
        if let id {
            switch id {
            case .number, .string, .null: break
            default: return .invalid(id: .null, error: .invalidRequest("id must be a number, a string or null"))
            }
        }
        guard version == .string("2.0") else {
            return .invalid(id: id ?? .null, error: .invalidRequest("jsonrpc must be \"2.0\""))
        }
        guard let method else { return .invalid(id: id ?? .null, error: .invalidRequest("method is missing")) }
        if badParams || positional {
            if let id { return .invalid(id: id, error: .invalidParams(nil, "params must be an object (by-name parameters)")) }
            // Without an id: an array makes a valid notification (never answered), while a
            // scalar makes no valid request at all (the specification: params "MUST be a
            // structured value"), which is answered like any invalid request.
            if positional { return .ignored }
            return .invalid(id: .null, error: .invalidRequest("params must be an object or an array"))
        }
        return .request(RPCRequest(id: id, method: method, params: Params(params ?? [])))
    }

    private static func usableID(_ id: JSON?) -> JSON {
        switch id {
        case .number?, .string?: return id ?? .null
        default: return .null
        }
    }

    /// Writes `{"jsonrpc":"2.0","id":ID,"result":` ; the caller writes the result and then
    /// calls ``endResult(_:)``.
    public static func beginResult(id: JSON, _ w: inout JSONWriter) {
        w.raw("{\"jsonrpc\":\"2.0\",\"id\":")
        w.value(id)
        w.raw(",\"result\":")
    }

    /// Closes a response begun with ``beginResult(id:_:)``.
    public static func endResult(_ w: inout JSONWriter) { w.byte(UInt8(ascii: "}")) }

    /// Writes a whole error response.
    public static func writeError(id: JSON, _ error: WireError, _ w: inout JSONWriter) {
        w.raw("{\"jsonrpc\":\"2.0\",\"id\":")
        w.value(id)
        w.raw(",\"error\":")
        error.write(to: &w)
        w.byte(UInt8(ascii: "}"))
    }

    /// Writes a server notification `{"jsonrpc":"2.0","method":M,"params":P}`.
    public static func writeNotification(method: String, params: JSON, _ w: inout JSONWriter) {
        w.raw("{\"jsonrpc\":\"2.0\",\"method\":")
        w.string(method)
        w.raw(",\"params\":")
        w.value(params)
        w.byte(UInt8(ascii: "}"))
    }
}
