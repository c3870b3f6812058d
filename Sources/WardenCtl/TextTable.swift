/// An aligned table in the manner of `kubectl get`: upper-case headers, columns two spaces
/// apart, numbers right-aligned, the last column cut with `…` to fit the width.
public struct TextTable: Sendable {
    public enum Alignment: Sendable {
        case left, right
    }

    public struct Column: Sendable {
        public var header: String
        public var alignment: Alignment

        public init(_ header: String, _ alignment: Alignment = .left) {
            self.header = header
            self.alignment = alignment
        }
    }

    /// A cell: its text (measured) and how to paint it once padded.
    public struct Cell: Sendable, ExpressibleByStringLiteral {
        public var text: String
        public var color: TerminalStyle.Color?

        public init(_ text: String, _ color: TerminalStyle.Color? = nil) {
            self.text = text
            self.color = color
        }

        public init(stringLiteral value: String) {
            self.init(value)
        }
    }

    public var columns: [Column]
    public var rows: [[Cell]] = []

    public init(_ columns: [Column]) {
        self.columns = columns
    }

    public mutating func add(_ cells: [Cell]) {
        rows.append(cells)
    }

    /// The table, one line per row, no trailing spaces, within `style.width`.
    public func render(_ style: TerminalStyle) -> String {
        guard !columns.isEmpty else { return "" }
        var widths = columns.map { $0.header.count }
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.text.count) }
        }
        // The last column takes what is left of the width (at least 10); if that is not enough, the
        // widest other columns give up characters too (never below their header or 6).
        let fixed = widths.dropLast().reduce(0, +) + 2 * (columns.count - 1)
        widths[widths.count - 1] = max(10, min(widths[widths.count - 1], style.width - fixed))
        var total = widths.reduce(0, +) + 2 * (columns.count - 1)
        while total > style.width {
            let candidates = widths.indices.filter { widths[$0] > max(columns[$0].header.count, 6) }
            guard let widest = candidates.max(by: { widths[$0] < widths[$1] }) else { break }
            widths[widest] -= 1
            total -= 1
        }
        func line(_ cells: [Cell], header: Bool) -> String {
            var parts: [String] = []
            for (index, column) in columns.enumerated() {
                let cell = index < cells.count ? cells[index] : Cell("")
                var text = cell.text
                if text.count > widths[index] { text = String(text.prefix(max(1, widths[index] - 1))) + "…" }
                let padding = String(repeating: " ", count: max(0, widths[index] - text.count))
                let last = index == columns.count - 1
                let padded = column.alignment == .right ? padding + text : text + (last ? "" : padding)
                if header {
                    parts.append(style.paint(padded, .bold))
                } else if let color = cell.color {
                    parts.append(column.alignment == .right ? padding + style.paint(text, color) : style.paint(text, color) + (last ? "" : padding))
                } else {
                    parts.append(padded)
                }
            }
            var result = parts.joined(separator: "  ")
            while result.hasSuffix(" ") { result.removeLast() }
            return result
        }
        var lines = [line(columns.map { Cell($0.header) }, header: true)]
        lines += rows.map { line($0, header: false) }
        return lines.joined(separator: "\n")
    }
}
