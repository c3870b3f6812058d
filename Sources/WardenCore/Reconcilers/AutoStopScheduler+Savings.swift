import ECSAPI
import Foundation

extension AutoStopScheduler {
    /// What the schedules saved: a server whose scheduled stop succeeded opens a stop window (from
    /// the stop's success, per the journal's per-server outcome); the window closes when the server
    /// is seen running again — started by its schedule or by a person — or no longer listed. Each
    /// pass adds the time since the last one to the counters (server-, vCPU- and RAM-seconds, per
    /// schedule and flavor); `GET /v1/savings` sums the stored windows over any period.
    ///
    /// The store is read and written a fixed number of times per pass, whatever the number of
    /// projects and windows: the open windows of every project at once, the stop successes and
    /// latest windows only of projects with a stopped server that has no open window, and every
    /// window's progress in one transaction.
    func trackSavings(observed: [ProjectServers], settings: WardenSettings, now: Date) async {
        let store = context.store
        let scheduleKey = settings.tags.schedule
        do {
            var open: [String: [String: SavingsWindow]] = [:]
            for window in try await store.openSavingsWindows(projects: observed.map(\.project)) {
                if open[window.project]?[window.serverId] == nil { open[window.project, default: [:]][window.serverId] = window }
            }
            // Servers stopped under their schedule without an open window: candidates for a new one.
            func isCandidate(_ server: Server, in project: String) -> Bool {
                guard let schedule = server.tagValue(scheduleKey), settings.schedules[schedule] != nil else { return false }
                return server.status == .shutoff && server.taskState == nil && open[project]?[server.id] == nil
            }
            let candidateProjects = observed.filter { project in project.servers.contains { isCandidate($0, in: project.project) } }.map(\.project)
            let stops = try await store.scheduledStopSuccesses(projects: candidateProjects)
            let latestWindows = try await store.latestSavingsWindowStart(projects: candidateProjects.filter { stops[$0]?.isEmpty == false })
            var counted: [Int64: Date] = [:]
            var closed: [Int64: Date] = [:]
            var elapsed: [(window: SavingsWindow, seconds: Double)] = []
            for project in observed {
                let servers = project.servers  // built once for this project (ProjectServers)
                do {
                    for server in servers where isCandidate(server, in: project.project) {
                        guard let schedule = server.tagValue(scheduleKey), let stoppedAt = stops[project.project]?[server.id],
                            stoppedAt > (latestWindows[project.project]?[server.id] ?? .distantPast), let flavor = server.flavor?.id
                        else { continue }
                        let size = context.flavorCatalogue.size(of: flavor)
                        let window = SavingsWindow(
                            project: project.project, serverId: server.id, schedule: schedule, flavor: flavor,
                            vcpus: server.flavor?.vcpus ?? size?.vcpus ?? 0, ramMB: server.flavor?.ram ?? size?.ramMB ?? 0, openedAt: stoppedAt,
                            countedUntil: stoppedAt)
                        open[project.project, default: [:]][server.id] = try await store.openSavingsWindow(window)
                    }
                } catch {
                    // One project's failure leaves the others counted; this one is counted next pass
                    // (from where its windows were last counted: nothing is lost or counted twice).
                    context.logger.warning("cannot track the savings of a project", metadata: ["project": "\(project.project)", "error": "\(error)"])
                    continue
                }
                // Count the open windows up to now; close those whose server runs again or is gone.
                let listed = Dictionary(servers.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
                for window in (open[project.project] ?? [:]).values {
                    let server = listed[window.serverId]
                    let stillStopped = server.map { $0.status == .shutoff && $0.tagValue(scheduleKey) == window.schedule } ?? false
                    elapsed.append((window, max(0, now.timeIntervalSince(window.countedUntil))))
                    counted[window.id] = max(now, window.countedUntil)
                    if !stillStopped { closed[window.id] = now }
                }
            }
            // Stored first: a failed write adds nothing to the counters, so the next pass counts it once.
            try await store.recordSavingsProgress(counted: counted, closed: closed)
            for (window, seconds) in elapsed {
                context.metrics.recordSavings(schedule: window.schedule, flavor: window.flavor, seconds: seconds, vcpus: window.vcpus, ramMB: window.ramMB)
            }
        } catch {
            context.logger.warning("cannot track the savings of this pass", metadata: ["error": "\(error)"])
        }
    }
}
