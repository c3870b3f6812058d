import Foundation
import WardenCore

/// `ctl preflight`: can N servers of a flavor be launched now, per AZ, with every reason and the
/// alternatives.
public enum PreflightRendering {
    public static func render(_ answer: LaunchPreflight.Answer, style: TerminalStyle) -> String {
        let request = answer.request
        let size = [answer.vcpus.map { "\($0) vCPU" }, answer.ramMB.map { "\($0) MB" }].compactMap { $0 }.joined(separator: ", ")
        var lines = [
            "\(request.count) × \(request.flavor)\(size.isEmpty ? "" : " (\(size) each)") in \(request.project): "
                + (answer.launchable ? style.paint("yes", .green) : style.paint("no", .red)),
            "",
        ]
        var zones = TextTable([.init("AZ"), .init("ANSWER"), .init("SALE STATE"), .init("SCHEDULED STARTS", .right), .init("REASONS")])
        for zone in answer.zones {
            zones.add([
                .init(zone.az), zone.launchable ? .init("yes", .green) : .init("no", .red), .init(zone.saleState ?? "-"), .init("\(zone.scheduledStarts)"),
                .init(zone.reasons.isEmpty ? "-" : zone.reasons.joined(separator: "; ")),
            ])
        }
        lines.append(zones.render(style))
        lines.append("")
        var quota = TextTable([.init("QUOTA"), .init("NEEDED", .right), .init("HEADROOM", .right), .init("RESERVED", .right), .init("OK")])
        for check in answer.quota {
            quota.add([
                .init(check.resource), .init("\(check.needed)"), .init(check.headroom.map(String.init) ?? "-"), .init("\(check.reservedForScheduledStarts)"),
                check.ok ? .init("yes", .green) : .init("no", .red),
            ])
        }
        lines.append(quota.render(style))
        if !answer.alternativeZones.isEmpty { lines.append("\non sale in: " + answer.alternativeZones.joined(separator: ", ")) }
        if !answer.alternativeFlavors.isEmpty { lines.append("same series and size, on sale: " + answer.alternativeFlavors.joined(separator: ", ")) }
        for problem in answer.problems { lines.append("note: \(problem)") }
        return lines.joined(separator: "\n")
    }
}
