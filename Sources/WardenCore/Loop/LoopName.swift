/// The loops of the daemon: one registry of their names (the `loop` label, the config keys under
/// `loops:`, the control API's paths, the journal's `loop` column).
public enum LoopName: String, Sendable, CaseIterable, Codable {
    case quota
    case stuck
    case schedule
    case jobs
    case flavors
    case maintenance

    /// The order of `run --once`: the scheduler before the stuck-task loop (which reuses its
    /// listing of the servers), job following right after the calls it follows.
    public static let oncePassOrder: [LoopName] = [.quota, .flavors, .schedule, .jobs, .stuck, .maintenance]

    /// The interval of each loop when the configuration names none.
    public var defaultInterval: Double {
        switch self {
        case .quota: return 300
        case .stuck: return 60
        case .schedule: return 60
        case .jobs: return 10
        case .flavors: return 600
        case .maintenance: return 3600
        }
    }
}
