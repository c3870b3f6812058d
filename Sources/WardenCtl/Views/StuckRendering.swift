import Foundation
import WardenCore

/// `ctl stuck`: jobs past their deadline and servers past their threshold, with their age.
public enum StuckRendering {
    public static func render(_ snapshot: StuckTaskDetector.Snapshot, style: TerminalStyle) -> String {
        var sections: [String] = []
        if snapshot.jobs.isEmpty {
            sections.append("no stuck job (\(snapshot.watchedJobs) followed)")
        } else {
            var jobs = TextTable([.init("PROJECT"), .init("JOB"), .init("TYPE"), .init("STATUS"), .init("AGE", .right), .init("DEADLINE", .right), .init("SOURCE")])
            for job in snapshot.jobs.sorted(by: { $0.ageSeconds > $1.ageSeconds }) {
                jobs.add([
                    .init(job.project), .init(job.jobId), .init(job.jobType ?? "-"), .init(job.status, .yellow), .init(CtlTime.span(job.ageSeconds), .red),
                    .init(CtlTime.span(job.deadlineSeconds)), .init(job.source),
                ])
            }
            sections.append("STUCK JOBS (\(snapshot.jobs.count) of \(snapshot.watchedJobs) followed)\n" + jobs.render(style))
        }
        if snapshot.servers.isEmpty {
            sections.append("no stuck server")
        } else {
            var servers = TextTable([
                .init("PROJECT"), .init("NAME"), .init("STATUS"), .init("TASK STATE"), .init("AGE", .right), .init("THRESHOLD", .right), .init("SERVER ID"),
            ])
            for server in snapshot.servers.sorted(by: { $0.ageSeconds > $1.ageSeconds }) {
                servers.add([
                    .init(server.project), .init(server.name), .init(server.status), .init(server.taskState ?? "-", .yellow),
                    .init(CtlTime.span(server.ageSeconds), .red), .init(CtlTime.span(server.thresholdSeconds)), .init(server.serverId),
                ])
            }
            var section = "STUCK SERVERS (\(snapshot.servers.count))\n" + servers.render(style)
            let operations = snapshot.servers.compactMap { server in server.operation.map { "  \(server.name): \($0.summary)" } }
            if !operations.isEmpty {
                section += "\nlatest operations:\n" + operations.map { $0.count > style.width ? String($0.prefix(style.width - 1)) + "…" : $0 }.joined(separator: "\n")
            }
            sections.append(section)
        }
        if !snapshot.unhealthy.isEmpty {
            var unhealthy = TextTable([.init("PROJECT"), .init("NAME"), .init("STATUS"), .init("HOST"), .init("PROBLEMS"), .init("SERVER ID")])
            for server in snapshot.unhealthy.sorted(by: { ($0.project, $0.name) < ($1.project, $1.name) }) {
                unhealthy.add([
                    .init(server.project), .init(server.name), .init(server.status, server.status == "ERROR" ? .red : nil), .init(server.hostStatus ?? "-"),
                    .init(server.problems.map(\.detail).joined(separator: "; "), .red), .init(server.serverId),
                ])
            }
            sections.append("UNHEALTHY SERVERS (\(snapshot.unhealthy.count))\n" + unhealthy.render(style))
        }
        return sections.joined(separator: "\n\n")
    }
}
