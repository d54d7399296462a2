// swift-tools-version: 6.1
import PackageDescription

// The benchmark harness is its own package so that its tooling stays out of the main build.
let package = Package(
    name: "mnemo-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.1.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(name: "mnemo", path: ".."),
    ],
    targets: [
        .executableTarget(
            name: "mnemo-bench",
            dependencies: [
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "MnemoProtocol", package: "mnemo"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]),
        // Hot paths measured in-process: request decoding, dispatch, replies.
        .executableTarget(
            name: "mnemo-micro",
            dependencies: [
                .product(name: "MnemoServer", package: "mnemo"),
                .product(name: "MnemoCore", package: "mnemo"),
                .product(name: "MnemoProtocol", package: "mnemo"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]),
    ]
)
