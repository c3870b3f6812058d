import Foundation
import WardenHTTP

/// `ctl schedules` and `ctl snoozes`.
public enum SchedulesRendering {
    public static func render(_ schedules: [ScheduleView], style: TerminalStyle, now: Date) -> String {
        guard !schedules.isEmpty else { return "no schedule configured" }
        var table = TextTable([
            .init("SCHEDULE"), .init("TIME ZONE"), .init("MODE"), .init("MANUAL"), .init("DESIRED"), .init("NEXT"), .init("SERVERS"),
        ])
        for schedule in schedules.sorted(by: { $0.name < $1.name }) {
            let next = schedule.nextBoundary.map { "\(schedule.nextAction ?? "?") \(CtlTime.relative($0, now: now))" } ?? "-"
            let servers = schedule.servers.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
            table.add([
                .init(schedule.name + (schedule.dryRun ? " (dry-run)" : "")), .init(schedule.timezone), .init(schedule.mode), .init(schedule.manualActions),
                .init(schedule.desiredState), .init(next), .init(servers.isEmpty ? "-" : servers),
            ])
        }
        return table.render(style)
    }

    public static func snoozes(_ snoozes: [SnoozeView], style: TerminalStyle, now: Date) -> String {
        guard !snoozes.isEmpty else { return "no snooze in force" }
        var table = TextTable([.init("PROJECT"), .init("SERVER"), .init("UNTIL"), .init("LEFT", .right), .init("REASON")])
        for snooze in snoozes {
            table.add([
                .init(snooze.project), .init(snooze.serverId), .init(CtlTime.clock(snooze.until)), .init(CtlTime.span(snooze.until.timeIntervalSince(now))),
                .init(snooze.reason),
            ])
        }
        return table.render(style)
    }
}
