import Foundation
import WardenHTTP

/// `ctl plan`: a time line of the next hours — at each instant the batches with their servers'
/// names and counts — and what is left alone now, grouped by reason.
public enum PlanRendering {
    public static func render(_ steps: [PlanStepView], hours: Double, style: TerminalStyle, now: Date) -> String {
        var lines: [String] = []
        let acting = steps.filter { !$0.batches.isEmpty }
        if acting.isEmpty {
            lines.append("no action in the next \(CtlTime.span(hours * 3600))")
        }
        for step in acting {
            lines.append(style.paint("\(CtlTime.clock(step.at))  (\(CtlTime.relative(step.at, now: now)))", .bold))
            for batch in step.batches {
                let action = batch.action.uppercased()
                let names = zip(batch.servers, batch.serverNames ?? []).map { $0.1.isEmpty ? $0.0 : $0.1 }
                let shown = (names.isEmpty ? batch.servers : names)
                var detail = "\(batch.servers.count) server\(batch.servers.count == 1 ? "" : "s")  \(batch.schedule) in \(batch.project)"
                if batch.dryRun { detail += "  (dry-run)" }
                if let retry = batch.retryOf { detail += "  (retry of intent \(retry))" }
                lines.append("  " + style.paint(action.padding(toLength: 6, withPad: " ", startingAt: 0), action == "STOP" ? .yellow : .green) + detail)
                lines.append("        " + list(shown, width: style.width - 8))
                if let risks = batch.atRisk, !risks.isEmpty {
                    let nameOf = Dictionary(zip(batch.servers, shown).map { ($0.0, $0.1) }, uniquingKeysWith: { a, _ in a })
                    lines.append("        " + style.paint("! \(risks.count) at risk:", .red))
                    for (id, why) in risks.sorted(by: { $0.key < $1.key }) {
                        let line = "          \(nameOf[id] ?? id): \(why)"
                        lines.append(line.count > style.width ? String(line.prefix(style.width - 1)) + "…" : line)
                    }
                }
            }
        }
        let skipped = steps.first?.skipped ?? []
        if !skipped.isEmpty {
            lines.append("")
            lines.append("left alone now (\(skipped.count)):")
            var table = TextTable([.init("REASON"), .init("SERVERS", .right), .init("EXAMPLE")])
            for (reason, group) in Dictionary(grouping: skipped, by: \.reason).sorted(by: { $0.key < $1.key }) {
                let example = group[0]
                table.add([.init(reason), .init("\(group.count)"), .init("\(example.project)/\(example.serverId): \(example.detail)")])
            }
            var indented = style
            indented.width -= 2
            lines.append(table.render(indented).split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
        }
        return lines.joined(separator: "\n")
    }

    /// `a, b, c, … (+12)` within `width`.
    static func list(_ names: [String], width: Int) -> String {
        var out = ""
        for (index, name) in names.enumerated() {
            let piece = (out.isEmpty ? "" : ", ") + name
            let rest = names.count - index
            if out.count + piece.count + (rest > 1 ? 8 : 0) > width {
                return out + ", … (+\(rest))"
            }
            out += piece
        }
        return out
    }
}
