import ECSAPI
import Foundation

extension AutoStopScheduler {
    /// What the schedules saved: a server whose scheduled stop succeeded opens a stop window (from
    /// the stop's success, per the journal's per-server outcome); the window closes when the server
    /// is seen running again — started by its schedule or by a person — or no longer listed. Each
    /// pass adds the time since the last one to the counters (server-, vCPU- and RAM-seconds, per
    /// schedule and flavor); `GET /v1/savings` sums the stored windows over any period.
    func trackSavings(observed: [ProjectServers], settings: WardenSettings, now: Date) async {
        let store = context.store
        for project in observed {
            do {
                let stops = try await store.scheduledStopSuccesses(project: project.project)
                let latestWindow = try await store.latestSavingsWindowStart(project: project.project)
                var open = Dictionary(try await store.openSavingsWindows(project: project.project).map { ($0.serverId, $0) }, uniquingKeysWith: { a, _ in a })
                let listed = Dictionary(project.servers.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
                for server in project.servers {
                    guard let schedule = server.tagValue(settings.tags.schedule), settings.schedules[schedule] != nil else { continue }
                    let stopped = server.status == .shutoff && server.taskState == nil
                    if stopped, open[server.id] == nil, let stoppedAt = stops[server.id], stoppedAt > (latestWindow[server.id] ?? .distantPast),
                        let flavor = server.flavor?.id
                    {
                        let size = context.flavorCatalogue.size(of: flavor)
                        let window = SavingsWindow(
                            project: project.project, serverId: server.id, schedule: schedule, flavor: flavor,
                            vcpus: server.flavor?.vcpus ?? size?.vcpus ?? 0, ramMB: server.flavor?.ram ?? size?.ramMB ?? 0, openedAt: stoppedAt,
                            countedUntil: stoppedAt)
                        open[server.id] = try await store.openSavingsWindow(window)
                    }
                }
                // Count the open windows up to now; close those whose server runs again or is gone.
                for window in open.values {
                    let server = listed[window.serverId]
                    let stillStopped = server.map { $0.status == .shutoff && $0.tagValue(settings.tags.schedule) == window.schedule } ?? false
                    let elapsed = max(0, now.timeIntervalSince(window.countedUntil))
                    context.metrics.recordSavings(schedule: window.schedule, flavor: window.flavor, seconds: elapsed, vcpus: window.vcpus, ramMB: window.ramMB)
                    try await store.markSavingsCounted(id: window.id, until: max(now, window.countedUntil))
                    if !stillStopped { try await store.closeSavingsWindow(id: window.id, at: now) }
                }
            } catch {
                context.logger.warning("cannot track the savings of a project", metadata: ["project": "\(project.project)", "error": "\(error)"])
            }
        }
    }
}
