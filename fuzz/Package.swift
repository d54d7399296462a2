// swift-tools-version: 6.1
import PackageDescription

// libFuzzer targets, in their own package so that the main build never sees the fuzzer
// flags. Build with `make fuzz` (or see README "Fuzzing"): every module is compiled with
// -sanitize=fuzzer,address, and --disable-dead-strip keeps the coverage sections.
let fuzzTarget: [SwiftSetting] = [.swiftLanguageMode(.v6), .unsafeFlags(["-parse-as-library"])]

let package = Package(
    name: "mnemo-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "mnemo", path: ".."),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        // LineBuffer: the frame decoder (bytes in arbitrary chunks -> bounded lines).
        .executableTarget(
            name: "fuzz-frame",
            dependencies: [.product(name: "MnemoProtocol", package: "mnemo")],
            swiftSettings: fuzzTarget),
        // JSONParser and RPC.decode: the request decoder, with a parse/write round trip.
        .executableTarget(
            name: "fuzz-request",
            dependencies: [.product(name: "MnemoProtocol", package: "mnemo")],
            swiftSettings: fuzzTarget),
        // The dispatcher and every handler, against an in-memory (volatile) engine.
        .executableTarget(
            name: "fuzz-dispatch",
            dependencies: [
                .product(name: "MnemoProtocol", package: "mnemo"),
                .product(name: "MnemoCore", package: "mnemo"),
                .product(name: "MnemoServer", package: "mnemo"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: fuzzTarget),
    ]
)
