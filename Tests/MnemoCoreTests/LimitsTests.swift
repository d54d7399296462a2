import MnemoCore
import Testing

@Suite("Limits")
struct LimitsTests {
    @Test("catalog names are unique and every default lies within its bounds")
    func catalog() {
        let names = Limits.catalog.map(\.name)
        #expect(Set(names).count == names.count)
        #expect(!names.isEmpty)
        let defaults = Limits()
        for spec in Limits.catalog {
            let value = defaults[keyPath: spec.keyPath]
            #expect(spec.minimum <= value && value <= spec.hardMaximum, "\(spec.name) = \(value)")
            #expect(spec.minimum <= spec.hardMaximum)
            #expect(!spec.reason.isEmpty)
        }
        #expect(defaults.all.map(\.0) == names)
    }

    @Test("the contract's defaults")
    func defaults() {
        let l = Limits()
        #expect(l.maxLineBytes == 1 << 20)
        #expect(l.maxLineBytesBeforeHello == 16 << 10)
        #expect(l.maxDepth == 64)
        #expect(l.maxBatch == 1000)
        #expect(l.maxConnections == 1024)
        #expect(l.idleTimeoutMs == 10_000)
        #expect(Limits.maxNamespaceBytes == 512)
        #expect(Limits.maxNamespaceSegments == 16)
    }

    @Test("set accepts the minimum and the hard maximum of every limit and stores the value")
    func setBounds() throws {
        for spec in Limits.catalog {
            var l = Limits()
            try l.set(spec.name, to: spec.minimum)
            #expect(l[keyPath: spec.keyPath] == spec.minimum)
            try l.set(spec.name, to: spec.hardMaximum)
            #expect(l[keyPath: spec.keyPath] == spec.hardMaximum)
            #expect(l.all.first { $0.0 == spec.name }?.1 == spec.hardMaximum)
        }
        var l = Limits()
        try l.set("max_depth", to: 10)
        #expect(l.maxDepth == 10)
        try l.set("max_working_bytes", to: 1 << 20)
        #expect(l.maxWorkingBytes == 1 << 20)
    }

    @Test("set rejects values outside minimum...hardMaximum and leaves the limit unchanged")
    func setOutOfRange() {
        for spec in Limits.catalog {
            for bad in [spec.minimum - 1, spec.hardMaximum + 1, 0, -1, Int.min, Int.max]
            where bad < spec.minimum || bad > spec.hardMaximum {
                var l = Limits()
                #expect(throws: ConfigError.self, "\(spec.name) = \(bad)") { try l.set(spec.name, to: bad) }
                #expect(l == Limits())
            }
        }
    }

    @Test("set rejects unknown names", arguments: ["", "max_bogus", "MAX_DEPTH", "maxDepth", "max_depth ", "max_ttl_ms"])
    func setUnknown(_ name: String) throws {
        var l = Limits()
        let e = try #require(throws: ConfigError.self) { try l.set(name, to: 10) }
        #expect(e.description.contains("unknown limit"))
        #expect(e.description.contains("max_depth"))  // lists the known names
        #expect(l == Limits())
    }
}
