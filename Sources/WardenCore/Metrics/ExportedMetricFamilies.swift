import Synchronization

/// The families `WardenMetrics` writes after its registry, in the order they were made.
final class ExportedMetricFamilies: Sendable {
    private let families = Mutex<[any ExportedMetricFamily]>([])

    /// The gauge family `name`, made on first use. A name already taken by another kind of
    /// family gets a family that is not exported (one name, one type).
    func gauge(_ name: String, _ help: String, scopeDepth: Int = 0) -> GaugeFamily {
        family(name) { GaugeFamily(name: name, help: help, scopeDepth: scopeDepth) }
    }

    /// The counter family `name`, made on first use (same rule as `gauge`).
    func counter(_ name: String, _ help: String) -> CounterFamily {
        family(name) { CounterFamily(name: name, help: help) }
    }

    private func family<Family: ExportedMetricFamily>(_ name: String, _ make: () -> Family) -> Family {
        families.withLock { families in
            if let existing = families.first(where: { $0.name == name }) {
                return existing as? Family ?? make()
            }
            let made = make()
            families.append(made)
            return made
        }
    }

    /// Every family's exposition text (empty for a family without series).
    func expositionTexts() -> [[UInt8]] {
        families.withLock { $0 }.map { $0.expositionText() }
    }
}
