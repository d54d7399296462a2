import ArgumentParser
import MnemoClient
import MnemoProtocol

/// `mnemo barrier|vote|leader`: agreement from scripts. Each exits 0 when the thing
/// asked for holds (the barrier opened, the proposal was accepted, the caller leads) and 1
/// when it does not (yet), so `mnemo vote get wf/42 deploy --wait 60000 && ./deploy.sh`
/// does what it says.
struct BarrierCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "barrier", abstract: "Barriers: wait until N agents have arrived.",
        subcommands: [Arrive.self, Show.self])

    struct Arrive: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Arrive at a barrier (as --agent); exit 0 once it opens, 1 if still waiting after --wait, 2 BROKEN.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Namespace.") var ns: String
        @Argument(help: "Barrier name.") var name: String
        @Argument(help: "Distinct agents it waits for.") var parties: Int
        @Option(name: .long, help: "What this party brings (JSON, or text).") var value: String?
        @Option(name: .long, help: "Milliseconds to wait for it to open (default 0).") var wait: Int64 = 0
        @Option(name: .long, help: "Milliseconds a generation may wait for its parties (default 600000).") var ttl: Int64?
        @Option(name: .long, help: "Ask about this generation (a retry) instead of the current one.") var generation: Int64?

        func run() throws {
            try reporting {
                var p: [JSONMember] = [.init("ns", .string(ns)), .init("name", .string(name)), .init("parties", .int(parties)),
                                       .init("wait_ms", .int(wait))]
                if let value { p.append(.init("value", jsonOrText(value))) }
                if let ttl { p.append(.init("ttl_ms", .int(ttl))) }
                if let generation { p.append(.init("generation", .int(generation))) }
                let r = try global.call(try global.connect(), "barrier.arrive", .object(p))
                print(global.output == .json ? r.text : Pretty.json(r))
                guard r["state"] == .string("open") else { throw Failure("mnemo: \(name): still waiting", code: 1) }
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "get", abstract: "Show a barrier (or, without NAME, the namespace's barriers).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Namespace.") var ns: String
        @Argument(help: "Barrier name.") var name: String?

        func run() throws {
            try reporting {
                var p: [JSONMember] = [.init("ns", .string(ns))]
                if let name { p.append(.init("name", .string(name))) }
                let r = try global.call(try global.connect(), name == nil ? "barrier.list" : "barrier.get", .object(p))
                print(global.output == .json ? r.text : Pretty.json(r))
            }
        }
    }
}

struct VoteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vote", abstract: "Quorum decisions: open a proposal, cast a vote, wait for the decision.",
        subcommands: [Open.self, Cast.self, Show.self])

    struct Open: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Open a round of a proposal.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Namespace.") var ns: String
        @Argument(help: "Proposal name.") var proposal: String
        @Option(name: .long, help: "A voter (repeat for each); without any, any agent that may write votes.") var voter: [String] = []
        @Option(name: .long, help: "Yes votes that accept it (default: every voter).") var quorum: Int?
        @Option(name: .long, help: "Milliseconds before an undecided round is rejected (default 600000).") var ttl: Int64?
        @Option(name: .long, help: "What is proposed (JSON, or text).") var payload: String?

        func run() throws {
            try reporting {
                var p: [JSONMember] = [.init("ns", .string(ns)), .init("proposal", .string(proposal))]
                if !voter.isEmpty { p.append(.init("voters", .array(voter.map(JSON.string)))) }
                if let quorum { p.append(.init("quorum", .int(quorum))) }
                if let ttl { p.append(.init("ttl_ms", .int(ttl))) }
                if let payload { p.append(.init("payload", jsonOrText(payload))) }
                let r = try global.call(try global.connect(), "vote.open", .object(p))
                print(global.output == .json ? r.text : Pretty.json(r))
            }
        }
    }

    struct Cast: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Vote yes or no (as --agent); exit 0 if the round is accepted, 1 otherwise.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Namespace.") var ns: String
        @Argument(help: "Proposal name.") var proposal: String
        @Argument(help: "yes or no.") var choice: String
        @Option(name: .long, help: "Why.") var reason: String?

        func run() throws {
            try reporting {
                var p: [JSONMember] = [.init("ns", .string(ns)), .init("proposal", .string(proposal)), .init("choice", .string(choice))]
                if let reason { p.append(.init("reason", .string(reason))) }
                try printDecision(try global.call(try global.connect(), "vote.cast", .object(p)), global)
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "get", abstract: "Show a proposal's round; exit 0 if accepted, 1 if open or rejected.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Namespace.") var ns: String
        @Argument(help: "Proposal name.") var proposal: String
        @Option(name: .long, help: "Milliseconds to wait for the decision (default 0).") var wait: Int64 = 0

        func run() throws {
            try reporting {
                let p: [JSONMember] = [.init("ns", .string(ns)), .init("proposal", .string(proposal)), .init("wait_ms", .int(wait))]
                try printDecision(try global.call(try global.connect(), "vote.get", .object(p)), global)
            }
        }
    }
}

