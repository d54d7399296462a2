/// A model directory that cannot be used: names the file and what is wrong with it.
public struct ModelError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file at fault (a path).
    public let file: String
    /// What is wrong with it.
    public let problem: String

    /// `file: problem`.
    public var description: String { "\(file): \(problem)" }

    init(_ file: String, _ problem: String) {
        self.file = file
        self.problem = problem
    }
}
