// swift-tools-version: 6.1
import PackageDescription

// The benchmark harness is its own package so that its tooling stays out of the main build.
// `swift build -c release --product mnemo-bench` builds only the harness (what `make bench`
// needs); the micro benchmarks (package-benchmark) build with
// `swift package --disable-sandbox benchmark --target MnemoMicro`.
let package = Package(
    name: "mnemo-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.1.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(name: "mnemo", path: ".."),
    ],
    targets: [
        // SQLite and BLAS from Debian, used directly by the in-process peers.
        .systemLibrary(name: "CSQLiteBench", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CBLASBench", pkgConfig: "blas", providers: [.apt(["libblas-dev", "libopenblas-dev"])]),
        .executableTarget(
            name: "mnemo-bench",
            dependencies: [
                "CSQLiteBench", "CBLASBench",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "MnemoProtocol", package: "mnemo"),
                // BLAS.restartWithBetterKernelsIfNeeded: the in-process BLAS peer gets the
                // same OpenBLAS kernels as mnemod.
                .product(name: "MnemoCore", package: "mnemo"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]),
        // Hot paths in-process with time and allocation counts: frame decode, requests
        // through the dispatcher, top-k, expiry sweep.
        .executableTarget(
            name: "MnemoMicro",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "MnemoServer", package: "mnemo"),
                .product(name: "MnemoCore", package: "mnemo"),
                .product(name: "MnemoProtocol", package: "mnemo"),
            ],
            path: "Benchmarks/MnemoMicro",
            swiftSettings: [.swiftLanguageMode(.v5)],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]),
    ]
)
