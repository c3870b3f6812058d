import Foundation
import WardenCore

/// `ctl journal`: the tail of the journal, one line per entry.
public enum JournalRendering {
    public static func render(_ entries: [JournalEntry], style: TerminalStyle) -> String {
        guard !entries.isEmpty else { return "no journal entry" }
        var table = TextTable([
            .init("SEQ", .right), .init("TIME (UTC)"), .init("LOOP"), .init("PROJECT"), .init("ACTION"), .init("RESULT"), .init("MESSAGE"),
        ])
        for entry in entries {
            let color: TerminalStyle.Color?
            switch (entry.severity, entry.result) {
            case ("critical", _), (_, .failed?), (_, .refused?): color = .red
            case ("warning", _), (_, .partial?), (_, .unknown?): color = .yellow
            default: color = nil
            }
            table.add([
                .init("\(entry.seq)"), .init(CtlTime.timeOfDay(entry.at)), .init(entry.loop), .init(entry.project ?? "-"),
                .init(entry.action ?? entry.kind.rawValue), .init(entry.result?.rawValue ?? "-", color), .init(entry.message),
            ])
        }
        return table.render(style)
    }
}
