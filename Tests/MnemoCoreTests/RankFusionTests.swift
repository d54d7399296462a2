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

    @Test func minmaxScalesEachArmAndWeighsTheVectorArmMore() throws {
        let vector: [(key: String, score: Double)] = [("a", 0.9), ("b", 0.7), ("c", 0.5)]
        let keyword: [(key: String, score: Double)] = [("c", 12), ("d", 4)]
        let fused = RankFusion.fuse(vector: vector, keyword: keyword, method: .minmax, limit: 10)
        // a: 0.8 * 1; b: 0.8 * 0.5; c: 0.8 * 0 + 0.2 * 1; d: 0.2 * 0.
        #expect(fused.map(\.key) == ["a", "b", "c", "d"])
        #expect(zip(fused.map(\.score), [0.8, 0.4, 0.2, 0]).allSatisfy { abs($0 - $1) < 1e-12 })
        #expect(fused[2].ranks == [3, 1])
        // One candidate in an arm is that arm's best.
        let single = RankFusion.fuse(vector: [("x", 0.1)], keyword: [], method: .minmax, limit: 10)
        #expect(single.first?.score == 0.8)
        // The same inputs by reciprocal rank.
        #expect(RankFusion.fuse(vector: vector, keyword: keyword, method: .rrf, limit: 10).map(\.key) == ["c", "a", "b", "d"])
        #expect(throws: (any Error).self) { try RankFusion.Method.parse("borda") }
        #expect(try RankFusion.Method.parse(nil) == .minmax)
    }
}
