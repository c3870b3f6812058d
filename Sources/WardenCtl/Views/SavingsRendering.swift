import Foundation
import WardenCore

/// `ctl savings`: per schedule, the server-, vCPU- and RAM-hours its stops saved over the last day,
/// week and month.
public enum SavingsRendering {
    /// `periods`: (label, totals) in order, e.g. day, week, month.
    public static func render(_ periods: [(label: String, totals: [SavingsTotal])], style: TerminalStyle) -> String {
        let schedules = Set(periods.flatMap { $0.totals.map(\.schedule) }).sorted()
        guard !schedules.isEmpty else { return "nothing saved yet: no scheduled stop has succeeded in the last month" }
        var columns: [TextTable.Column] = [.init("SCHEDULE")]
        for period in periods {
            columns += [.init("SERVER-H \(period.label)", .right), .init("VCPU-H \(period.label)", .right), .init("RAM-GB-H \(period.label)", .right)]
        }
        var table = TextTable(columns)
        for schedule in schedules {
            var row: [TextTable.Cell] = [.init(schedule)]
            for period in periods {
                let mine = period.totals.filter { $0.schedule == schedule }
                row += [
                    .init(hours(mine.reduce(0) { $0 + $1.serverSeconds })), .init(hours(mine.reduce(0) { $0 + $1.vcpuSeconds })),
                    .init(hours(mine.reduce(0) { $0 + $1.ramMBSeconds } / 1024)),
                ]
            }
            table.add(row)
        }
        return table.render(style)
    }

    static func hours(_ seconds: Double) -> String { String(format: "%.1f", seconds / 3600) }
}
