import MnemoProtocol

/// One party's arrival at a barrier generation.
public struct BarrierArrival: Sendable, Equatable {
    /// The arriving agent (parties are distinct agents).
    public var agent: String
    /// Its principal.
    public var principal: String
    /// What it brought: compact JSON (`null` when nothing).
    public var value: [UInt8]
    /// When it arrived (wall ms) and the revision that recorded it.
    public var at: Int64
    public var rev: Int64
}

/// A barrier: numbered generations, each opening once `parties` distinct agents have
/// arrived, or breaking at its deadline (set by its first arrival). Whatever ends a
/// generation starts the next, so a barrier can be used round after round.
public struct Barrier: Sendable, Equatable {
    /// A generation's state.
    public enum State: String, Sendable { case waiting, open, broken }

    /// A generation that ended, kept so that a party asking again (a lost reply, a
    /// reconnect) gets its outcome rather than arriving at the next one.
    public struct Finished: Sendable, Equatable {
        public var generation: Int64
        /// `open` or `broken`.
        public var state: State
        public var parties: Int
        public var arrivals: [BarrierArrival]
        /// The revision and wall time that ended it.
        public var rev: Int64
        public var at: Int64
    }

    /// The generation arrivals go to.
    public var generation: Int64 = 1
    /// Parties the current generation waits for.
    public var parties: Int
    /// Its arrivals, in order.
    public var arrivals: [BarrierArrival] = []
    /// When it breaks (wall ms; 0 before its first arrival).
    public var deadline: Int64 = 0
    /// The most recent ended generations, oldest first (at most ``keptFinished``).
    public var finished: [Finished] = []

    /// Ended generations kept per barrier.
    static let keptFinished = 4

    /// Ends the current generation as `state` and starts the next.
    mutating func finish(_ state: State, rev: Int64, at: Int64) {
        finished.append(Finished(generation: generation, state: state, parties: parties, arrivals: arrivals, rev: rev, at: at))
        if finished.count > Self.keptFinished { finished.removeFirst(finished.count - Self.keptFinished) }
        generation += 1
        arrivals = []
        deadline = 0
    }

    /// The ended generation `g`, when still kept.
    func ended(_ g: Int64) -> Finished? { finished.last { $0.generation == g } }
}

/// A proposal put to a vote: decided exactly once per round, as soon as the outcome is
/// certain or at its deadline. An accepted decision's revision is a fencing token that
/// holds until a newer decision on the same proposal.
public struct Proposal: Sendable, Equatable {
    /// Where a round stands.
    public enum Status: String, Sendable { case open, accepted, rejected }

    /// One voter's vote.
    public struct Ballot: Sendable, Equatable {
        public var voter: String
        public var principal: String
        public var yes: Bool
        public var reason: String?
        public var at: Int64
        public var rev: Int64
    }

    /// The round (1 for the first; a decided proposal opened again starts the next).
    public var round: Int64
    /// Agents whose votes count, sorted; nil when any agent allowed to write may vote.
    public var voters: [String]?
    /// Yes votes that accept it.
    public var quorum: Int
    /// What is proposed: compact JSON.
    public var payload: [UInt8]
    /// Who opened this round, when, at which revision.
    public var openedBy: String
    public var openedPrincipal: String
    public var openedAt: Int64
    public var openedRev: Int64
    /// When an undecided round is rejected (wall ms).
    public var deadline: Int64
    /// Votes of this round, in order.
    public var ballots: [Ballot] = []
    public var status: Status = .open
    /// When and at which revision this round was decided.
    public var decidedAt: Int64?
    public var decidedRev: Int64?
    /// The token of the newest decision when it accepted (nil when none, or when the
    /// newest decision rejected): what fences are checked against.
    public var authority: Int64?

    /// Yes and no votes so far.
    public var tally: (yes: Int, no: Int) {
        let yes = ballots.filter(\.yes).count
        return (yes, ballots.count - yes)
    }

    /// The outcome once certain: quorum reached, or (with a voter list) too many no
    /// votes for it to be reached.
    func certainOutcome() -> Status? {
        let (yes, no) = tally
        if yes >= quorum { return .accepted }
        if let voters, no > voters.count - quorum { return .rejected }
        return nil
    }

    /// Records the decision `status` of this round at `rev`.
    mutating func decide(_ status: Status, rev: Int64, at: Int64) {
        self.status = status
        decidedAt = at
        decidedRev = rev
        authority = status == .accepted ? rev : nil
    }
}

// MARK: journal encoding

extension BarrierArrival {
    func write(_ w: inout JSONWriter) {
        w.raw("{\"a\":"); w.string(agent)
        w.raw(",\"pr\":"); w.string(principal)
        w.raw(",\"v\":"); w.raw(value)
        w.raw(",\"at\":"); w.int(at)
        w.raw(",\"rev\":"); w.int(rev); w.raw("}")
    }

