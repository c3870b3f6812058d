import Foundation
import WardenCore

/// `ctl cluster`: the nodes (alive, heartbeat, shards owned), every shard's lease and the recent
/// handovers.
public enum ClusterRendering {
    public static func render(_ status: ClusterStatus, style: TerminalStyle, now: Date) -> String {
        var lines: [String] = []
        if status.mode == "single" {
            lines.append("single node (\(status.node)): SQLite state, every shard owned here, no leases")
        } else {
            lines.append("cluster: answered by \(status.node), lease TTL \(status.leaseTTLSeconds.map { String(format: "%.0fs", $0) } ?? "-")")
        }
        lines.append("")
        var nodes = TextTable([.init("NODE"), .init("STATE"), .init("HEARTBEAT"), .init("SHARDS", .right)])
        for node in status.nodes {
            nodes.add([
                .init(node.name), node.alive ? .init("alive", .green) : .init("gone", .red), .init(CtlTime.relative(node.heartbeatAt, now: now)),
                .init(String(node.shardsOwned)),
            ])
        }
        lines.append(nodes.render(style))
        if !status.leases.isEmpty {
            lines.append("")
            var leases = TextTable([.init("SHARD"), .init("HOLDER"), .init("EPOCH", .right), .init("EXPIRES")])
            for lease in status.leases {
                leases.add([
                    .init(lease.shard), lease.live ? .init(lease.holder ?? "-") : .init("unowned", .red), .init(String(lease.epoch)),
                    .init(CtlTime.relative(lease.expiresAt, now: now)),
                ])
            }
            lines.append(leases.render(style))
        }
        if !status.handovers.isEmpty {
            lines.append("")
            var handovers = TextTable([.init("WHEN"), .init("SHARD"), .init("FROM"), .init("TO"), .init("EPOCH", .right), .init("REASON")])
            for handover in status.handovers.prefix(20) {
                handovers.add([
                    .init(CtlTime.relative(handover.at, now: now)), .init(handover.shard), .init(handover.from ?? "-"), .init(handover.to ?? "-"),
                    .init(String(handover.epoch)), .init(handover.reason, handover.reason == "expired" || handover.reason == "lost" ? .yellow : nil),
                ])
            }
            lines.append(handovers.render(style))
        }
        return lines.joined(separator: "\n")
    }
}
