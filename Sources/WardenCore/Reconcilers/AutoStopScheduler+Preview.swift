import ECSAPI
import Foundation

extension AutoStopScheduler {
    /// Servers due to start within the preflight lead whose start is at risk (the last pass's check).
    public func startsAtRisk() -> [StartPreflight.AtRisk] { latestAtRisk.withLock { $0 } }

    /// The servers of `project` due to start at a schedule boundary before `horizon`, from the last
    /// listing (their flavor, AZ and size as the listing tells them).
    public func scheduledStarts(project: String, now: Date, horizon: Date) -> [LaunchPreflight.ScheduledStart] {
        let settings = context.settings
        var next: [String: Date] = [:]
        for (name, schedule) in settings.schedules where AutoStopPlanner.allowed(.start, schedule) {
            let evaluator = ScheduleEvaluator(schedule: schedule)
            var cursor = now
            while let boundary = evaluator.nextBoundary(after: cursor), boundary.date <= horizon {
                if boundary.action == .start {
                    next[name] = boundary.date
                    break
                }
                cursor = boundary.date
            }
        }
        let reading = lastObserved.withLock { $0[project] } ?? []
        return reading.compactMap { compact in
            guard compact.tagValue(settings.tags.schedule) != nil else { return nil }
            let server = compact.server
            guard server.status != .active, server.tagValue(settings.tags.ignore) == nil, let schedule = server.tagValue(settings.tags.schedule),
                let at = next[schedule], let flavor = server.flavor?.id, let zone = server.availabilityZone
            else { return nil }
            return LaunchPreflight.ScheduledStart(serverId: server.id, flavor: flavor, az: zone, at: at, vcpus: server.flavor?.vcpus, ramMB: server.flavor?.ram)
        }
    }

    /// Server id → name, from the scheduler's last listing (the servers some loop looks at).
    public func knownServerNames() -> [String: String] {
        var names: [String: String] = [:]
        for reading in lastObserved.withLock({ $0 }).values {
            for server in reading { names[server.serverId] = server.serverName }
        }
        return names
    }

    /// What the real planner would do over the next `hours`: the servers of the last pass's reading
    /// (listed afresh only for projects the loop has not read yet), with the journal's holds — calls
    /// in flight, servers already acted on at a boundary, failed sub-jobs waiting for their retry,
    /// the per-minute budget — and the stored marks and snoozes.
    public func preview(now: Date, hours: Double) async throws -> [AutoStopPlanner.PreviewStep] {
        let settings = context.settings
        let known = lastObserved.withLock { $0 }
        var observed: [ProjectServers] = []
        for project in context.projects {
            var reading = known[project.name]
            if reading == nil { reading = try await context.inventory.compactServers(of: project, fresh: false, now: now, settings: settings) }
            observed.append(ProjectServers(project: project.name, reading: reading ?? [], scheduleTag: settings.tags.schedule))
        }
        let (marks, snoozes) = try await storedMarksAndSnoozes(of: observed, settings: settings, now: now)
        return AutoStopPlanner.preview(
            projects: observed, schedules: settings.schedules, tags: settings.tags, limits: settings.autoStop, handledBoundaries: marks,
            snoozes: snoozes, dryRun: settings.dryRun, calls: try await journaledCalls(since: now.addingTimeInterval(-settings.autoStop.boundaryGrace)),
            from: now, to: now.addingTimeInterval(hours * 3600))
    }
}
