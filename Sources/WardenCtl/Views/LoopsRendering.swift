import Foundation
import WardenHTTP

/// `ctl status` and `ctl loops`: the daemon's one-line summary and a table of its loops.
public enum LoopsRendering {
    public static func status(_ status: StatusView, style: TerminalStyle, now: Date) -> String {
        let healthy = status.loops.allSatisfy(\.alive)
        let head = [
            "ecs-warden \(status.version)\(status.dryRun ? "  " + style.paint("DRY-RUN", .yellow) : "")",
            "health:   " + style.paint(status.summary, healthy ? .green : .red),
            "projects: " + (status.projects.isEmpty ? "-" : status.projects.joined(separator: ", ")),
            "",
        ]
        return (head + [loops(status.loops, style: style, now: now)]).joined(separator: "\n")
    }

    public static func loops(_ loops: [LoopView], style: TerminalStyle, now: Date) -> String {
        var table = TextTable([
            .init("LOOP"), .init("STATE"), .init("LAST PASS"), .init("DURATION", .right), .init("NEXT PASS"), .init("FAILURES", .right),
            .init("SUMMARY"),
        ])
        for loop in loops.sorted(by: { $0.name < $1.name }) {
            let state: TextTable.Cell
            if !loop.alive {
                state = .init("not alive", .red)
            } else if loop.paused {
                state = .init("paused", .yellow)
            } else if loop.running {
                state = .init("running")
            } else if loop.consecutiveFailures > 0 {
                state = .init("failing", .red)
            } else if loop.lastResult == "partial" {
                state = .init("partial", .yellow)
            } else {
                state = .init(loop.lastFinished == nil ? "starting" : "ok", loop.lastFinished == nil ? nil : .green)
            }
            let summary = loop.consecutiveFailures > 0 ? (loop.lastError ?? loop.lastSummary ?? "") : (loop.lastSummary ?? "")
            table.add([
                .init(loop.name), state, .init(CtlTime.relative(loop.lastFinished, now: now)),
                .init(loop.lastDurationSeconds.map(duration) ?? "-"), .init(loop.paused ? "-" : CtlTime.relative(loop.nextPassAt, now: now)),
                .init("\(loop.failures)/\(loop.passes)"), .init(summary),
            ])
        }
        return table.render(style)
    }

    /// `4ms`, `1.3s`, `2m`.
    static func duration(_ seconds: Double) -> String {
        if seconds < 1 { return "\(Int((seconds * 1000).rounded()))ms" }
        if seconds < 60 { return String(format: "%.1fs", seconds) }
        return CtlTime.span(seconds)
    }
}
