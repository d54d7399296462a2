// swift-tools-version: 6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

/// The server's hot path keeps exclusivity checks at compile time only: run-time checks
/// (a thread-local access set per `inout` of a class property) measured a few percent of
/// a `wm.get` round trip. Debug builds, and so the tests, keep the run-time checks.
/// Not on `MnemoProtocol` (which `MnemoClient` depends on): SwiftPM refuses a product
/// with unsafe flags from a versioned dependency, and there the flag changed nothing (no
/// class, no mutable global: its release object files are bit-identical with and without).
let hotPath: [SwiftSetting] = strict + [
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "mnemo",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "mnemod", targets: ["mnemod"]),
        .executable(name: "mnemo", targets: ["mnemo"]),
        .library(name: "MnemoClient", targets: ["MnemoClient"]),
        .library(name: "MnemoProtocol", targets: ["MnemoProtocol"]),
        .library(name: "MnemoCore", targets: ["MnemoCore"]),
        .library(name: "MnemoServer", targets: ["MnemoServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.1.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        .package(url: "https://github.com/modelcontextprotocol/swift-sdk", from: "0.12.1"),
    ],
    targets: [
        .target(name: "CMnemoSys", cSettings: [.define("_GNU_SOURCE")]),
        .target(name: "CPageChecksum", linkerSettings: [.linkedLibrary("sqlite3")]),
        .target(name: "CSQLiteSession", linkerSettings: [.linkedLibrary("sqlite3")]),
        .systemLibrary(name: "CBLAS", pkgConfig: "blas", providers: [.apt(["libblas-dev", "libopenblas-dev"])]),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .target(name: "MnemoProtocol", swiftSettings: strict),
        .target(
            name: "MnemoCore",
            dependencies: [
                "MnemoProtocol", "CBLAS", "CLibPQ", "CMnemoSys", "CPageChecksum", "CSQLiteSession",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "GRDB", package: "GRDB.swift"), .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: hotPath),
        .target(
            name: "MnemoServer",
            dependencies: [
                "MnemoCore", "MnemoProtocol", "CMnemoSys",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: hotPath),
        .target(name: "MnemoClient", dependencies: ["MnemoProtocol"], swiftSettings: strict),
        .executableTarget(
            name: "mnemod",
            dependencies: [
                "MnemoServer", "MnemoCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "TOMLKit", package: "TOMLKit"),
            ],
            swiftSettings: strict),
        .executableTarget(
            name: "mnemo",
            dependencies: [
                "MnemoClient", "MnemoProtocol", "MnemoCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "MCP", package: "swift-sdk"),
            ],
            swiftSettings: strict),
        .testTarget(name: "MnemoProtocolTests", dependencies: ["MnemoProtocol"], swiftSettings: strict),
        .testTarget(name: "MnemoCoreTests", dependencies: ["MnemoCore", .product(name: "GRDB", package: "GRDB.swift")],
                    exclude: ["EncoderReference"], swiftSettings: strict),
        .testTarget(name: "MnemoServerTests", dependencies: ["MnemoServer", "MnemoCore", "MnemoProtocol"], swiftSettings: strict),
        .testTarget(
            name: "MnemoEndToEndTests",
            dependencies: ["MnemoClient", "MnemoProtocol", "mnemod", "mnemo"],
            swiftSettings: strict),
    ]
)
