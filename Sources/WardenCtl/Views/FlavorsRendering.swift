import Foundation
import WardenCore

/// `ctl flavors`: the sale state of every flavor in every AZ as a matrix, and since when the
/// sold-out ones are sold out.
public enum FlavorsRendering {
    public static func render(_ states: [FlavorSaleTracker.FlavorState], style: TerminalStyle, now: Date) -> String {
        let zones = Array(Set(states.map(\.az))).sorted()
        let flavors = Array(Set(states.map(\.flavor))).sorted()
        var byKey: [String: FlavorSaleTracker.FlavorState] = [:]
        for state in states { byKey["\(state.flavor)\u{1F}\(state.az)"] = state }
        var table = TextTable([.init("FLAVOR")] + zones.map { .init($0.uppercased()) })
        for flavor in flavors {
            var row: [TextTable.Cell] = [.init(flavor)]
            for zone in zones {
                guard let state = byKey["\(flavor)\u{1F}\(zone)"] else {
                    row.append(.init("-"))
                    continue
                }
                if state.soldOut {
                    row.append(.init("sold out \(CtlTime.span(now.timeIntervalSince(state.since)))", .red))
                } else if state.launchable {
                    row.append(.init(state.state == "normal" ? "on sale" : state.state, .green))
                } else {
                    row.append(.init(state.state, .yellow))
                }
            }
            table.add(row)
        }
        let soldOut = states.filter(\.soldOut).count
        return table.render(style) + "\n\n\(flavors.count) flavors in \(zones.count) AZs; \(soldOut) sold out"
    }

    /// `ctl launchable AZ`: the flavors on sale there.
    public static func launchable(_ states: [FlavorSaleTracker.FlavorState], az: String, style: TerminalStyle) -> String {
        guard !states.isEmpty else { return "nothing can be launched in \(az) now" }
        var table = TextTable([.init("FLAVOR"), .init("STATE"), .init("SINCE")])
        for state in states.sorted(by: { $0.flavor < $1.flavor }) {
            table.add([.init(state.flavor), .init(state.state), .init(CtlTime.clock(state.since))])
        }
        return table.render(style)
    }
}
