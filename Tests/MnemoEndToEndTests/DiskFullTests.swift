import Foundation
import MnemoClient
import MnemoProtocol
import Testing

/// Whether this machine lets us mount a small tmpfs (root in a permissive sandbox).
private let canMountTmpfs: Bool = {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mnemo-mount-probe-\(getpid())").path
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    guard run("/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", dir]) == 0 else { return false }
    return run("/bin/umount", [dir]) == 0
}()

@discardableResult
private func run(_ tool: String, _ args: [String]) -> Int32 {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: tool)
    p.arguments = args
    p.standardError = Pipe()
    p.standardOutput = Pipe()
    guard (try? p.run()) != nil else { return -1 }
    p.waitUntilExit()
    return p.terminationStatus
}

@Suite("disk full")
struct DiskFullTests {
    @Test(.enabled(if: canMountTmpfs, "needs permission to mount a tmpfs"))
    func writesFailCleanlyWhenTheDiskIsFullAndResumeWhenSpaceReturns() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mnemo-diskfull-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let data = dir.appendingPathComponent("data").path
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        #expect(run("/bin/mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", data]) == 0)
        defer {
            run("/bin/umount", ["-l", data])
            try? FileManager.default.removeItem(at: dir)
        }
        // A filler takes most of the space; removing it later gives space back.
        let filler = data + "/filler"
        let created = FileManager.default.createFile(atPath: filler, contents: Data(repeating: 7, count: 1_500_000))
        #expect(created)
        let daemon = try Daemon(config: "durability = \"strict\"\n", dir: dir)
        let c = try daemon.client()
        _ = try c.call("wm.set", ["ns": "d", "key": "k", "value": "first"])
        let big = String(repeating: "v", count: 8000)
        var unavailable: WireError? = nil
        for i in 0..<2000 {
            do {
                _ = try c.call("wm.set", ["ns": "d", "key": .string("fill\(i)"), "value": .string(big)])
            } catch ClientError.server(let e) {
                unavailable = e
                break
            }
        }
        let e = try #require(unavailable)
        #expect(e.appCode == .unavailable)
        // Not applied, not acknowledged; reads go on.
        #expect(wireError { try c.call("wm.set", ["ns": "d", "key": "k", "value": .string(big)]) }?.appCode == .unavailable)
        #expect(try c.call("wm.get", ["ns": "d", "key": "k"])["value"] == "first")
        // Space returns: writes resume.
        try FileManager.default.removeItem(atPath: filler)
        let r = try c.call("wm.set", ["ns": "d", "key": "k", "value": "second"])
        #expect(r["version"] != nil)
        #expect(try c.call("wm.get", ["ns": "d", "key": "k"])["value"] == "second")
        daemon.kill()
        let again = try daemon.restarted(config: "durability = \"strict\"\n")
        #expect(try again.client().call("wm.get", ["ns": "d", "key": "k"])["value"] == "second")
    }
}
