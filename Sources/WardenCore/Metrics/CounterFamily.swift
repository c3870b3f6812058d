/// A counter name with label sets created on first use, written as swift-prometheus writes an
/// integer counter (`name{a="x"} 3`); the text is rendered again only after a change.
final class CounterFamily: ExportedMetricFamily {
    private let series: LabeledSeriesFamily<Int64>

    init(name: String, help: String) {
        series = LabeledSeriesFamily(name: name, help: help, type: "counter", scopeDepth: 0)
    }

    var name: String { series.name }

    /// Adds `amount` (a negative amount is ignored: a counter never goes down) to one series,
    /// creating it at 0 first.
    func increment(_ labels: [(String, String)], by amount: Int = 1) {
        guard amount >= 0 else { return }
        series.update(labels) { ($0 ?? 0) &+ Int64(amount) }
    }

    /// The number of series.
    var count: Int { series.count }

    func expositionText() -> [UInt8] { series.expositionText() }
}
