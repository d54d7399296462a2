import Foundation
import MnemoClient
import MnemoProtocol
import Testing

@Suite("framing and sessions against a real mnemod")
struct FramingTests {
    let daemon: Daemon
    init() throws { daemon = try Daemon() }

    @Test func onlyHelloAndHealthBeforeHello() throws {
        let c = try MnemoClient(socketPath: daemon.socket)
        #expect(try c.call("admin.health")["status"] == "ok")
        let e = wireError { try c.call("wm.get", ["ns": "a", "key": "b"]) }
        #expect(e?.appCode == .unauthenticated)
        _ = try c.call("session.hello", ["agent": "x"])
        #expect(try c.call("wm.get", ["ns": "a", "key": "b"])["found"] == false)
        // A second hello on the same connection is refused.
        #expect(wireError { try c.call("session.hello", ["agent": "y"]) }?.code == -32600)
    }

    @Test func helloRejectsBadAgentsAndUnknownFields() throws {
        let c = try MnemoClient(socketPath: daemon.socket)
        #expect(wireError { try c.call("session.hello", ["agent": "bad name"]) }?.code == -32602)
        #expect(wireError { try c.call("session.hello", [:]) }?.code == -32602)
        #expect(wireError { try c.call("session.hello", ["agent": "a", "provenance": ["agent": "boss"]]) }?.code == -32602)
        let hello = try c.call("session.hello", ["agent": "ok-agent"])
        #expect(hello["agent"] == "ok-agent")
        #expect(hello["peer"]?["pid"]?.int64Value == Int64(getpid()))
        #expect(hello["limits"]?["max_batch"]?.int64Value == 1000)
    }

    @Test func badLinesGetErrorsAndTheConnectionSurvives() throws {
        let raw = try RawConnection(daemon.socket)
        raw.send("not json\n")
        #expect(raw.readJSON()?["error"]?["code"] == -32700)
        raw.send([0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D, 0x0A])  // {"\xFF":1} invalid UTF-8
        #expect(raw.readJSON()?["error"]?["code"] == -32700)
        raw.send("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"no.such\"}\n")
        let missing = raw.readJSON()
        #expect(missing?["id"] == 7)
        #expect(missing?["error"]?["code"] == -32601)
        raw.send("{\"jsonrpc\":\"1.0\",\"id\":8,\"method\":\"admin.health\"}\n")
        #expect(raw.readJSON()?["error"]?["code"] == -32600)
        raw.send("[]\n")
        #expect(raw.readJSON()?["error"]?["code"] == -32600)
        raw.send(String(repeating: "[", count: 65) + String(repeating: "]", count: 65) + "\n")
        #expect(raw.readJSON()?["error"]?["data"]?["limit"] == "max_depth")
        raw.send("{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"admin.health\"}\n")
        #expect(raw.readJSON()?["result"]?["status"] == "ok")
    }

    @Test func overlongLinesAreRefusedWithoutClosing() throws {
        let raw = try RawConnection(daemon.socket)
        // Before hello the line limit is 16 KiB.
        raw.send("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"admin.health\",\"params\":{\"x\":\"" + String(repeating: "a", count: 20_000) + "\"}}\n")
        let e = raw.readJSON()
        #expect(e?["error"]?["data"]?["code"] == "LIMIT_EXCEEDED")
        #expect(e?["error"]?["data"]?["limit"] == "max_line_bytes_before_hello")
        raw.send("{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"session.hello\",\"params\":{\"agent\":\"big\"}}\n")
        #expect(raw.readJSON()?["id"] == 2)
        // After hello, 20 KB is fine and 2 MiB is over the 1 MiB limit.
        raw.send("{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"wm.set\",\"params\":{\"ns\":\"n\",\"key\":\"k\",\"value\":\"" + String(repeating: "a", count: 20_000) + "\"}}\n")
        #expect(raw.readJSON()?["result"]?["version"] != nil)
        raw.send("{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"wm.set\",\"params\":{\"ns\":\"n\",\"key\":\"k\",\"value\":\"" + String(repeating: "b", count: 2 << 20) + "\"}}\n")
        #expect(raw.readJSON()?["error"]?["data"]?["limit"] == "max_line_bytes")
        raw.send("{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"wm.get\",\"params\":{\"ns\":\"n\",\"key\":\"k\"}}\n")
        let got = raw.readJSON()
        #expect(got?["id"] == 5)
        #expect(got?["result"]?["value"]?.stringValue?.count == 20_000)
    }

    @Test func batchesNotificationsAndPipelining() throws {
        let raw = try RawConnection(daemon.socket)
        raw.send("{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"session.hello\",\"params\":{\"agent\":\"p\"}}\n")
        #expect(raw.readJSON()?["id"] == 0)
        // A batch: one reply line with the non-notification responses, in order.
        raw.send("[{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":\"wm.set\",\"params\":{\"ns\":\"b\",\"key\":\"k\",\"value\":1}},"
            + "{\"jsonrpc\":\"2.0\",\"method\":\"wm.set\",\"params\":{\"ns\":\"b\",\"key\":\"k2\",\"value\":2}},"
            + "{\"jsonrpc\":\"2.0\",\"id\":\"c\",\"method\":\"wm.get\",\"params\":{\"ns\":\"b\",\"key\":\"k2\"}}, 5]\n")
        let batch = raw.readJSON()?.arrayValue
        #expect(batch?.count == 3)
        #expect(batch?[0]["id"] == "a")
        #expect(batch?[1]["result"]?["value"] == 2)  // the notification in the batch was applied
        #expect(batch?[2]["error"]?["code"] == -32600)
        // A notification alone gets no reply; pipelined requests come back in order.
        var lines = "{\"jsonrpc\":\"2.0\",\"method\":\"wm.set\",\"params\":{\"ns\":\"b\",\"key\":\"n\",\"value\":0}}\n"
        for i in 1...200 {
            lines += "{\"jsonrpc\":\"2.0\",\"id\":\(i),\"method\":\"wm.set\",\"params\":{\"ns\":\"b\",\"key\":\"n\",\"value\":\(i)}}\n"
        }
        raw.send(lines)
        for i in 1...200 {
            let r = raw.readJSON()
            #expect(r?["id"]?.int64Value == Int64(i))
        }
    }

    @Test func peerClosingAfterSendingStillGetsReplies() throws {
        let raw = try RawConnection(daemon.socket)
        raw.send("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"admin.health\"}\n")
        shutdown(raw.fd, Int32(SHUT_WR))
        #expect(raw.readJSON()?["result"]?["status"] == "ok")
        #expect(raw.isClosedByPeer())
    }
}
