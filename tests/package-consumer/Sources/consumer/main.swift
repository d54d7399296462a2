import MnemoClient
import MnemoProtocol

// Writes a key and reads it back through a running mnemod (socket in MNEMO_SOCKET).
let client = try MnemoClient(agent: "consumer")
defer { client.close() }
let written = try client.call("wm.set", ["ns": "consumer", "key": "greeting", "value": "hello from a dependency"])
let read = try client.call("wm.get", ["ns": "consumer", "key": "greeting"])
print(read["value"]?.stringValue ?? "missing", "version", written["version"]?.int64Value ?? -1)
