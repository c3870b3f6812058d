/// A gauge name with a changing set of label sets. `replace` writes a whole snapshot: label sets
/// that are gone are removed, so a resolved problem stops being exported.
///
/// Written as swift-prometheus writes a gauge (`name{a="x"} 1.0`), after `WardenMetrics`'s registry;
/// the text is rendered again only after a change. Get one from `WardenMetrics.gaugeFamily(named:help:scopeDepth:)`.
public final class GaugeFamily: ExportedMetricFamily {
    /// Label names and values, in the order they are written.
    public typealias Labels = [(String, String)]
    private let series: LabeledSeriesFamily<Double>

    /// A family whose `replace` calls name `scopeDepth` labels (another number still works, more slowly).
    init(name: String, help: String, scopeDepth: Int) {
        series = LabeledSeriesFamily(name: name, help: help, type: "gauge", scopeDepth: scopeDepth)
    }

    /// The metric name.
    public var name: String { series.name }

    /// Sets one series.
    public func set(_ labels: Labels, _ value: Double) {
        series.update(labels) { _ in value }
    }

    /// Replaces every series whose labels start with `scope` by `values`; the others are untouched.
    /// An empty scope is the whole family. `values` outside `scope` are set too.
    public func replace(scope: Labels = [], with values: [(Labels, Double)]) {
        series.replace(scope: scope, with: values)
    }

    /// The number of series.
    public var count: Int { series.count }

    func expositionText() -> [UInt8] { series.expositionText() }
}
