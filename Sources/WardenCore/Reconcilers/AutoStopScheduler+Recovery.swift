import ECSAPI
import Foundation

extension AutoStopScheduler {
    /// Resolves intents without an outcome: the daemon died between the two writes, or the call got
    /// no answer (a timeout, a dropped connection) and may still be carried out late.
    ///
    /// The decision rests on what the servers are now, never on their `updated` times (the cloud's
    /// clock is not ours, and any edit moves them): while every server is still as the plan wanted it
    /// (tagged with the schedule, not opted out, in the state the action starts from), the same
    /// request is sent again with the same `X-Client-Token` — whether the first one never left or is
    /// still on its way, the cloud carries it out once. Otherwise the call may have been carried out:
    /// the intent is closed as `unknown` and its servers are not acted on again for that boundary
    /// (see `JournaledCall`).
    func recoverOpenIntents(projects: [WardenProject], settings: WardenSettings, now: Date) async -> [PartFailure] {
        await executor.recoverOpenIntents(loop: .schedule, projects: projects, grace: settings.autoStop.boundaryGrace, now: now) { intent, project, action in
            guard let schedule = intent.subject, let scheduleAction = ScheduleAction(rawValue: action.rawValue) else {
                return .close(.abandoned, reason: "recovery: intent \(intent.seq) names no schedule action; nothing sent")
            }
            let servers = try await self.reread(Set(intent.servers), of: project)
            let changed = intent.servers.compactMap { id -> String? in
                guard let server = servers[id] else { return "\(id): gone" }
                return Self.notAsPlanned(server, schedule: schedule, action: scheduleAction, tags: settings.tags, now: now).map { "\(id): \($0)" }
            }
            if changed.isEmpty {
                return .resend(reason: "its \(intent.servers.count) servers are still as planned")
            }
            let shown = changed.prefix(5).joined(separator: ", ") + (changed.count > 5 ? ", …" : "")
            return .close(
                .unknown,
                reason: "recovery: intent \(intent.seq) has no answer and \(changed.count) of its \(intent.servers.count) servers are no longer as planned (\(shown)); "
                    + "the call may have been carried out, so it is not re-sent and its servers are not acted on again for this boundary")
        }
    }

    /// Why a server is no longer as a plan to `action` it under `schedule` wanted it, or nil.
    static func notAsPlanned(_ server: Server, schedule: String, action: ScheduleAction, tags: ScheduleTagKeys, now: Date) -> String? {
        guard server.tagValue(tags.schedule) == schedule else { return "\(tags.schedule) is now \(server.tagValue(tags.schedule) ?? "absent")" }
        if server.tagValue(tags.ignore) != nil { return "carries \(tags.ignore)" }
        if let snooze = server.tagValue(tags.snoozeUntil), AutoStopPlanner.parseSnooze(snooze).map({ $0 > now }) ?? true { return "snoozed" }
        if let blocker = AutoStopPlanner.blocker(server, for: action) { return "\(blocker) (\(server.status.rawValue)/\(server.taskState ?? "-"))" }
        return nil
    }
}
