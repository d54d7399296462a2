import MnemoCore
import Testing

@Suite struct RankFusionTests {
    @Test func anItemBothArmsFindBeatsOneOnlyOneArmRanksFirst() {
        let fused = RankFusion.fuse([["a", "b", "c"], ["c", "d"]], limit: 10)
        // "b" and "d" are both second in one arm: a tie, broken by the key.
        #expect(fused.map(\.key) == ["c", "a", "b", "d"])
        #expect(fused[0].ranks == [3, 1])
        #expect(abs(fused[0].score - (1.0 / 63 + 1.0 / 61)) < 1e-12)
        #expect(fused[1].ranks == [1, nil])
    }

    @Test func tiesGoToTheBetterBestRankThenTheSmallerKey() {
        // "x" and "y" are rank 1 in one arm each: equal scores, equal best ranks.
        let fused = RankFusion.fuse([["y"], ["x"]], limit: 10)
        #expect(fused.map(\.key) == ["x", "y"])
        #expect(RankFusion.fuse([["x"], ["y"]], limit: 10).map(\.key) == ["x", "y"])
    }

    @Test func limitAndDepth() {
        #expect(RankFusion.fuse([["a", "b", "c"]], limit: 2).map(\.key) == ["a", "b"])
        #expect(RankFusion.fuse([[String]](), limit: 5).isEmpty)
        #expect(RankFusion.armDepth(for: 10) == 50)
        #expect(RankFusion.armDepth(for: 100) == 400)
    }

    @Test func modesParseAndRefuseUnknownNames() throws {
        #expect(try SearchMode.parse(nil, fallback: .hybrid) == .hybrid)
        #expect(try SearchMode.parse("keyword", fallback: .hybrid) == .keyword)
        #expect(throws: (any Error).self) { try SearchMode.parse("fuzzy", fallback: .hybrid) }
    }
}
