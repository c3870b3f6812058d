import Foundation
import WardenCore

/// `ctl journal`: the tail of the journal, one line per entry.
public enum JournalRendering {
    public static func render(_ entries: [JournalEntry], style: TerminalStyle) -> String {
        guard !entries.isEmpty else { return "no journal entry" }
        // Cluster mode: which node wrote the intent or outcome, under which epoch of the lease.
        let clustered = entries.contains { $0.fence != nil }
        var columns: [TextTable.Column] = [.init("SEQ", .right), .init("TIME (UTC)"), .init("LOOP"), .init("PROJECT")]
        if clustered { columns.append(.init("NODE/EPOCH")) }
        columns += [.init("ACTION"), .init("RESULT"), .init("MESSAGE")]
        var table = TextTable(columns)
        for entry in entries {
            let color: TerminalStyle.Color?
            switch (entry.severity, entry.result) {
            case ("critical", _), (_, .failed?), (_, .refused?): color = .red
            case ("warning", _), (_, .partial?), (_, .unknown?): color = .yellow
            default: color = nil
            }
            var row: [TextTable.Cell] = [.init("\(entry.seq)"), .init(CtlTime.timeOfDay(entry.at)), .init(entry.loop), .init(entry.project ?? "-")]
            if clustered { row.append(.init(entry.fence.map { "\($0.node)/\($0.epoch)" } ?? "-")) }
            row += [.init(entry.action ?? entry.kind.rawValue), .init(entry.result?.rawValue ?? "-", color), .init(entry.message)]
            table.add(row)
        }
        return table.render(style)
    }
}
