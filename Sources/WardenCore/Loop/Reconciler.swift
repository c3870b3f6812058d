import Foundation

/// One level-triggered control loop.
///
/// A pass reads the observed state, plans with a pure function, applies the plan and reports.
/// Passes are idempotent: running a pass twice in a row changes nothing the second time. A pass
/// absorbs per-project failures into its report (one project's failure does not stop the others)
/// and throws only when nothing could be done at all.
public protocol Reconciler: Sendable {
    /// The stable loop name, used as the `loop` label and in the control API.
    var name: String { get }
    /// Runs one pass at `now`.
    func reconcile(now: Date) async throws -> ReconcileReport
    /// Told when the loop is paused or resumed, also while a pass runs (a pass that waits for a
    /// schedule boundary must not act once paused).
    func loopPaused(_ paused: Bool)
}

extension Reconciler {
    public func loopPaused(_ paused: Bool) {}
}

/// What a pass did.
public struct ReconcileReport: Sendable, Equatable {
    /// A one-line summary for logs and the status API.
    public var summary: String
    /// Mutating calls made (or that would have been made, in dry-run).
    public var actions: Int
    /// Projects (or regions) whose part of the pass failed, with why.
    public var failures: [PartFailure]
    /// The reconciler wants its next pass no later than this (e.g. the next schedule boundary).
    public var wakeAt: Date?
    /// More work is waiting (e.g. the per-pass cap was hit): run again soon.
    public var moreWork: Bool

    public init(summary: String, actions: Int = 0, failures: [PartFailure] = [], wakeAt: Date? = nil, moreWork: Bool = false) {
        self.summary = summary
        self.actions = actions
        self.failures = failures
        self.wakeAt = wakeAt
        self.moreWork = moreWork
    }
}

/// A failed part of a pass.
public struct PartFailure: Error, Sendable, Equatable {
    /// The project (or region) label.
    public var part: String
    public var message: String

    public init(part: String, message: String) {
        self.part = part
        self.message = message
    }
}

/// How a pass ended. The one place that classifies outcomes: it drives metrics, health and the
/// next delay.
public enum PassOutcome: Sendable, Equatable {
    case success(ReconcileReport)
    /// Some parts failed, others succeeded.
    case partial(ReconcileReport)
    case failure(String)

    /// The `result` label of `ecs_warden_loop_runs_total`.
    public var resultLabel: String {
        switch self {
        case .success: return "success"
        case .partial: return "partial"
        case .failure: return "error"
        }
    }

    /// The report, when the pass produced one.
    public var report: ReconcileReport? {
        switch self {
        case .success(let report), .partial(let report): return report
        case .failure: return nil
        }
    }

    static func classify(_ report: ReconcileReport) -> PassOutcome {
        report.failures.isEmpty ? .success(report) : .partial(report)
    }
}

/// Runs `body` for every item with at most `limit` running at once, collecting results in order.
/// Errors are results, not thrown: one item's failure does not stop the others.
func boundedForEach<Item: Sendable, Output: Sendable>(
    _ items: [Item], limit: Int, _ body: @escaping @Sendable (Item) async -> Output
) async -> [Output] {
    var results = [Output?](repeating: nil, count: items.count)
    await withTaskGroup(of: (Int, Output).self) { group in
        var next = 0
        func addNext() {
            guard next < items.count else { return }
            let index = next
            let item = items[index]
            group.addTask { (index, await body(item)) }
            next += 1
        }
        for _ in 0..<max(1, limit) { addNext() }
        for await (index, output) in group {
            results[index] = output
            addNext()
        }
    }
    return results.compactMap { $0 }
}
