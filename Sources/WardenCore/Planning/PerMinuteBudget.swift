import Foundation

/// The API reference's flow limit for batch actions: at most 1,000 servers stopped (started) per
/// minute. Counted per project and action over the sliding minute before `now`, from the journal
/// (every call but a refused one spends it) plus what the plan being built takes. Pure.
struct PerMinuteBudget {
    private var spent: [String: [(at: Date, servers: Int)]] = [:]
    private let limit: Int
    private let now: Date

    init(calls: [JournaledCall], limit: Int, now: Date) {
        self.limit = limit
        self.now = now
        for call in calls where call.state != .refused && call.at > now.addingTimeInterval(-60) && call.at <= now {
            spent[Self.key(call.project, call.action, call.dryRun), default: []].append((call.at, call.servers.count))
        }
    }

    private static func key(_ project: String, _ action: ScheduleAction, _ dryRun: Bool) -> String {
        "\(project)\u{1F}\(action.rawValue)\u{1F}\(dryRun)"
    }

    /// Takes up to `wanted` servers of the budget; returns how many were granted.
    mutating func take(_ wanted: Int, project: String, action: ScheduleAction, dryRun: Bool) -> Int {
        let key = Self.key(project, action, dryRun)
        let used = spent[key, default: []].reduce(0) { $0 + $1.servers }
        let granted = max(0, min(wanted, limit - used))
        if granted > 0 { spent[key, default: []].append((now, granted)) }
        return granted
    }

    /// When the oldest spending of the minute leaves the window (nil when nothing was spent before now).
    func freesAt(project: String, action: ScheduleAction, dryRun: Bool) -> Date? {
        spent[Self.key(project, action, dryRun)]?.map(\.at).filter { $0 < now }.min().map { $0.addingTimeInterval(60) }
            ?? now.addingTimeInterval(60)
    }
}
