// swift-tools-version:6.2
import PackageDescription

/// Hubcast: an AMQP-native connector that streams customer-profile exports to Azure Event Hubs.
///
/// Layers (one module each; see docs/README.md, "Architecture"):
/// - `CQpidProton`: the system Qpid Proton C library (Debian `libqpid-proton11-dev`).
/// - `AMQP`: the only module that imports `CQpidProton`; AMQP 1.0 client and server.
/// - `EventHubs`: connection strings, SAS tokens and the Event Hubs client, over `AMQP`.
/// - `HubcastEmulator`: a local Event Hubs emulator on `AMQP`'s server side.
/// - `ProfileExport`: the rules engine (profiles, audiences, dataflows, export decisions, payloads);
///   imports nothing of AMQP or Event Hubs.
/// - `HubcastConnector`: the connector (intake → store → outbox → dispatchers → Event Hubs), over
///   `ProfileExport` and `EventHubs`.
/// - `hubcast`: the command-line tool.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    // A warning fails the build of this package's own modules (not of its dependencies, nor of
    // this package when it is someone else's dependency).
    .treatAllWarnings(as: .error),
]

let package = Package(
    name: "Hubcast",
    // Linux only: the AMQP event loop runs on epoll and eventfd (no Apple platform is supported,
    // so none is listed).
    products: [
        .library(name: "AMQP", targets: ["AMQP"]),
        .library(name: "EventHubs", targets: ["EventHubs"]),
        .library(name: "HubcastEmulator", targets: ["HubcastEmulator"]),
        .library(name: "ProfileExport", targets: ["ProfileExport"]),
        .library(name: "HubcastConnector", targets: ["HubcastConnector"]),
        .executable(name: "hubcast", targets: ["hubcast"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CQpidProton",
            path: "Sources/CQpidProton",
            providers: [.apt(["libqpid-proton11-dev"]), .brew(["qpid-proton"])]
        ),
        .target(
            name: "AMQP",
            dependencies: [
                "CQpidProton",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "EventHubs",
            dependencies: [
                "AMQP",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HubcastEmulator",
            dependencies: [
                "AMQP",
                "EventHubs",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ProfileExport",
            dependencies: [
                .product(name: "OrderedCollections", package: "swift-collections"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "GRDB", package: "GRDB.swift"),
                // SQLite's C API, for the statements every update or export runs (see RawStatement).
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HubcastConnector",
            dependencies: [
                "EventHubs",
                "ProfileExport",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "OrderedCollections", package: "swift-collections"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "hubcast",
            dependencies: [
                "AMQP",
                "EventHubs",
                "HubcastEmulator",
                "HubcastConnector",
                "ProfileExport",
                .product(name: "OrderedCollections", package: "swift-collections"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Seeded randomness and mutations shared by the test targets' fuzz suites.
        .target(
            name: "FuzzSupport",
            path: "Tests/FuzzSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AMQPTests",
            dependencies: ["AMQP"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EventHubsTests",
            dependencies: ["EventHubs", "HubcastEmulator", "AMQP", "FuzzSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ConnectorTests",
            dependencies: [
                "HubcastConnector", "HubcastEmulator", "ProfileExport", "EventHubs", "AMQP",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ProfileExportTests",
            dependencies: [
                "ProfileExport",
                "FuzzSupport",
                .product(name: "OrderedCollections", package: "swift-collections"),
                .product(name: "PropertyBased", package: "swift-property-based"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)

// The benchmarks (Benchmarks/): not part of the product, built only when asked for, e.g.
// `HUBCAST_BENCHMARKS=1 swift build -c release --product hubcast-bench` (the scripts in Benchmarks/
// do it). They see the package's `package` declarations, such as the store's SQLite baseline.
if Context.environment["HUBCAST_BENCHMARKS"] == "1" {
    package.products.append(.executable(name: "hubcast-bench", targets: ["hubcast-bench"]))
    package.targets.append(
        .executableTarget(
            name: "hubcast-bench",
            dependencies: [
                "AMQP", "EventHubs", "HubcastEmulator", "ProfileExport", "HubcastConnector",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            path: "Benchmarks/hubcast-bench",
            swiftSettings: swiftSettings
        ))
    package.targets.append(
        .testTarget(
            name: "BenchmarkTests",
            dependencies: ["hubcast-bench", "ProfileExport", .product(name: "GRDB", package: "GRDB.swift")],
            path: "Benchmarks/Tests",
            swiftSettings: swiftSettings
        ))
}
