import ECSAPI
import Foundation

extension AutoStopScheduler {
    /// A project's reading that failed, and whether it failed for a listing without tags.
    struct ReadFailure: Error {
        var part: PartFailure
        var listingWithoutTags: Bool
    }

    /// A listing without tags is reported loudly: an event once per episode and
    /// `ecs_warden_schedule_listing_errors{reason="listing_without_tags"}`.
    func reportListingsWithoutTags(_ failures: [PartFailure], read: [String]) async {
        context.metrics.scheduleListingErrors.replace(with: failures.map { ([("project", $0.part), ("reason", "listing_without_tags")], 1) })
        for failure in failures {
            if (try? await context.store.beginEpisode("listing-without-tags/\(failure.part)", loop: name, at: context.clock.now())) ?? true {
                await context.event(name, project: failure.part, action: "listing-without-tags", severity: "critical", message: "\(failure.part): \(failure.message)")
            }
        }
        // One write for every project read: the episodes of projects not read in this pass (failed,
        // or owned by another node) are kept.
        let readProjects = Set(read)
        let notRead = Set(context.projects.map(\.name).filter { !readProjects.contains($0) }.map { "listing-without-tags/\($0)" })
        _ = try? await context.store.endEpisodes(loop: name, prefixes: ["listing-without-tags/"], keeping: notRead)
    }

    /// Metrics and events of a plan: servers per schedule and state, tag errors.
    func report(_ plan: AutoStopPlan, observedProjects: [String]) async {
        var series: [([(String, String)], Double)] = []
        for (schedule, states) in plan.counts {
            for (state, count) in states { series.append(([("schedule", schedule), ("state", state)], Double(count))) }
        }
        context.metrics.scheduleServers.replace(with: series)
        var tagErrors: [String: Double] = [:]
        var episodes: [(key: String, skip: AutoStopPlan.Skip)] = []
        for skip in plan.skips where skip.reason == "unknown_schedule" || skip.reason == "malformed_snooze" {
            tagErrors["\(skip.project)\u{1F}\(skip.reason)", default: 0] += 1
            episodes.append(("tag-error/\(skip.project)/\(skip.serverId)/\(skip.reason)/\(skip.detail)", skip))
        }
        // Once per episode, also across restarts: the store remembers what was reported (one write
        // for every episode of the pass; if the store cannot tell, the event is written).
        let keys = episodes.map(\.key)
        let begun = (try? await context.store.beginEpisodes(keys, loop: name, at: context.clock.now())) ?? Set(keys)
        var reported = Set<String>()
        for (key, skip) in episodes where begun.contains(key) && reported.insert(key).inserted {
            await context.event(
                name, project: skip.project, subject: skip.schedule, action: skip.reason, severity: "warning", servers: [skip.serverId],
                message: "\(skip.project): server \(skip.serverId) left alone: \(skip.detail)")
        }
        // Only the projects read in this pass: a project that could not be read says nothing.
        _ = try? await context.store.endEpisodes(loop: name, prefixes: observedProjects.map { "tag-error/\($0)/" }, keeping: Set(keys))
        context.metrics.scheduleTagErrors.replace(
            with: tagErrors.map { key, count in
                let parts = key.split(separator: "\u{1F}").map(String.init)
                return ([("project", parts[0]), ("reason", parts.count > 1 ? parts[1] : "")], count)
            })
    }

    /// The start preflight: servers due to start within `auto_stop.start_preflight` whose start
    /// the API would refuse (`StartPreflight`), from this pass's reading and the stored sale states.
    /// Reported before the boundary: `ecs_warden_schedule_at_risk`, an event once per server and
    /// boundary, and the plan.
    func checkStartsAhead(observed: [ProjectServers], settings: WardenSettings, projects: [WardenProject], now: Date) async {
        var sale: [String: [SaleKey: SaleStateSince]] = [:]
        for region in Set(projects.map(\.region)) { sale[region] = (try? await context.store.saleStates(region: region)) ?? [:] }
        let regionOf = Dictionary(projects.map { ($0.name, $0.region) }, uniquingKeysWith: { a, _ in a })
        let risks = StartPreflight.atRisk(
            projects: observed, schedules: settings.schedules, tags: settings.tags, regionOf: regionOf, saleStates: sale,
            lead: settings.autoStop.startPreflight, now: now)
        latestAtRisk.withLock { $0 = risks }
        var counts: [String: (labels: [(String, String)], count: Double)] = [:]
        for risk in risks {
            let labels = [("schedule", risk.schedule), ("project", risk.project), ("reason", risk.reason)]
            counts[labels.map(\.1).joined(separator: "\u{1F}"), default: (labels, 0)].count += 1
        }
        context.metrics.scheduleAtRisk.replace(with: counts.values.map { ($0.labels, $0.count) })
        let keys = risks.map { "at-risk/\($0.project)/\($0.serverId)/\(Int($0.boundary.timeIntervalSince1970))/\($0.reason)" }
        let begun = (try? await context.store.beginEpisodes(keys, loop: name, at: now)) ?? Set(keys)
        var reported = Set<String>()
        for (key, risk) in zip(keys, risks) where begun.contains(key) && reported.insert(key).inserted {
            await context.event(
                name, project: risk.project, subject: risk.schedule, action: "start-at-risk", severity: "warning", servers: [risk.serverId],
                message: "\(risk.project): \(risk.name) (\(risk.serverId)) is due to start at \(ISO8601DateFormatter().string(from: risk.boundary)) (\(risk.schedule)) but \(risk.detail)")
        }
        _ = try? await context.store.endEpisodes(loop: name, prefixes: observed.map { "at-risk/\($0.project)/" }, keeping: Set(keys))
    }
}
