/// The application error names of the wire contract, carried in `error.data.code` with
/// JSON-RPC code -32000.
public enum ErrorCode: String, Sendable, CaseIterable {
    case unauthenticated = "UNAUTHENTICATED"
    case forbidden = "FORBIDDEN"
    case notFound = "NOT_FOUND"
    case conflict = "CONFLICT"
    case claimed = "CLAIMED"
    case fenced = "FENCED"
    case idempotencyMismatch = "IDEMPOTENCY_MISMATCH"
    case invalidTransition = "INVALID_TRANSITION"
    case dimensionMismatch = "DIMENSION_MISMATCH"
    case limitExceeded = "LIMIT_EXCEEDED"
    case unavailable = "UNAVAILABLE"
    case shuttingDown = "SHUTTING_DOWN"
    /// A tier's stored data is damaged: its calls are refused (`data.tier` names it) until
    /// it is repaired; the other tiers go on.
    case corrupt = "CORRUPT"
    /// A barrier generation broke (its deadline passed before every party arrived).
    case broken = "BROKEN"
}

/// Every error that reaches a client: one JSON-RPC error object.
///
/// Each case maps to exactly one wire code; `message` is for people, `data` for programs.
/// An error means nothing was applied.
public struct WireError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The JSON-RPC `error.code`.
    public var code: Int
    /// The JSON-RPC `error.message`.
    public var message: String
    /// The JSON-RPC `error.data` members (for application errors, `code` comes first).
    public var data: [JSONMember]

    /// An error with explicit fields.
    public init(code: Int, message: String, data: [JSONMember] = []) {
        self.code = code
        self.message = message
        self.data = data
    }

    /// -32700: the line is not JSON.
    public static func parse(_ message: String) -> WireError { WireError(code: -32700, message: message) }
    /// -32600: JSON, but not a JSON-RPC request.
    public static func invalidRequest(_ message: String) -> WireError { WireError(code: -32600, message: message) }
    /// -32601: no such method.
    public static func methodNotFound(_ method: String) -> WireError {
        WireError(code: -32601, message: "method not found: \(method)", data: [JSONMember("method", .string(method))])
    }
    /// -32602: a parameter is missing, unknown, or of the wrong type or range.
    public static func invalidParams(_ field: String?, _ reason: String) -> WireError {
        var data: [JSONMember] = []
        if let field { data.append(JSONMember("field", .string(field))) }
        data.append(JSONMember("reason", .string(reason)))
        return WireError(code: -32602, message: field.map { "invalid params: \($0): \(reason)" } ?? "invalid params: \(reason)", data: data)
    }
    /// -32603: a bug or an unexpected failure inside the server.
    public static func `internal`(_ message: String) -> WireError { WireError(code: -32603, message: message) }

    /// -32000 with `data.code` = `name` plus details.
    public static func app(_ name: ErrorCode, _ message: String, _ details: [JSONMember] = []) -> WireError {
        WireError(code: -32000, message: message, data: [JSONMember("code", .string(name.rawValue))] + details)
    }

    /// LIMIT_EXCEEDED naming the limit and its value.
    public static func limit(_ name: String, max: Int, _ message: String) -> WireError {
        .app(.limitExceeded, message, [JSONMember("limit", .string(name)), JSONMember("max", .int(max))])
    }

    /// The application error name, when this is an application error.
    public var appCode: ErrorCode? {
        guard code == -32000, case .string(let name)? = data.first(where: { $0.key == "code" })?.value else { return nil }
        return ErrorCode(rawValue: name)
    }

    /// A data member by name.
    public func detail(_ key: String) -> JSON? { data.first(where: { $0.key == key })?.value }

    /// The JSON-RPC error object.
    public func write(to w: inout JSONWriter) {
        w.raw("{\"code\":")
        w.int(code)
        w.raw(",\"message\":")
        w.string(message)
        if !data.isEmpty {
            w.raw(",\"data\":")
            w.value(.object(data))
        }
        w.byte(UInt8(ascii: "}"))
    }

    /// Reads an error object received from a server.
    public init?(json: JSON) {
        guard let code = json["code"]?.int64Value, let message = json["message"]?.stringValue else { return nil }
        self.init(code: Int(code), message: message, data: json["data"]?.objectValue ?? [])
    }

    /// `message` plus the application name, e.g. `CONFLICT: version check failed`.
    public var description: String {
        if let appCode { return "\(appCode.rawValue): \(message)" }
        return "\(message) (\(code))"
    }
}
