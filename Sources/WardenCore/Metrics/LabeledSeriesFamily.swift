import Synchronization

/// A metric family whose exposition text `WardenMetrics` appends after the registry's.
protocol ExportedMetricFamily: Sendable {
    var name: String { get }
    /// The family's exposition text (cached: rendered again only after a change).
    func expositionText() -> [UInt8]
}

/// One metric name with a changing set of labelled series, kept here rather than as one
/// swift-prometheus object per series: adding a series costs a dictionary insertion, replacing a
/// scope costs the series of that scope, and a scrape reuses the text of an unchanged family.
///
/// A scope is the first labels of a series; `scopeDepth` is the number of labels the family's
/// `replace` calls name, so each of those scopes is one index entry.
final class LabeledSeriesFamily<Value: ExpositionSampleValue>: Sendable {
    typealias Labels = [(String, String)]
    let name: String
    private let header: [UInt8]
    private let scopeDepth: Int
    private let table: Mutex<SeriesTable<Value>>

    init(name: String, help: String, type: String, scopeDepth: Int) {
        self.name = name
        self.header = ExpositionText.header(name: name, help: help, type: type)
        self.scopeDepth = max(0, scopeDepth)
        self.table = Mutex(SeriesTable(scopeDepth: scopeDepth))
    }

    /// Gives the series `labels` the value `update` makes of its current one (nil when new).
    func update(_ labels: Labels, _ update: (Value?) -> Value) {
        let rendered = ExpositionText.labelText(labels, scopeDepth: scopeDepth)
        table.withLock { $0.update(labelText: rendered.text, scopeLength: rendered.scopeLength, update) }
    }

    /// Replaces every series whose labels start with `scope` by `values`; the others are untouched.
    /// An empty scope is the whole family.
    func replace(scope: Labels, with values: [(Labels, Value)]) {
        let renderedScope = ExpositionText.labelText(scope, scopeDepth: scopeDepth)
        let renderedValues = values.map { (ExpositionText.labelText($0.0, scopeDepth: scopeDepth), $0.1) }
        let kept = Set(renderedValues.map(\.0.text))
        table.withLock { table in
            table.removeSeries(inScope: renderedScope.text, scopeLabelCount: scope.count, scopeLength: renderedScope.scopeLength, except: kept)
            for (rendered, value) in renderedValues {
                table.update(labelText: rendered.text, scopeLength: rendered.scopeLength) { _ in value }
            }
        }
    }

    /// The number of series.
    var count: Int { table.withLock { $0.count } }

    func expositionText() -> [UInt8] {
        table.withLock { $0.exposition(name: name, header: header) }
    }
}
