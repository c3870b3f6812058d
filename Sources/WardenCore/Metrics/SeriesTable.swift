/// The series of one metric family, keyed by their label text and indexed by scope (the text of
/// their first `scopeDepth` labels), with the family's exposition text cached until the next change.
///
/// Not synchronised: a `LabeledSeriesFamily` keeps it under its mutex.
struct SeriesTable<Value: ExpositionSampleValue>: Sendable {
    private struct Series: Sendable {
        var value: Value
        /// The length in bytes of the scope at the start of the label text.
        let scopeLength: Int
    }

    let scopeDepth: Int
    private var series: [String: Series] = [:]
    private var labelTextsByScope: [String: Set<String>] = [:]
    /// The exposition text of the current series; nil once something changed.
    private var cachedText: [UInt8]?

    init(scopeDepth: Int) {
        self.scopeDepth = max(0, scopeDepth)
    }

    var count: Int { series.count }

    /// Gives the series `labelText` the value `update` makes of its current one (nil when new).
    mutating func update(labelText: String, scopeLength: Int, _ update: (Value?) -> Value) {
        let old = series[labelText]?.value
        let new = update(old)
        if let old, old == new { return }
        if old == nil {
            labelTextsByScope[Self.scope(of: labelText, length: scopeLength), default: []].insert(labelText)
            series[labelText] = Series(value: new, scopeLength: scopeLength)
        } else {
            series[labelText]?.value = new
        }
        cachedText = nil
    }

    /// Removes the series whose labels start with the labels rendered as `scopeText` (`scopeLabelCount`
    /// of them), except those in `kept`. A scope of `scopeDepth` labels or more costs the series of
    /// its index entry; a shorter one (not the family's declared depth) looks through the index entries.
    mutating func removeSeries(inScope scopeText: String, scopeLabelCount: Int, scopeLength: Int, except kept: Set<String>) {
        var candidates: [String]
        if scopeLabelCount == 0 {
            candidates = Array(series.keys)
        } else if scopeLabelCount >= scopeDepth {
            candidates = Array(labelTextsByScope[Self.scope(of: scopeText, length: scopeLength)] ?? [])
        } else {
            candidates = labelTextsByScope.lazy.filter { ExpositionText.labelText($0.key, isInScope: scopeText) }.flatMap(\.value)
        }
        candidates.removeAll { !ExpositionText.labelText($0, isInScope: scopeText) || kept.contains($0) }
        for labelText in candidates { remove(labelText) }
    }

    private mutating func remove(_ labelText: String) {
        guard let removed = series.removeValue(forKey: labelText) else { return }
        let scope = Self.scope(of: labelText, length: removed.scopeLength)
        labelTextsByScope[scope]?.remove(labelText)
        if labelTextsByScope[scope]?.isEmpty == true { labelTextsByScope.removeValue(forKey: scope) }
        cachedText = nil
    }

    private static func scope(of labelText: String, length: Int) -> String {
        String(decoding: labelText.utf8.prefix(length), as: UTF8.self)
    }

    /// The family's exposition text: `header` then one line per series sorted by label text;
    /// nothing at all without series. Rendered again only after a change.
    mutating func exposition(name: String, header: [UInt8]) -> [UInt8] {
        if let cachedText { return cachedText }
        var text = [UInt8]()
        if !series.isEmpty {
            let sorted = series.sorted { $0.key < $1.key }
            text.reserveCapacity(header.count + sorted.count * (name.utf8.count + 24) + sorted.reduce(0) { $0 + $1.key.utf8.count })
            text.append(contentsOf: header)
            for (labelText, sample) in sorted {
                text.append(contentsOf: name.utf8)
                if labelText.isEmpty {
                    text.append(UInt8(ascii: " "))
                } else {
                    text.append(UInt8(ascii: "{"))
                    text.append(contentsOf: labelText.utf8)
                    text.append(contentsOf: "} ".utf8)
                }
                sample.value.appendSampleText(to: &text)
                text.append(UInt8(ascii: "\n"))
            }
        }
        cachedText = text
        return text
    }
}