    init(record j: JSON) throws(ChangeCodec.DecodeError) {
        let r = ChangeCodec.Reader(j)
        self.init(agent: try r.str("a"), principal: try r.str("pr"), value: try r.raw("v"), at: try r.int("at"), rev: try r.int("rev"))
    }
}

extension Barrier {
    func write(_ w: inout JSONWriter) {
        w.raw("{\"g\":"); w.int(generation)
        w.raw(",\"n\":"); w.int(Int64(parties))
        w.raw(",\"d\":"); w.int(deadline)
        w.raw(",\"a\":["); Self.write(arrivals, &w)
        w.raw("],\"f\":[")
        for (i, f) in finished.enumerated() {
            if i > 0 { w.raw(",") }
            w.raw("{\"g\":"); w.int(f.generation)
            w.raw(",\"s\":"); w.string(f.state.rawValue)
            w.raw(",\"n\":"); w.int(Int64(f.parties))
            w.raw(",\"rev\":"); w.int(f.rev)
            w.raw(",\"at\":"); w.int(f.at)
            w.raw(",\"a\":["); Self.write(f.arrivals, &w); w.raw("]}")
        }
        w.raw("]}")
    }

    private static func write(_ arrivals: [BarrierArrival], _ w: inout JSONWriter) {
        for (i, a) in arrivals.enumerated() {
            if i > 0 { w.raw(",") }
            a.write(&w)
        }
    }

    init(record j: JSON) throws(ChangeCodec.DecodeError) {
        let r = ChangeCodec.Reader(j)
        self.init(parties: Int(try r.int("n")))
        generation = try r.int("g")
        deadline = try r.int("d")
        for a in j["a"]?.arrayValue ?? [] { arrivals.append(try BarrierArrival(record: a)) }
        for f in j["f"]?.arrayValue ?? [] {
            let fr = ChangeCodec.Reader(f)
            guard let state = State(rawValue: try fr.str("s")) else { throw .init(description: "unknown barrier state") }
            var done: [BarrierArrival] = []
            for a in f["a"]?.arrayValue ?? [] { done.append(try BarrierArrival(record: a)) }
            finished.append(Finished(generation: try fr.int("g"), state: state, parties: Int(try fr.int("n")), arrivals: done,
                                     rev: try fr.int("rev"), at: try fr.int("at")))
        }
    }
}

extension Proposal {
    func write(_ w: inout JSONWriter) {
        w.raw("{\"r\":"); w.int(round)
        if let voters { w.raw(",\"vo\":"); w.value(.array(voters.map(JSON.string))) }
        w.raw(",\"q\":"); w.int(Int64(quorum))
        w.raw(",\"pl\":"); w.raw(payload)
        w.raw(",\"ob\":"); w.string(openedBy)
        w.raw(",\"opr\":"); w.string(openedPrincipal)
        w.raw(",\"oat\":"); w.int(openedAt)
        w.raw(",\"orev\":"); w.int(openedRev)
        w.raw(",\"d\":"); w.int(deadline)
        w.raw(",\"s\":"); w.string(status.rawValue)
        if let decidedAt { w.raw(",\"dat\":"); w.int(decidedAt) }
        if let decidedRev { w.raw(",\"drev\":"); w.int(decidedRev) }
        if let authority { w.raw(",\"auth\":"); w.int(authority) }
        w.raw(",\"b\":[")
        for (i, b) in ballots.enumerated() {
            if i > 0 { w.raw(",") }
            w.raw("{\"v\":"); w.string(b.voter)
            w.raw(",\"pr\":"); w.string(b.principal)
            w.raw(",\"y\":"); w.bool(b.yes)
            if let reason = b.reason { w.raw(",\"why\":"); w.string(reason) }
            w.raw(",\"at\":"); w.int(b.at)
            w.raw(",\"rev\":"); w.int(b.rev); w.raw("}")
        }
        w.raw("]}")
    }

    init(record j: JSON) throws(ChangeCodec.DecodeError) {
        let r = ChangeCodec.Reader(j)
        guard let status = Status(rawValue: try r.str("s")) else { throw .init(description: "unknown proposal status") }
        self.init(round: try r.int("r"), voters: j["vo"]?.arrayValue?.compactMap(\.stringValue), quorum: Int(try r.int("q")),
                  payload: try r.raw("pl"), openedBy: try r.str("ob"), openedPrincipal: try r.str("opr"),
                  openedAt: try r.int("oat"), openedRev: try r.int("orev"), deadline: try r.int("d"))
        self.status = status
        decidedAt = j["dat"]?.int64Value
        decidedRev = j["drev"]?.int64Value
        authority = j["auth"]?.int64Value
        for b in j["b"]?.arrayValue ?? [] {
            let br = ChangeCodec.Reader(b)
            ballots.append(Ballot(voter: try br.str("v"), principal: try br.str("pr"), yes: try br.bool("y"),
                                  reason: b["why"]?.stringValue, at: try br.int("at"), rev: try br.int("rev")))
        }
    }
}
