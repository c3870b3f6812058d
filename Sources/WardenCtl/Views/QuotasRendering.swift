import Foundation
import WardenCore

/// `ctl quotas`: used and limit per resource with a usage bar, the level and the forecast.
public enum QuotasRendering {
    public static func render(_ projects: [QuotaWatch.ProjectQuota], style: TerminalStyle, now: Date) -> String {
        var table = TextTable([
            .init("PROJECT"), .init("RESOURCE"), .init("USED", .right), .init("LIMIT", .right), .init("USAGE"), .init("LEVEL"), .init("EXHAUSTED IN"),
        ])
        for project in projects.sorted(by: { $0.project < $1.project }) {
            for resource in project.resources {
                let color: TerminalStyle.Color? = resource.level == .critical ? .red : resource.level == .warning ? .yellow : nil
                let usage: String
                if let ratio = resource.ratio {
                    usage = "\(style.bar(ratio)) \(String(format: "%3.0f%%", ratio * 100))"
                } else {
                    usage = "unlimited"
                }
                table.add([
                    .init(project.project), .init(resource.resource), .init("\(resource.used)"), .init(resource.limit.map { "\($0)" } ?? "-"),
                    .init(usage, color), .init(resource.level.rawValue, color), .init(resource.exhaustionETASeconds.map(CtlTime.span) ?? "-"),
                ])
            }
        }
        return table.render(style)
    }
}