struct LeaderCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "leader", abstract: "Leader election on leases: campaign, show, resign.",
        subcommands: [Campaign.self, Show.self, Resign.self])

    struct Campaign: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Campaign (as --agent); exit 0 when leading (the token is printed), 1 when another agent leads.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Namespace.") var ns: String
        @Argument(help: "Election name.") var election: String
        @Option(name: .long, help: "Lease in milliseconds (campaign again before it ends to stay leader).") var ttl: Int64
        @Option(name: .long, help: "What the leader advertises (JSON, or text).") var value: String?
        @Option(name: .long, help: "Milliseconds to wait for the current term to end (default 0).") var wait: Int64 = 0

        func run() throws {
            try reporting {
                var p: [JSONMember] = [.init("ns", .string(ns)), .init("election", .string(election)), .init("ttl_ms", .int(ttl)),
                                       .init("wait_ms", .int(wait))]
                if let value { p.append(.init("value", jsonOrText(value))) }
                let r = try global.call(try global.connect(), "leader.campaign", .object(p))
                print(global.output == .json ? r.text : Pretty.json(r))
                guard r["leader"] == .bool(true) else { throw Failure("mnemo: \(election): led by another agent", code: 1) }
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "get", abstract: "Who leads (exit 1 when nobody does).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Namespace.") var ns: String
        @Argument(help: "Election name.") var election: String

        func run() throws {
            try reporting {
                let r = try global.call(try global.connect(), "leader.get",
                                        .object([.init("ns", .string(ns)), .init("election", .string(election))]))
                print(global.output == .json ? r.text : Pretty.json(r))
                guard r["leader"]?.stringValue != nil else { throw Failure("mnemo: \(election): nobody leads", code: 1) }
            }
        }
    }

    struct Resign: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "End the leadership held with TOKEN (exit 1 if it had already ended).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Namespace.") var ns: String
        @Argument(help: "Election name.") var election: String
        @Argument(help: "The fencing token of the term.") var token: Int64

        func run() throws {
            try reporting {
                let r = try global.call(try global.connect(), "leader.resign",
                                        .object([.init("ns", .string(ns)), .init("election", .string(election)), .init("token", .int(token))]))
                if global.output == .json { print(r.text) }
                guard r["resigned"] == .bool(true) else { throw Failure("mnemo: \(election): that term had already ended", code: 1) }
            }
        }
    }
}

/// A value given on the command line: JSON when it parses, else the text as a string.

/// Prints a proposal's round; fails with exit 1 unless it was accepted.
private func printDecision(_ r: JSON, _ global: GlobalOptions) throws {
    print(global.output == .json ? r.text : Pretty.json(r))
    let status = r["status"]?.stringValue ?? "?"
    guard status == "accepted" else { throw Failure("mnemo: \(r["proposal"]?.stringValue ?? "proposal"): \(status)", code: 1) }
}
