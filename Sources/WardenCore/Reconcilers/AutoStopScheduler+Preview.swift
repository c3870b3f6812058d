import ECSAPI
import Foundation

extension AutoStopScheduler {
    /// Servers due to start within the preflight lead whose start is at risk (the last pass's check).
    public func startsAtRisk() -> [StartPreflight.AtRisk] { latestAtRisk.withLock { $0 } }

    /// Server id → name, from the scheduler's last listing (the tagged servers only).
    public func knownServerNames() -> [String: String] {
        var names: [String: String] = [:]
        for project in lastObserved.withLock({ $0 }) {
            for server in project.servers { names[server.id] = server.name }
        }
        return names
    }

    /// What the real planner would do over the next `hours`: the servers of the last pass's reading
    /// (listed afresh only for projects the loop has not read yet), with the journal's holds — calls
    /// in flight, servers already acted on at a boundary, failed sub-jobs waiting for their retry,
    /// the per-minute budget — and the stored marks and snoozes.
    public func preview(now: Date, hours: Double) async throws -> [AutoStopPlanner.PreviewStep] {
        let settings = context.settings
        let known = Dictionary(lastObserved.withLock { $0 }.map { ($0.project, $0) }, uniquingKeysWith: { a, _ in a })
        var observed: [ProjectServers] = []
        for project in context.projects {
            if let reading = known[project.name] {
                observed.append(reading)
            } else {
                let servers = try await context.inventory.servers(of: project, fresh: false, now: now, settings: settings)
                observed.append(ProjectServers(project: project.name, servers: servers.filter { $0.tagValue(settings.tags.schedule) != nil }))
            }
        }
        var marks: [ScheduleMarkKey: Date] = [:]
        for project in observed {
            for schedule in settings.schedules.keys {
                if let mark = try await context.store.lastHandledBoundary(schedule: schedule, project: project.project) {
                    marks[ScheduleMarkKey(schedule: schedule, project: project.project)] = mark
                }
            }
        }
        var snoozes: [String: Set<String>] = [:]
        for snooze in try await context.store.activeSnoozes(at: now) { snoozes[snooze.project, default: []].insert(snooze.serverId) }
        return AutoStopPlanner.preview(
            projects: observed, schedules: settings.schedules, tags: settings.tags, limits: settings.autoStop, handledBoundaries: marks,
            snoozes: snoozes, dryRun: settings.dryRun, calls: try await journaledCalls(since: now.addingTimeInterval(-settings.autoStop.boundaryGrace)),
            from: now, to: now.addingTimeInterval(hours * 3600))
    }
}
