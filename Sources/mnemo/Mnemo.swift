import ArgumentParser
import Foundation
import MnemoClient
import MnemoProtocol

/// `mnemo`: the command-line client of `mnemod`.
@main
struct Mnemo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mnemo",
        abstract: "Talk to a running mnemod over its Unix socket.",
        discussion: """
            Exit codes: 0 success; 1 not found (get, del, expire of a missing key), or the barrier, vote \
            or leadership asked for does not hold (yet); \
            2 the server refused the request (the error code is printed, e.g. CONFLICT); \
            3 mnemod could not be reached; 64 bad usage.
            """,
        subcommands: [Get.self, Set.self, Del.self, Expire.self, Ls.self, Remember.self, Search.self, Health.self, Stats.self, Summarize.self, Prune.self, Export.self, Import.self, Snapshot.self, Check.self, Repair.self, Audit.self, WatchCommand.self, EpisodicCommand.self, SemanticCommand.self, ClaimCommand.self, TaskCommand.self, InboxCommand.self, BarrierCommand.self, VoteCommand.self, LeaderCommand.self, Call.self, MCPBridge.self])
}

/// Options every subcommand takes.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "Socket path (default: $MNEMO_SOCKET, $XDG_RUNTIME_DIR/mnemo/mnemo.sock, ./mnemo.sock).")
    var socket: String?

    @Option(name: .long, help: "Agent name sent in session.hello (default: $MNEMO_AGENT or mnemo-cli).")
    var agent: String?

    @Option(name: .long, help: "Token for session.hello (default: $MNEMO_TOKEN).")
    var token: String?

    @Option(name: .shortAndLong, help: "Output format: json or table.")
    var output: OutputFormat = .table

    func connect() throws -> MnemoClient {
        let env = ProcessInfo.processInfo.environment
        let path = socket ?? SocketPath.fromEnvironment()
        let name = agent ?? env["MNEMO_AGENT"] ?? "mnemo-cli"
        do {
            return try MnemoClient(socketPath: path, agent: name, token: token ?? env["MNEMO_TOKEN"], client: "mnemo-cli")
        } catch {
            throw Failure(error)
        }
    }

    /// Calls a method, turning failures into exit codes.
    func call(_ client: MnemoClient, _ method: String, _ params: JSON) throws -> JSON {
        do {
            return try client.call(method, params)
        } catch {
            throw Failure(error)
        }
    }
}

/// `-o json|table`.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case json, table
}

/// A failure printed for a person, with the documented exit code.
struct Failure: Error, CustomStringConvertible {
    let description: String
    let code: Int32

    init(_ error: ClientError) {
        description = "mnemo: \(error)"
        switch error {
        case .connect, .io: code = 3
        case .server, .badResponse: code = 2
        }
    }

    init(_ message: String, code: Int32) {
        description = message
        self.code = code
    }
}

extension ParsableCommand {
    /// Runs `body`, printing a `Failure` on stderr and exiting with its code.
    func reporting(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch let failure as Failure {
            FileHandle.standardError.write(Data((failure.description + "\n").utf8))
            throw ExitCode(failure.code)
        }
    }
}
